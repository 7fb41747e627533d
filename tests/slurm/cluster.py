"""A real one-node SLURM on this machine, for tests: munged, slurmctld and slurmd on loopback.

``start(folder)`` writes the config to /etc/slurm/slurm.conf (job steps started by srun only find
it there), starts the three daemons and waits until the node is idle; ``stop(folder)`` kills them
by their PID files and removes the config. It refuses to touch a slurm.conf it did not write.
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
SlurmdSpoolDir={state}/d
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


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


def start(folder: Path, cpus: int = 2, memory_mb: int = 8000) -> None:
    """Start munged, slurmctld and slurmd with their state and logs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "state"
    for sub in ("ctld", "d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.write_text(CONF.format(folder=folder, state=state, cpus=cpus, memory=memory_mb))
    run = Path("/run/munge")
    run.mkdir(exist_ok=True)
    shutil.chown(run, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "munged", "--pid-file", str(run / "munged.pid")], check=False)
    (folder / "munged.pid").write_text((run / "munged.pid").read_text() if (run / "munged.pid").is_file() else "")
    subprocess.run(["slurmctld"], check=True)
    subprocess.run(["slurmd", "-N", "localhost"], check=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        if subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip() == "idle":
            return
        time.sleep(0.5)
    raise RuntimeError(f"the SLURM node did not become idle; see {folder}/slurmctld.log and slurmd.log")


def stop(folder: Path) -> None:
    """Kill the daemons by their PID files and remove the config."""
    for name in ("slurmd", "slurmctld", "munged"):
        pid_file = folder / f"{name}.pid"
        if pid_file.is_file() and pid_file.read_text().strip():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except ProcessLookupError:
                pass
    if SYSTEM_CONF.is_file() and SYSTEM_CONF.read_text().startswith(MARK):
        SYSTEM_CONF.unlink()
