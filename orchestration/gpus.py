"""GPU slots: each step that asks for ``resources: {gpu: k}`` gets k devices of its own.

A worker is given device ids (``--gpus 0,1,2,3``; by default those in
``CUDA_VISIBLE_DEVICES``, else those ``nvidia-smi -L`` lists, else none) and
``--slots-per-gpu N``. A slot is a lock file per device and slot number, held with ``flock``
by the process that runs the step, so the kernel frees it when that process ends however it
ends, and every experiment of every worker on this host shares the same slots. A step sees
its devices as ``CUDA_VISIBLE_DEVICES`` (the ids as given, not renumbered), a step without a
gpu resource sees ``CUDA_VISIBLE_DEVICES=""`` so it cannot grab one by accident, and a step
waits (it does not fail) while none is free.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .exceptions import UsageError
from .fsutil import HOST

WAIT_SECONDS = 0.2
ENV = "CUDA_VISIBLE_DEVICES"


def parse_devices(text: str) -> list[str]:
    """``"0,1, 3"`` -> ``["0", "1", "3"]``; ids may be numbers or UUIDs (``GPU-...``)."""
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if len(set(devices)) != len(devices):
        raise UsageError(f"--gpus {text!r} names a device twice")
    bad = [d for d in devices if not all(c.isalnum() or c in "-_:" for c in d)]
    if bad:
        raise UsageError(f"--gpus: {bad[0]!r} is not a device id; give ids such as 0,1 or "
                         "GPU UUIDs")
    return devices


def default_devices() -> list[str]:
    """The devices this process may use: ``CUDA_VISIBLE_DEVICES`` if set (a Slurm job's
    allocation), else every GPU ``nvidia-smi -L`` lists, else none."""
    if ENV in os.environ:
        return parse_devices(os.environ[ENV])
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        listed = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=20,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[0].split()[-1] for line in listed.splitlines()
            if line.startswith("GPU ")]


def _lock_folder() -> Path:
    """Per host (and per Slurm job: a job may see its devices renumbered from 0)."""
    job = os.environ.get("SLURM_JOB_ID")
    name = f"job-orchestration-gpus-{os.getuid()}-{HOST}" + (f"-job{job}" if job else "")
    folder = Path(tempfile.gettempdir()) / name
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class GpuPool:
    """The GPU slots of one worker (shared by its runners through lock files)."""

    def __init__(self, devices: list[str], slots_per_gpu: int = 1) -> None:
        if slots_per_gpu < 1:
            raise UsageError("--slots-per-gpu must be at least 1")
        self.devices, self.slots_per_gpu = list(devices), slots_per_gpu
        self.folder = _lock_folder() if devices else None

    def check(self, needed: int, what: str) -> str | None:
        """Why ``needed`` GPUs can never be given here (None when they can)."""
        if needed > len(self.devices):
            have = ", ".join(self.devices) or "none"
            return (f"{what} needs {needed} GPU(s) but this worker has {len(self.devices)} "
                    f"({have}); start a worker with more (--gpus) or lower resources.gpu")
        return None

    @contextmanager
    def lease(self, count: int, on_wait: Callable[[], None] = lambda: None
              ) -> Iterator[list[str]]:
        """``count`` devices for the block (waiting while they are taken)."""
        if count <= 0:
            yield []
            return
        if (problem := self.check(count, "this step")) is not None:
            raise UsageError(problem)
        waited = False
        while True:
            held = self._try(count)
            if held is not None:
                break
            if not waited:
                on_wait()
                waited = True
            time.sleep(WAIT_SECONDS)  # polling free slots, by design (kernel locks, no queue)
        try:
            yield [device for device, _ in held]
        finally:
            for _, fd in held:
                os.close(fd)  # closing releases the flock

    def _try(self, count: int) -> list[tuple[str, int]] | None:
        """A free slot on each of ``count`` distinct devices, spreading steps over devices
        before sharing one (slot 0 of every device first); None, holding nothing, when
        there are not enough."""
        assert self.folder is not None
        held: list[tuple[str, int]] = []
        for slot in range(self.slots_per_gpu):
            for device in self.devices:
                if any(device == d for d, _ in held):
                    continue
                path = self.folder / f"gpu-{device}.slot{slot}.lock"
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                held.append((device, fd))
                if len(held) == count:
                    return held
        for _, fd in held:
            os.close(fd)
        return None
