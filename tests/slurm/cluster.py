"""A real SLURM on this machine, for tests: munged, slurmctld and one slurmd per node on loopback.

``start(folder, nodes=n)`` writes the config to /etc/slurm/slurm.conf (job steps started by srun only
find it there), starts the daemons and waits until every node is idle; ``stop(folder)`` kills them
by their PID files and removes the config. With ``nodes > 1`` every node is this host under its own
name and slurmd port (``slurmd -N node<i>``), so a job's tasks on "different nodes" are processes here.
It refuses to touch a slurm.conf it did not write.
Needs root and Debian's slurmctld, slurmd, slurm-client and munge packages
(``apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by grpo-guard's tests/slurm/cluster.py\n"

CONF = MARK + """ClusterName=grpoguard
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd-%n.log
SlurmctldPort=6917
SlurmdPort=6918
{node_lines}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
NODE = "NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={cpus} RealMemory={memory} State=UNKNOWN"


def node_names(nodes: int) -> list[str]:
    """The node names of a cluster of ``nodes`` nodes (``localhost`` alone for one)."""
    return ["localhost"] if nodes == 1 else [f"node{i}" for i in range(1, nodes + 1)]


def missing() -> str | None:
    """Why SLURM cannot run here, or None."""
    if os.geteuid() != 0:
        return "a local SLURM needs root"
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return f"SLURM/munge binaries missing: {absent} (apt-get install slurmctld slurmd slurm-client munge)"
    if SYSTEM_CONF.is_file() and not SYSTEM_CONF.read_text().startswith(MARK):
        return f"{SYSTEM_CONF} belongs to a real SLURM installation; the test cluster will not overwrite it"
    return None


def start(folder: Path, cpus: int = 2, memory_mb: int = 8000, nodes: int = 1) -> None:
    """Start munged, slurmctld and a slurmd per node (``cpus`` and ``memory_mb`` each) with their state and
    logs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "state"
    for sub in ("ctld", "d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    names = node_names(nodes)
    lines = "\n".join(NODE.format(name=n, port=6918 + i, cpus=cpus, memory=memory_mb) for i, n in enumerate(names))
    SYSTEM_CONF.write_text(CONF.format(folder=folder, state=state, node_lines=lines))
    run = Path("/run/munge")
    run.mkdir(exist_ok=True)
    shutil.chown(run, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "munged", "--pid-file", str(run / "munged.pid")], check=False)
    (folder / "munged.pid").write_text((run / "munged.pid").read_text() if (run / "munged.pid").is_file() else "")
    subprocess.run(["slurmctld"], check=True)
    for name in names:
        (state / "d" / name).mkdir(exist_ok=True)
        subprocess.run(["slurmd", "-N", name], check=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        states = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True).stdout.split()
        if states == ["idle"] * nodes:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the SLURM nodes {names} did not all become idle (states: {states}); see "
                       f"{folder}/slurmctld.log and slurmd-<node>.log")


def stop(folder: Path) -> None:
    """Kill the daemons by their PID files and remove the config."""
    for pid_file in [*folder.glob("slurmd-*.pid"), folder / "slurmctld.pid", folder / "munged.pid"]:
        if pid_file.is_file() and pid_file.read_text().strip():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except ProcessLookupError:
                pass
    if SYSTEM_CONF.is_file() and SYSTEM_CONF.read_text().startswith(MARK):
        SYSTEM_CONF.unlink()
