"""GPU slots through the real worker, with a faked device list (``--gpus``): what each step
saw in ``CUDA_VISIBLE_DEVICES`` and when, recorded by the step itself; no two steps at once
on a device (no more than ``--slots-per-gpu``); waiting, not failing, while none is free; a
step asking for more than there are rejected at ``ready`` (luigid's ``[resources]``) or at
claim. On a machine with a real GPU, ``nvidia-smi`` from inside a step."""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import read_ledger, run_cli, state_of, wait_until
from tests.e2e.test_execution import WORKER_TIMEOUT, error_text, queue, show
from tests.e2e.test_faults import background

TRAIN_AND_EVAL = [{"id": "train", "method": "GpuProbe", "resources": {"gpu": 1}},
                  {"id": "eval", "method": "GpuProbe"}]


def lock_env(tmp_path: Path) -> dict[str, str]:
    """The slots' lock files in a folder of this test's own (they live in the temporary
    folder, shared by every worker of the host: other tests' workers must not count)."""
    folder = tmp_path / "tmp"
    folder.mkdir(exist_ok=True)
    return {"TMPDIR": str(folder)}


def probed(path: Path) -> dict[tuple[str, str], dict]:
    """(experiment, step) -> {"devices", "start", "end"}, from the probes' lines."""
    seen: dict[tuple[str, str], dict] = defaultdict(dict)
    for line in path.read_text().splitlines() if path.exists() else []:
        probe = json.loads(line)
        entry = seen[(probe["name"], probe["step"])]
        entry["devices"], entry[probe["event"]] = probe["devices"], probe["at"]
    return dict(seen)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most of ``intervals`` that overlap at any moment (an end before a start at the
    same instant)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = now = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


def waiting(ws: Path, names: list[str]) -> list[str]:
    return [n for n in names if "waiting for 1 free GPU(s)" in (
        ws / "Output" / n / "logs" / "train.log").read_text(errors="replace")] if all(
        (ws / "Output" / n / "logs" / "train.log").exists() for n in names) else []


SLOTS = [
    # --gpus, --slots-per-gpu, the devices a step may get, steps at once on one device
    ("2,3", 1, {"2", "3"}, 1),
    ("0", 2, {"0"}, 2),
]


@pytest.mark.parametrize("gpus, slots, devices, per_device", SLOTS,
                         ids=["two-gpus-ids-kept", "one-gpu-two-slots"])
def test_steps_of_several_experiments_share_the_slots_and_wait_for_a_free_one(
        ws, tasks_dir, ledger, tmp_path, gpus, slots, devices, per_device):
    """Three experiments at once (``--workers 3``) and room for two train steps: two run
    (held until the test lets them go), the third waits for a slot, then runs."""
    probes, go = tmp_path / "probes.jsonl", tmp_path / "go"
    names = ["exp-a", "exp-b", "exp-c"]
    queue(ws, tasks_dir, ledger, {n: TRAIN_AND_EVAL for n in names}, probes=str(probes),
          go_flag=str(go), max_wait=WORKER_TIMEOUT)
    worker = background(ws, tmp_path / "worker.log", "worker", "--exit-when-empty",
                        "--workers", "3", "--gpus", gpus, "--slots-per-gpu", str(slots),
                        env=lock_env(tmp_path))
    try:
        wait_until(lambda: len(probed(probes)) == 2 and waiting(ws, names), WORKER_TIMEOUT,
                   "two train steps running and the third waiting for a GPU")
        first = probed(probes)
        assert {step for _, step in first} == {"train"}
        assert {p["devices"] for p in first.values()} == devices  # two, or one shared
        [waiter] = waiting(ws, names)
        assert f"waiting for 1 free GPU(s) of {gpus}\n" in (
            ws / "Output" / waiter / "logs" / "train.log").read_text()
        assert (waiter, "train") not in first
        go.touch()
        assert worker.wait(WORKER_TIMEOUT) == 0, (tmp_path / "worker.log").read_text()
    finally:
        go.touch()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert [state_of(ws, n) for n in names] == ["ConfigsCompleted"] * 3
    seen = probed(probes)
    assert {(n, s) for n, s in seen} == {(n, s) for n in names for s in ("train", "eval")}
    assert all(seen[(n, "eval")]["devices"] == "" for n in names)  # no gpu: none visible
    by_device = defaultdict(list)
    for n in names:
        train = seen[(n, "train")]
        assert train["devices"] in devices
        by_device[train["devices"]].append((train["start"], train["end"]))
    assert max(most_at_once(spans) for spans in by_device.values()) == per_device

    for n in names:  # the device each got: in its run record and in show
        train = {t["id"]: t for t in show(ws, n)["tasks"]}["train"]
        assert train["gpus"] == [seen[(n, "train")]["devices"]]
        assert train["result"] == seen[(n, "train")]["devices"]
    text = run_cli("show", waiter, ws=ws).stdout
    row = next(line for line in text.splitlines() if line.split()[:1] == ["train"])
    assert " gpu " in text and f" {seen[(waiter, 'train')]['devices']} " in row, text


