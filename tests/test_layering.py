"""mmrskd's layers: the import-linter contract in ``setup.cfg`` holds, each
of its rules refuses an upward import, and no two subpackages import each
other (checked with grimp, import-linter's graph library)."""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from importlinter.api import read_configuration

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / 'setup.cfg'
SETUP_ENV = REPO_ROOT / 'mmrskd' / 'utils' / 'setup_env.py'
# bottom to top; setup.cfg lists them top to bottom, as import-linter reads
LAYERS = ('mmrskd.registry', 'mmrskd.utils', 'mmrskd.structures',
          'mmrskd.datasets', 'mmrskd.evaluation', 'mmrskd.visualization',
          'mmrskd.models', 'mmrskd.engine', 'mmrskd.testing')
PROBE = '_upward_probe'


def layers_contract():
    """The options of the layers contract in setup.cfg."""
    contracts = read_configuration(str(CONFIG))['contracts_options']
    return next(c for c in contracts if c['type'] == 'layers')


def ignored_imports():
    """``(importer, imported)`` pairs the contract leaves out."""
    return [tuple(line.split(' -> '))
            for line in layers_contract().get('ignore_imports', [])]


def lint_imports(package_parent):
    """Run import-linter's CLI with setup.cfg on the mmrskd package in
    ``package_parent``.

    Returns:
        subprocess.CompletedProcess: with the report in ``stdout``.
    """
    return subprocess.run(
        [sys.executable, '-c',
         'import sys; from importlinter.cli import lint_imports_command; '
         'sys.exit(lint_imports_command())',
         str(CONFIG), '--no-cache', '--no-logo'],
        cwd=package_parent, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(package_parent), COLUMNS='200'))


def mmrskd_graph():
    """grimp's graph of mmrskd without the imports the contract ignores."""
    graph = grimp.build_graph('mmrskd', cache_dir=None)
    for importer, imported in ignored_imports():
        graph.remove_import(importer=importer, imported=imported)
    return graph


def test_contract_declares_the_layers():
    assert layers_contract()['layers'] == list(reversed(LAYERS))


def test_layers_contract_is_kept():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Contracts: 1 kept, 0 broken.' in result.stdout


def test_ignored_imports_are_only_the_lazy_ones_of_register_all_modules():
    tree = ast.parse(SETUP_ENV.read_text())
    register = next(node for node in tree.body
                    if isinstance(node, ast.FunctionDef)
                    and node.name == 'register_all_modules')
    lazy = {alias.name for node in ast.walk(register)
            if isinstance(node, ast.Import) for alias in node.names}
    eager = {alias.name for node in tree.body
             if isinstance(node, ast.Import) for alias in node.names} | {
                 node.module for node in tree.body
                 if isinstance(node, ast.ImportFrom)}
    ignored = {imported for importer, imported in ignored_imports()}
    assert {importer for importer, _ in ignored_imports()} == {
        'mmrskd.utils.setup_env'}
    assert ignored <= lazy
    assert not ignored & eager


@pytest.mark.parametrize('lower,higher', zip(LAYERS, LAYERS[1:]))
def test_each_layer_rule_refuses_an_upward_import(tmp_path, lower, higher):
    shutil.copytree(REPO_ROOT / 'mmrskd', tmp_path / 'mmrskd',
                    ignore=shutil.ignore_patterns('__pycache__'))
    upward_import = f'import {higher}  # noqa: F401\n'
    lower_dir = tmp_path.joinpath(*lower.split('.'))
    if lower_dir.is_dir():
        (lower_dir / f'{PROBE}.py').write_text(upward_import)
        importer = f'{lower}.{PROBE}'
    else:
        with open(lower_dir.with_suffix('.py'), 'a') as module:
            module.write(upward_import)
        importer = lower
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f'{lower} is not allowed to import {higher}' in result.stdout
    assert f'{importer} -> {higher}' in result.stdout


def test_no_import_cycle_between_subpackages():
    assert mmrskd_graph().nominate_cycle_breakers('mmrskd') == set()


def test_cycle_check_sees_a_cycle_an_upward_import_makes():
    # what reusing evaluation's box code in datasets/ would have done
    graph = mmrskd_graph()
    graph.add_import(importer='mmrskd.datasets.dota_split',
                     imported='mmrskd.evaluation.functional', line_number=1,
                     line_contents='import mmrskd.evaluation.functional')
    assert graph.nominate_cycle_breakers('mmrskd')
