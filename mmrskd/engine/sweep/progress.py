"""Progress of a sweep: a bar over the grid and the status of every run.

On a terminal the display is redrawn in place (rich); otherwise (CI, pipes)
one line is printed per status change.
"""
import re
import sys
from typing import Dict, List, Optional

from mmrskd.engine.sweep.state import (BUSY, DONE, FAILED, PENDING, RESUME,
                                       RUNNING, SKIPPED, STALE)

FINISHED = (DONE, FAILED, SKIPPED, BUSY, STALE)
STYLES = {PENDING: 'dim', RESUME: 'yellow', RUNNING: 'bold cyan',
          DONE: 'green', FAILED: 'bold red', SKIPPED: 'green', BUSY: 'magenta',
          STALE: 'red'}
_EPOCH = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\s*\[\s*(\d+)/(\d+)\]')
_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'eta:\s*([\d:]+(?: days?, [\d:]+)?)')


def training_progress(log_text: str) -> str:
    """``'epoch 2 [5/10] eta 0:01:10'`` from the last training line of an
    mmengine log, or ``''``."""
    for line in reversed(log_text.splitlines()):
        epoch, it = _EPOCH.search(line), _ITER.search(line)
        if not (epoch or it):
            continue
        text = (f'epoch {epoch[1]} [{epoch[2]}/{epoch[3]}]' if epoch else
                f'iter {it[1]}/{it[2]}')
        eta = _ETA.search(line)
        return f'{text} eta {eta[1]}' if eta else text
    return ''


class SweepProgress:
    """Show the sweep's runs and their statuses.

    Args:
        names (list[str]): run names, in order.
        statuses (dict[str, str]): initial status per run.
        stream: where to write. Defaults to stdout.
        live (bool, optional): redraw in place; default when ``stream`` is a
            terminal.
    """

    def __init__(self, names: List[str], statuses: Dict[str, str],
                 stream=None, live: Optional[bool] = None):
        from rich.console import Console
        self.names = list(names)
        self.statuses = dict(statuses)
        self.details = {name: '' for name in names}
        self.console = Console(file=stream or sys.stdout,
                               highlight=False, soft_wrap=True)
        self.live = None
        if live if live is not None else self.console.is_terminal:
            from rich.live import Live
            self.live = Live(self._render(), console=self.console,
                             refresh_per_second=2, transient=False)
            self.live.start()
        else:
            for name in self.names:
                self._print_line(name)

    def counts(self) -> Dict[str, int]:
        counts = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def summary(self) -> str:
        finished = sum(s in FINISHED for s in self.statuses.values())
        counts = '  '.join(f'{status} {n}' for status, n in
                           sorted(self.counts().items()))
        return f'{finished}/{len(self.names)} runs finished  ({counts})'

    def _render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        table = Table(box=None, pad_edge=False, show_header=True)
        for column in ('#', 'run', 'status', ''):
            table.add_column(column, overflow='fold')
        for index, name in enumerate(self.names, 1):
            status = self.statuses[name]
            table.add_row(str(index), name,
                          f'[{STYLES[status]}]{status}[/]', self.details[name])
        finished = sum(s in FINISHED for s in self.statuses.values())
        header = Table.grid(padding=(0, 2))
        header.add_row(
            ProgressBar(total=max(len(self.names), 1), completed=finished,
                        width=40), self.summary())
        return Group(header, table)

    def update(self, name: str, status: Optional[str] = None,
               detail: Optional[str] = None):
        """Set a run's status and/or detail text (a line without live)."""
        changed = status is not None and status != self.statuses[name]
        if status is not None:
            self.statuses[name] = status
        if detail is not None:
            self.details[name] = detail
        if self.live is not None:
            self.live.update(self._render())
        elif changed:
            self._print_line(name)

    def _print_line(self, name):
        finished = sum(s in FINISHED for s in self.statuses.values())
        detail = self.details[name]
        self.console.print(
            f'[sweep {finished}/{len(self.names)}] '
            f'{self.statuses[name]:<8} {name}' + (f'  {detail}' if detail
                                                  else ''), markup=False)

    def close(self):
        if self.live is not None:  # its header holds the summary
            self.live.update(self._render())
            self.live.stop()
        else:
            self.console.print(f'[sweep] {self.summary()}', markup=False)