def test_a_step_gets_k_devices_and_one_asking_for_more_than_there_are_fails_at_claim(
        ws, tasks_dir, ledger, tmp_path):
    probes = tmp_path / "probes.jsonl"
    queue(ws, tasks_dir, ledger, {
        "pair": [{"id": "train", "method": "GpuProbe", "resources": {"gpu": 2}}],
        "greedy": [{"id": "train", "method": "GpuProbe", "resources": {"gpu": 3}}]},
        probes=str(probes), sleep=0.1)
    result = run_cli("worker", "--exit-when-empty", "--gpus", "0,1", ws=ws,
                     env=lock_env(tmp_path), timeout=WORKER_TIMEOUT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert state_of(ws, "pair") == "ConfigsCompleted"
    assert sorted(probed(probes)[("pair", "train")]["devices"].split(",")) == ["0", "1"]
    assert state_of(ws, "greedy") == "ConfigsFailed"
    why = ("task 'train' needs 3 GPU(s) but this worker has 2 (0, 1); start a worker with "
           "more (--gpus) or lower resources.gpu")
    assert error_text(ws, "greedy").strip() == why
    assert why in run_cli("status", ws=ws).stdout
    assert read_ledger(ledger) == ["pair:train"]  # greedy's step never started


def test_by_default_a_worker_hands_out_the_devices_it_was_given(ws, tasks_dir, ledger,
                                                                 tmp_path):
    """No ``--gpus``: the worker's own CUDA_VISIBLE_DEVICES (a Slurm job's GPUs)."""
    probes = tmp_path / "probes.jsonl"
    queue(ws, tasks_dir, ledger, {"given": TRAIN_AND_EVAL}, probes=str(probes), sleep=0.1)
    result = run_cli("worker", "--exit-when-empty", ws=ws,
                     env={**lock_env(tmp_path), "CUDA_VISIBLE_DEVICES": "5"},
                     timeout=WORKER_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = probed(probes)
    assert (seen[("given", "train")]["devices"], seen[("given", "eval")]["devices"]) == ("5", "")


def test_ready_rejects_a_step_wanting_more_gpus_than_luigid_allows(ws, tasks_dir, ledger,
                                                                   tmp_path):
    """``[resources] gpu = N`` in Luigi's config (where ``ready`` runs: LUIGI_CONFIG_PATH,
    ./luigi.cfg or /etc/luigi) is the count luigid hands out: more is rejected at once,
    naming the task and the limit, instead of waiting in the queue forever."""
    cfg = tmp_path / "luigi.cfg"
    cfg.write_text("[resources]\ngpu = 2\n")
    for name, wanted in (("fits", 2), ("too-many", 3)):
        (ws / "ConfigSources" / f"{name}.yaml").write_text(json.dumps({
            "githubRepository": "https://github.com/me/project", "pathToTasks": str(tasks_dir),
            "outputDir": name, "tasks": [{"id": "prep", "method": "Ledger"},
                                         {"id": "train", "method": "Ledger",
                                          "resources": {"gpu": wanted}}]}))
    ready = run_cli("ready", ws=ws, env={"LUIGI_CONFIG_PATH": str(cfg)})
    assert ready.returncode == 2, ready.stdout + ready.stderr
    assert state_of(ws, "fits") == "ConfigsToRun"
    assert state_of(ws, "too-many") == "ConfigsFailed"
    why = (f"tasks[1].resources.gpu: task 'train' asks for 3, more than the 2 that "
           f"[resources] gpu = 2 in {cfg} allows")
    assert why in error_text(ws, "too-many") and why in ready.stdout + ready.stderr


def _real_gpus() -> list[str]:
    """The GPUs nvidia-smi lists here (none without the tool or a device)."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if line.startswith("GPU ")]


@pytest.mark.skipif(not _real_gpus(), reason="no NVIDIA GPU here (nvidia-smi is missing or "
                    "lists no device): the real-device probe runs only on a GPU machine")
def test_a_step_on_a_real_gpu_sees_one_device_that_nvidia_smi_knows(ws, tasks_dir, ledger,
                                                                    tmp_path):
    queue(ws, tasks_dir, ledger, {"real": [
        {"id": "probe", "method": "NvidiaSmi", "resources": {"gpu": 1}}]})
    result = run_cli("worker", "--exit-when-empty", ws=ws, env=lock_env(tmp_path),
                     timeout=WORKER_TIMEOUT)  # default devices: CUDA_VISIBLE_DEVICES or all
    assert result.returncode == 0, result.stdout + result.stderr
    seen = show(ws, "real")["tasks"][0]["result"]
    assert "," not in seen["devices"] and seen["devices"]
    assert any(seen["devices"] in pair for pair in seen["gpus"]), seen  # an index or a UUID
