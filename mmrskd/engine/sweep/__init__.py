"""Benchmark sweeps, results tables and model-zoo releases: :mod:`.grid`
(configs × ``--cfg-options`` axes → named runs), :mod:`.executor` with
:mod:`.launch` (train them, skip finished, resume interrupted),
:mod:`.results` (metrics from the logs → CSV, Markdown, PNG), :mod:`.tables`
(the README tables) and :mod:`.release` (student-only releases, the model
index)."""
from mmrskd.engine.sweep.executor import SweepExecutor
from mmrskd.engine.sweep.grid import (Sweep, SweepRun, config_stem,
                                      expand_grid, is_sweep_file,
                                      load_sweep_file)
from mmrskd.engine.sweep.launch import LaunchOptions
from mmrskd.engine.sweep.results import (RunResult, collect_results,
                                         read_run_log, write_results)

__all__ = [
    'Sweep', 'SweepRun', 'config_stem', 'expand_grid', 'is_sweep_file',
    'load_sweep_file', 'LaunchOptions', 'SweepExecutor', 'RunResult',
    'collect_results', 'read_run_log', 'write_results'
]
