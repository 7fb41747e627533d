"""Stopping a run between two iterations on a signal, to be resumed by a resubmitted job.

SLURM sends SIGTERM at a job's time limit and on preemption (then SIGKILL after the cluster's
KillWait, often 30 s), and, with ``sbatch --signal=TERM@N`` (``resources.train.warning_seconds``),
N seconds before the limit. SIGUSR1 is taken too, for job scripts that ask for it (``--signal=USR1@N``).
The trainer finishes the iteration under way, writes a checkpoint and exits with ``STOPPED_EXIT``,
which the workflow treats as a failure and resubmits (``resources.train.resubmissions``).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

STOPPED_EXIT = 75
"""The trainer's exit code after a signal: stopped at an iteration boundary with a checkpoint, resumable
(EX_TEMPFAIL of sysexits.h)."""

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

AGENT_PREFIX = "trap '' TERM; exec env PET_SIGNALS_TO_HANDLE=SIGINT,SIGHUP,SIGQUIT"
"""Shell words before ``accelerate launch`` (torchrun's agent) in a SLURM job: SLURM signals every process of the job
step, and the agent would answer SIGTERM by killing its workers 30 s later, amid an iteration; with SIGTERM ignored
(the workers set their own handler) it waits until they have checkpointed and exited. PET_SIGNALS_TO_HANDLE is
torchrun's --signals-to-handle (default SIGTERM,SIGINT,SIGHUP,SIGQUIT)."""


class Stopped(Exception):
    """The run stopped after ``iteration`` iterations on a signal; its checkpoint of that iteration is written."""

    def __init__(self, iteration: int, reason: str) -> None:
        super().__init__(f"stopped by {reason} after iteration {iteration}")
        self.iteration, self.reason = iteration, reason


class StopSignals:
    """While entered, SIGTERM and SIGUSR1 are recorded (``received``: the first one's name) instead of ending the process.

    Not entered (or outside the main thread, where Python cannot set handlers), nothing is recorded.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._record) for sig in SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
