"""A throwaway one-node SLURM cluster on this machine, for the SLURM end-to-end test.

Needs root and the Debian packages ``slurm-wlm munge`` (``.ci/run`` installs them). The
controller and the node daemon listen on 127.0.0.1 only, keep their state and logs in a
temporary directory, and are stopped by PID. ``/etc/slurm/slurm.conf`` is written because the
``srun`` inside each job reads it from there; a slurm.conf that was there before is put back.
Anything that does not come up within the time limits raises :class:`ClusterUnavailable` with
the daemons' log tails, so the test skips with the reason instead of hanging.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
BACKUP = SLURM_CONF.with_name("slurm.conf.siamcollapse-tests-backup")
MARKER = "# Written by the siamcollapse tests (tests/workflow/slurm_cluster.py); removed when they end."
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
MUNGE_LOG = Path("/var/log/munge/munged.log")
DAEMONS = ("slurmctld", "slurmd", "munged")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun", "munge", "unmunge")
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
START_TIMEOUT_S = 60


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be started here; the message says why."""


def which(name: str) -> str | None:
    """Like shutil.which, also looking in the sbin directories a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def missing_requirement() -> str | None:
    """Why a cluster cannot be started here, or None when it can be tried."""
    if os.geteuid() != 0:
        return "starting a SLURM cluster needs root (munged as user munge, slurmd as root)"
    missing = [name for name in (*DAEMONS, *CLIENTS) if which(name) is None]
    if missing:
        return f"SLURM/munge not installed: {', '.join(missing)} not found (apt-get install slurm-wlm munge)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (the munge package creates it)"
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace") and _controller_answers():
        return f"a SLURM controller configured by {SLURM_CONF} is running here; not replacing its configuration"
    return None


def _run(*cmd: str, timeout: float = 10, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([which(cmd[0]) or cmd[0], *cmd[1:]], capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)


def _controller_answers() -> bool:
    try:
        return "UP" in _run("scontrol", "ping", timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({path}: {exc})"


def _real_memory_mb() -> int:
    """A RealMemory slurmd accepts (at most what it finds) that leaves the system some room."""
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(1000, int(total_mb * 0.8))


class SlurmCluster:
    """One controller and one node (this host, all its CPUs) in the partition ``test``."""

    partition = "test"

    def __init__(self) -> None:
        self.node = socket.gethostname().split(".")[0]
        self.root = Path(tempfile.mkdtemp(prefix="siamcollapse-slurm-"))
        self.processes: dict[str, subprocess.Popen] = {}
        self._outputs: list = []  # the daemons' stdout files
        self._conf_written = False

    # -- start -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._start_munge()
        self._write_conf()
        for daemon in ("slurmctld", "slurmd"):
            self.processes[daemon] = subprocess.Popen([which(daemon), "-D", "-f", str(SLURM_CONF)],
                                                      stdout=self._output(daemon), stderr=subprocess.STDOUT,
                                                      stdin=subprocess.DEVNULL)
        self._wait_until_idle()

    def _output(self, daemon: str):
        self._outputs.append(open(self.root / f"{daemon}.out", "w"))  # noqa: SIM115 (closed in stop)
        return self._outputs[-1]

    def _start_munge(self) -> None:
        if self._munge_works():
            return  # a munged already serves the default socket (e.g. the system's own)
        munge = pwd.getpwnam("munge")
        MUNGE_RUN.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chown(MUNGE_RUN, munge.pw_uid, munge.pw_gid)
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(MUNGE_KEY.parent, munge.pw_uid, munge.pw_gid)
            MUNGE_KEY.write_bytes(os.urandom(128))
            os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)
            MUNGE_KEY.chmod(0o400)
        self.processes["munged"] = subprocess.Popen([which("munged"), "--foreground"], user=munge.pw_uid,
                                                    group=munge.pw_gid, extra_groups=[], stdout=self._output("munged"),
                                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self._munge_works():
            if self.processes["munged"].poll() is not None or time.monotonic() > deadline:
                raise ClusterUnavailable(f"munged did not start:\n{_tail(self.root / 'munged.out')}\n"
                                         f"{_tail(MUNGE_LOG)}")
            time.sleep(0.2)

    @staticmethod
    def _munge_works() -> bool:
        try:
            credential = _run("munge", "-n", timeout=5)
            return credential.returncode == 0 and _run("unmunge", input=credential.stdout, timeout=5).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _write_conf(self) -> None:
        state, spool = self.root / "state", self.root / "spool"
        state.mkdir()
        spool.mkdir()
        conf = f"""{MARKER}
ClusterName=siamcollapse-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
# Bind to the addresses above (loopback), not to every interface.
CommunicationParameters=NoInAddrAny
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/slurmctld.log
SlurmdLogFile={self.root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no accounting daemon: what a container or a CI machine allows.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
# Finished jobs stay visible to squeue (the executor's status command here) for an hour.
MinJobAge=3600
ReturnToService=2
SelectType=select/cons_tres
# CPUs and memory are what jobs ask for (sbatch --cpus-per-task, --mem); a job that gives no
# --mem gets 500 MB per CPU instead of the whole node.
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=500
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_real_memory_mb()} State=UNKNOWN
# Two jobs may share a CPU: Snakemake submits a job only when it sees, at its next status check,
# that the job's inputs are done, and these jobs are short, so the CPUs would often idle.
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:2
"""
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace"):
            SLURM_CONF.replace(BACKUP)
        self._conf_written = True
        SLURM_CONF.write_text(conf)

    def _wait_until_idle(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        state = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterUnavailable(f"{name} exited with {process.returncode}:\n{self.logs()}")
            try:
                state = _run("sinfo", "--noheader", "--Node", "--nodes", self.node, "--format", "%T", timeout=10).stdout
            except subprocess.TimeoutExpired:
                state = "(sinfo timed out)"
            if state.strip() == "idle":
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"node {self.node} not idle after {START_TIMEOUT_S} s (state: {state.strip()!r}):\n"
                                 f"{self.logs()}")

    # -- inspect -----------------------------------------------------------------------------------------
    def logs(self) -> str:
        names = ["slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"]
        return "\n".join(f"--- {name}\n{_tail(self.root / name)}" for name in names if (self.root / name).exists())

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller knows (running or finished): id, state, name, comment."""
        fields = ("id", "state", "name", "comment")
        out = _run("squeue", "--states=all", "--noheader", "--format=%i|%T|%j|%k", timeout=30).stdout
        return [dict(zip(fields, line.split("|", 3), strict=True)) for line in out.splitlines() if line.strip()]

    def _cancel_jobs(self, timeout_s: float = 30) -> None:
        """scancel every job and wait until their step daemons are gone: each slurmstepd (forked
        by slurmd, not stopped with it) keeps a socket in the spool directory while it lives."""
        try:
            _run("scancel", "--full", "--partition", self.partition, "--user", pwd.getpwuid(os.getuid()).pw_name,
                 timeout=15)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any((self.root / "spool").glob(f"{self.node}_*")):
            time.sleep(0.2)

    # -- stop ----------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel what still runs, stop exactly the daemons started here (by PID), put
        /etc/slurm/slurm.conf back and remove the state directory."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            self._cancel_jobs()
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for output in self._outputs:
            output.close()
        self._outputs.clear()
        if self._conf_written:
            if BACKUP.exists():
                BACKUP.replace(SLURM_CONF)
            else:
                SLURM_CONF.unlink(missing_ok=True)
            self._conf_written = False
        shutil.rmtree(self.root, ignore_errors=True)
