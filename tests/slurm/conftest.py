"""A real one-node Slurm cluster for the tests in this folder: munged with a key made here,
slurmctld and slurmd with a minimal slurm.conf (``slurm.conf.in``), their state, spool, pid
and log files in a temp folder, their ports picked free. It never reads or changes
/etc/munge or /etc/slurm: clients find it through ``SLURM_CONF``, which the jobs inherit.

Started once per session (about 3 s), stopped at the end by the pids in its pid files.
Where it cannot start (not root, packages missing, a daemon that will not come up) the
tests that need it are skipped, saying why."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Iterator

import pytest

from tests.conftest import free_port, wait_until

TEMPLATE = Path(__file__).with_name("slurm.conf.in")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin"])
START_SECONDS = 30


@dataclass
class Cluster:
    folder: Path

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use this cluster (a job passes it on to its tasks)."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=30)

    def tasks(self) -> dict[str, str]:
        """Every array task (or job) the controller knows, e.g. ``{"3_1": "RUNNING"}``."""
        out = self.run("squeue", "--noheader", "--array", "--states=all", "--format=%i|%T")
        assert out.returncode == 0, out.stderr
        return dict(line.split("|") for line in out.stdout.split())

    def cancel_all(self) -> None:
        """Cancel every job and wait until none is left running, so the next test has the
        node's CPUs to itself."""
        live = [t for t, state in self.tasks().items()
                if state not in ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT")]
        if live:
            self.run("scancel", *live)
        wait_until(lambda: all(state in ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT")
                               for state in self.tasks().values()), 40, "jobs to end")

    def log_tail(self) -> str:
        logs = sorted((self.folder / "log").glob("*.log")) + [self.folder / "munge" / "log"]
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-15:])
                         for p in logs if p.exists())


def _binary(name: str) -> str | None:
    """Daemons live in sbin, which a CI job's PATH may lack."""
    return shutil.which(name, path=SEARCH_PATH)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the test Slurm cluster runs slurmd as root (run the tests as root)"
    missing = [b for b in BINARIES if _binary(b) is None]
    if missing:
        return (f"Slurm or munge is not installed ({', '.join(missing)} missing): "
                "apt-get install slurm-wlm munge")
    return None


def _start(folder: Path) -> Cluster:
    cluster = Cluster(folder)
    for sub in ("munge", "state", "spool", "log"):
        (folder / sub).mkdir()
    folder.chmod(0o755)  # munged insists that everyone may reach its socket
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge = folder / "munge"
    subprocess.run([_binary("munged"), f"--key-file={key}", f"--socket={munge / 'munge.socket'}",
                    f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'log'}",
                    f"--seed-file={munge / 'seed'}"], check=True, capture_output=True)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
    cluster.conf.write_text(Template(TEMPLATE.read_text()).substitute(
        host=socket.gethostname().split(".")[0], dir=folder, memory=memory,
        ctld_port=free_port(), slurmd_port=free_port()))
    for daemon in ("slurmctld", "slurmd"):
        subprocess.run([_binary(daemon), "-f", str(cluster.conf)], check=True, capture_output=True,
                       env={**os.environ, **cluster.env})
    deadline = time.monotonic() + START_SECONDS
    while cluster.run("sinfo", "--noheader", "--format=%T").stdout.strip() != "idle":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the node is not idle after {START_SECONDS} s")
        time.sleep(0.2)
    return cluster


def _stop(folder: Path) -> None:
    """Stop the daemons by their pid files: slurmd, then slurmctld, then munged."""
    for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
        try:
            pid = int((folder / pid_file).read_text())
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            continue
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    why = _why_not()
    if why:
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="jo-slurm-"))  # not under pytest's 0700 tmp
    try:
        try:
            cluster = _start(folder)
        except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"the test Slurm cluster did not start: {exc} "
                        f"{detail.decode(errors='replace')}\n{Cluster(folder).log_tail()}")
        yield cluster
        cluster.cancel_all()
    finally:
        _stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster: Cluster) -> Iterator[Cluster]:
    """The session's cluster, with every job cancelled after the test."""
    yield slurm_cluster
    slurm_cluster.cancel_all()
