"""Metric services (the GenEval detector, the UnifiedReward judge) started for the length of a job.

A metric block of the config may hold ``serve``, a shell command that starts the metric's server
(in its own environment, e.g. ``conda run -p <env> python -m eval.geneval.service ...`` or
``workflow/scripts/serve_unifiedreward.sh ...``), next to the ``url`` the client talks to.
:func:`running_services` starts each such command unless something already listens at its url,
waits until the port accepts connections (``serve_timeout`` seconds, default 900), and stops it when
the job ends, so a training or scoring job on a GPU node brings up what it needs and leaves nothing
behind. The server's output goes to ``serve_log`` (default: a file beside the job's output).
``{port}`` in ``serve`` and ``url`` is replaced by a free port chosen for the job, so jobs that share
a node each talk to their own server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import ExitStack, contextmanager
from copy import deepcopy
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlparse


class ServiceError(RuntimeError):
    """A metric server that did not come up; the message names the command and its log."""


def listening(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port. A socket connected to itself does not
    count: with nothing listening on a local port of the ephemeral range, the kernel may pick that very port as the
    source port, and the connection succeeds with no server."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", port), timeout=timeout) as connection:
            return connection.getsockname() != connection.getpeername()
    except OSError:
        return False


@contextmanager
def service(name: str, options: dict[str, Any], log_dir: Path) -> Iterator[None]:
    """Run metric ``name``'s ``serve`` command until the block exits (nothing to do without one)."""
    command, url = options.get("serve"), options.get("url")
    if not command or (url and listening(url)):
        yield
        return
    if not url:
        raise ServiceError(f"metrics.{name}.serve is set but metrics.{name}.url is not; set the url the server listens at")
    log_path = Path(options.get("serve_log") or log_dir / f"{name}_server.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, shell=True, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_listening(name, url, process, float(options.get("serve_timeout", 900)), log_path)
        print(f"{name}: server up at {url} (log {log_path})", flush=True)
        yield
    finally:
        stop(process)


def wait_until_listening(name: str, url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    """Poll ``url`` until it accepts connections; fail early if the server exits."""
    deadline = time.monotonic() + timeout
    while not listening(url):
        if process.poll() is not None:
            raise ServiceError(f"the {name} server exited with code {process.returncode} before listening at {url}; "
                               f"see {log_path} (command: metrics.{name}.serve)")
        if time.monotonic() > deadline:
            stop(process)
            raise ServiceError(f"the {name} server did not listen at {url} within {timeout:.0f} s; see {log_path} "
                               f"(raise metrics.{name}.serve_timeout if the model loads slowly)")
        time.sleep(0.5)


def stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Terminate the server's whole process group (the shell and what it started); kill what is left after ``grace`` s."""
    if not group_alive(process.pid):
        process.poll()
        return
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(process.pid) and time.monotonic() < deadline:
        process.poll()  # reap the leader so the group can empty
        time.sleep(0.1)
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs a thread (a reaped or zombie-only group counts as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(_in_group(pid, pgid) and not _zombie(pid) for pid in _pids())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except ProcessLookupError:
        return False


def _zombie(pid: int) -> bool:
    """Whether every thread of ``pid`` has exited. A zombie main thread is not enough: the process's other threads
    (a threading server's) may still be exiting, its sockets open until the last one is done."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    return all(_thread_state(pid, tid) in ("Z", "X") for tid in threads)


def _thread_state(pid: int, tid: str) -> str:
    """The state letter of thread ``tid`` of ``pid`` ("X", dead, once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_ports(metrics: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A copy of ``metrics`` whose ``{port}`` placeholders (in ``serve`` and ``url`` of ``names``) name a free port."""
    resolved = deepcopy(metrics)
    for name in dict.fromkeys(names):
        options = resolved.get(name) or {}
        if "{port}" in str(options.get("url", "")) + str(options.get("serve", "")):
            if not options.get("serve"):
                raise ServiceError(f"metrics.{name}.url has a {{port}} placeholder but no serve command starts a "
                                   "server there; give the server's real port or a serve command")
            port = str(free_port())
            options.update({k: options[k].replace("{port}", port) for k in ("url", "serve") if k in options})
    return resolved


@contextmanager
def running_services(metrics: dict[str, Any], names: Sequence[str], log_dir: Path) -> Iterator[dict[str, Any]]:
    """Every server that the metrics ``names`` need, up for the length of the block; yields the metrics
    section with the ports chosen for this job."""
    metrics = with_ports(metrics, names)
    with ExitStack() as stack:
        for name in dict.fromkeys(names):
            stack.enter_context(service(name, metrics.get(name) or {}, log_dir))
        yield metrics
