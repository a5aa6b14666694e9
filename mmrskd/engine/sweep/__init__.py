"""Benchmark sweeps, results tables and model-zoo releases.

* :mod:`.grid`: configs × ``--cfg-options`` axes → named runs;
* :mod:`.executor`: train them one by one (skip finished, resume
  interrupted), with :mod:`.launch` and :mod:`.progress`;
* :mod:`.logs`, :mod:`.results`: metrics from the runs' logs → CSV,
  Markdown, PNG;
* :mod:`.tables`: teacher/student/distilled tables for the READMEs;
* :mod:`.release`, :mod:`.model_index`: student-only releases and the
  model index.
"""
from mmrskd.engine.sweep.executor import (SweepExecutor, read_manifest,
                                          select_runs)
from mmrskd.engine.sweep.grid import (Sweep, SweepRun, config_stem,
                                      expand_grid, is_sweep_file,
                                      load_sweep_file)
from mmrskd.engine.sweep.launch import LaunchOptions, train_command
from mmrskd.engine.sweep.logs import RunLog, pick_metric, read_run_log
from mmrskd.engine.sweep.results import (RunResult, collect_results,
                                         write_results)

__all__ = [
    'Sweep', 'SweepRun', 'config_stem', 'expand_grid', 'is_sweep_file',
    'load_sweep_file', 'LaunchOptions', 'train_command', 'SweepExecutor',
    'read_manifest', 'select_runs', 'RunLog', 'pick_metric', 'read_run_log',
    'RunResult', 'collect_results', 'write_results'
]
