"""Benchmark sweeps (``docs/sweeps.md``): grids of configs × overrides,
their training, results and README tables."""
from mmrskd.engine.sweep.executor import SweepExecutor
from mmrskd.engine.sweep.grid import (Sweep, SweepRun, config_stem,
                                      expand_grid, is_sweep_file,
                                      load_sweep_file)
from mmrskd.engine.sweep.launch import LaunchOptions
from mmrskd.engine.sweep.results import (RunResult, collect_results,
                                         write_results)

__all__ = [
    'Sweep', 'SweepRun', 'config_stem', 'expand_grid', 'is_sweep_file',
    'load_sweep_file', 'LaunchOptions', 'SweepExecutor', 'RunResult',
    'collect_results', 'write_results'
]
