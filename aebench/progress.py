"""Progress events: what a benchmark reports while it runs, and who shows them.

The runner, the execution of one run and the training loop never print: they
call an ``on_event(event)`` callback with the small, picklable dataclasses
below (so a worker process can forward them to the parent). The CLI supplies
:class:`ConsoleProgress` (rich progress bars on a terminal, plain log lines
otherwise); library users pass their own callable, or nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SITE_EVERY = 5.0
"""Seconds between progress lines of one step of the site build."""


@dataclass(frozen=True)
class BenchmarkStarted:
    total: int
    skipped: int


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    label: str
    index: int
    total: int


@dataclass(frozen=True)
class EpochStarted:
    epoch: int
    epochs: int
    steps: int


@dataclass(frozen=True)
class StepsDone:
    """``advance`` more training steps are done; ``loss`` is the latest batch loss."""

    loss: float
    advance: int = 1


@dataclass(frozen=True)
class EpochEnded:
    row: dict[str, float]


@dataclass(frozen=True)
class Stage:
    """A step of a run after training (``"evaluating: fid"``) or of the benchmark."""

    text: str


@dataclass(frozen=True)
class RunEnded:
    run_id: str
    label: str
    index: int
    total: int
    status: str  # done | failed | interrupted
    reason: str | None
    seconds: float


@dataclass(frozen=True)
class Message:
    """A line for the user (a warning, a note)."""

    text: str


@dataclass(frozen=True)
class FromWorker:
    """An event that happened in worker ``worker`` (1-based) of a parallel executor."""

    worker: int
    event: Any


Event = (
    BenchmarkStarted
    | RunStarted
    | EpochStarted
    | StepsDone
    | EpochEnded
    | Stage
    | RunEnded
    | Message
    | FromWorker
)
OnEvent = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default callback: report nothing."""


class ConsoleProgress:
    """Shows events on a rich console: live bars on a terminal (one line for the grid,
    one per worker: its cell, epoch, loss and ETA), plain log lines otherwise
    (prefixed with ``[wN]`` when several workers run).

    Call it with events; call :meth:`close` when the benchmark ends.
    """

    def __init__(self, console: Any = None, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self._bar: Any = None
        self._runs: Any = None
        self._tasks: dict[int, Any] = {}
        self._epoch: dict[int, tuple[int, int]] = {}
        self._labels: dict[int, str] = {}
        self._parallel = False
        self._site_said = time.monotonic()

    def __call__(self, event: Event, worker: int = 0) -> None:
        if isinstance(event, FromWorker):
            self._parallel = True
            self(event.event, event.worker)
            return
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event, worker)

    def log(self, message: str, worker: int = 0) -> None:
        if self.quiet:
            return
        if self._parallel and worker:
            message = f"[w{worker}] {message}"
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _task(self, worker: int) -> Any:
        if self._bar is None:
            return None
        if worker not in self._tasks:
            self._tasks[worker] = self._bar.add_task("", total=1, info="", visible=False)
        return self._tasks[worker]

    def _describe(self, worker: int, what: str) -> str:
        label = self._labels.get(worker, "")
        head = f"w{worker} " if self._parallel else ""
        return f"{head}{label}: {what}" if label else f"{head}{what}"

    # -- handlers ------------------------------------------------------------------
    def _on_BenchmarkStarted(self, e: BenchmarkStarted, worker: int) -> None:
        if e.skipped:
            self.log(
                f"{e.skipped} of {e.total} runs already finished: skipping them "
                "(use --force to redo)"
            )
        if not self.live or self._bar is not None:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._bar.start()
        self._runs = self._bar.add_task("runs", total=e.total, completed=e.skipped, info="")

    def _on_RunStarted(self, e: RunStarted, worker: int) -> None:
        self._labels[worker] = e.label
        self.log(f"[{e.index}/{e.total}] {e.label}", worker)

    def _on_RunEnded(self, e: RunEnded, worker: int) -> None:
        msg = f"[{e.index}/{e.total}] {e.label}: {e.status}"
        self.log(msg + (f" ({e.reason})" if e.reason else ""), worker)
        self._labels.pop(worker, None)
        if self._bar is not None:
            self._bar.advance(self._runs)
            self._bar.update(self._task(worker), visible=False)

    def _on_EpochStarted(self, e: EpochStarted, worker: int) -> None:
        self._epoch[worker] = (e.epoch, e.epochs)
        task = self._task(worker)
        if task is not None:
            self._bar.reset(
                task,
                total=e.steps,
                visible=True,
                description=self._describe(worker, f"epoch {e.epoch}/{e.epochs}"),
                info="",
            )

    def _on_StepsDone(self, e: StepsDone, worker: int) -> None:
        task = self._task(worker)
        if task is not None:
            self._bar.update(task, advance=e.advance, info=f"loss {e.loss:.2f}")

    def _on_EpochEnded(self, e: EpochEnded, worker: int) -> None:
        epoch, epochs = self._epoch.get(worker, (0, 0))
        row = e.row
        self.log(
            f"    epoch {epoch}/{epochs}: train {row['train_total']:.2f}  "
            f"val {row['val_total']:.2f} nats/img  val SSIM {row.get('val_ssim', float('nan')):.3f}"
            f"  ({row['seconds']:.1f} s)",
            worker,
        )

    def _on_Stage(self, e: Stage, worker: int) -> None:
        task = self._task(worker)
        if task is not None:
            self._bar.update(task, visible=True, description=self._describe(worker, e.text))
        else:
            self.log(f"    {e.text}", worker)

    def _on_Message(self, e: Message, worker: int) -> None:
        self.log(e.text, worker)

    def _on_SiteProgress(self, e: Any, worker: int) -> None:
        """:class:`aebench.report.SiteProgress`: a line when a step of the site build ends,
        and one every :data:`SITE_EVERY` seconds within a long step (run pages, plots)."""
        now = time.monotonic()
        if e.done == e.total or now - self._site_said >= SITE_EVERY:
            self._site_said = now
            self.log(f"    {e.text}", worker)
