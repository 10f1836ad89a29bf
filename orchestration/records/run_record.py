"""The run record: one JSON file per experiment, ``Output/<outputDir>/run.json``, typed.

It holds the snapshot that runs (resolved config and its hash), the code state, and every
step's state, times, attempts, failures, return value and log path. It is rewritten at the
few moments an experiment changes state (ready, claim, failure, completion: the lifecycle
module), read-modify-write under an ``flock`` and atomically. In between, a running step
reports to small side files in ``.orchestration/`` (a marker when done, a running file while
running) that ``RunRecord.load`` lays over a running record.

On disk it stays plain JSON that older versions can read: unknown fields are kept as they
are, and a finished step that older versions called ``done`` reads as ``completed``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config.schema import ExperimentSpec, spec_from_snapshot
from ..exceptions import RecordError
from ..failures import Failure
from ..fsutil import atomic_write, dumps, locked, read_json
from ..states import ExperimentState, StepState
from .provenance import Provenance

RECORD_NAME = "run.json"
META_DIR = ".orchestration"  # markers, running files and the lock, out of the user's way
FORMAT = 2


def record_path(output_dir: Path) -> Path:
    return output_dir / RECORD_NAME


def meta_dir(output_dir: Path) -> Path:
    return output_dir / META_DIR


def log_path(output_dir: Path, task_id: str) -> Path:
    return output_dir / "logs" / f"{task_id}.log"


def marker_path(output_dir: Path, task_id: str) -> Path:
    """A step's marker: written by us, atomically, and only after its ``run()`` returned."""
    return meta_dir(output_dir) / f"{task_id}.done.json"


def running_path(output_dir: Path, task_id: str) -> Path:
    """A running step's attempt and progress: small, rewritten often, never fsynced."""
    return meta_dir(output_dir) / f"{task_id}.running.json"


def config_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def step_inputs(spec: ExperimentSpec) -> dict[str, str]:
    """Each task's inputs hash, the identity its marker must carry besides the snapshot's:
    its own config and, transitively, its upstream tasks' inputs."""
    found: dict[str, str] = {}
    for task in spec.in_order():  # upstream first
        upstream = [found[dep] for dep in task.requires]
        found[task.id] = config_hash([spec.task_config(task), upstream])
    return found


def _inputs_of(config: Any) -> dict[str, str] | None:
    """``step_inputs`` of a recorded snapshot; None when it cannot be read as a spec (a
    record of another version): its markers are then judged by the snapshot alone."""
    try:
        return step_inputs(spec_from_snapshot(config))
    except (ValueError, TypeError, AttributeError):
        return None


def _fields(cls: type, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` split into the dataclass's own fields and the rest (kept, never dropped)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


@dataclass
class Marker:
    """What a finished step left: its result, and the snapshot and inputs it was made for.

    A marker counts as "done" only for the same ``snapshot`` (the config's hash) and
    ``inputs`` (the step's own config and its upstream steps): a changed config never
    inherits another run's steps, and a file a step wrote there itself is not one of ours.
    """

    id: str
    method: str
    snapshot: str
    inputs: str
    started: float
    ended: float
    seconds: float
    attempts: int
    host: str
    result: Any = None
    gpus: list[str] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def read(cls, output_dir: Path, task_id: str) -> "Marker | None":
        """The marker of ``task_id`` if there is a well-formed one (any snapshot)."""
        try:
            data = read_json(marker_path(output_dir, task_id))
            return cls(**_fields(cls, data)[0])
        except (OSError, ValueError, TypeError):
            return None

    def made_for(self, snapshot: str, inputs: str) -> bool:
        return self.snapshot == snapshot and self.inputs == inputs


@dataclass
class StepRecord:
    """One step of one experiment."""

    id: str
    method: str
    log: str
    state: StepState = StepState.PENDING
    attempts: int = 0
    seconds: float | None = None
    started: float | None = None
    ended: float | None = None
    attempt_started: float | None = None
    result: Any = None
    host: str | None = None
    gpus: list[str] | None = None
    error: str | None = None
    progress: dict[str, Any] | None = None   # {"fraction", "message", "at"} while running
    failures: list[Failure] = field(default_factory=list)  # every failed attempt, in order
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("extra", "failures")}
        data["state"] = self.state.value
        data["failures"] = [f.to_json() for f in self.failures]
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StepRecord":
        known, extra = _fields(cls, data)
        known["state"] = StepState.read(known.get("state", StepState.PENDING))
        known["failures"] = [Failure.from_json(f) for f in known.get("failures") or []]
        known.setdefault("log", "")
        return cls(**known, extra=extra)

    def apply_marker(self, marker: Marker) -> None:
        """The step finished: take its times and result from its marker."""
        self.state = StepState.COMPLETED
        self.seconds, self.started, self.ended = marker.seconds, marker.started, marker.ended
        self.result, self.host, self.attempts = marker.result, marker.host, marker.attempts
        self.gpus = marker.gpus
        self.error = self.progress = self.attempt_started = None

    @property
    def last_failure(self) -> Failure | None:
        return self.failures[-1] if self.failures else None


@dataclass
class RunRecord:
    """Everything known about one experiment's runs (the folder its config is in says its
    state; ``state`` here follows it and is what old readers of run.json see)."""

    name: str
    state: ExperimentState
    output_dir: str
    config: dict[str, Any]
    config_sha256: str
    tasks: dict[str, StepRecord]
    source_sha256: str = ""
    readied_at: float = 0.0
    readied_on: str = ""
    readied_in: str | None = None          # the folder relative paths were resolved against
    provenance: Provenance = field(default_factory=lambda: Provenance.unavailable(
        "the run record holds no code state."))
    run_provenance: Provenance | None = None  # the code at run start, when it had changed
    previous_provenance: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # one per claim: host, pid...
    error: str | None = None
    failure: dict[str, Any] | None = None  # {step, cause, detail, attempts} of a failed run
    ended: float | None = None
    retried_at: float | None = None
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    # --- construction and JSON ------------------------------------------------------------
    @classmethod
    def new(cls, name: str, config: dict[str, Any], task_methods: list[tuple[str, str]],
            output_dir: Path, source: bytes, provenance: Provenance,
            environment: dict[str, Any], warnings: list[str],
            readied_in: Path | None = None) -> "RunRecord":
        return cls(name=name, state=ExperimentState.QUEUED, output_dir=str(output_dir),
                   config=config, config_sha256=config_hash(config),
                   source_sha256=hashlib.sha256(source).hexdigest(),
                   readied_at=time.time(), readied_on=socket.gethostname(),
                   readied_in=str(readied_in) if readied_in else None,
                   provenance=provenance, environment=environment, warnings=list(warnings),
                   tasks={tid: StepRecord(tid, method, str(log_path(output_dir, tid)))
                          for tid, method in task_methods})

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                data[f.name] = getattr(self, f.name)
        data["state"] = self.state.value
        data["provenance"] = self.provenance.to_json()
        data["run_provenance"] = self.run_provenance.to_json() if self.run_provenance else None
        data["tasks"] = {tid: step.to_json() for tid, step in self.tasks.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunRecord":
        known, extra = _fields(cls, data)
        try:
            known["state"] = ExperimentState(known.get("state", ExperimentState.QUEUED))
            known["provenance"] = Provenance.from_json(known.get("provenance"))
            if known.get("run_provenance") is not None:
                known["run_provenance"] = Provenance.from_json(known["run_provenance"])
            known["tasks"] = {tid: StepRecord.from_json(step)
                              for tid, step in (known.get("tasks") or {}).items()}
            return cls(**known, extra=extra)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a run record ({exc})") from None

    # --- reading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, output_dir: Path) -> "RunRecord":
        """The record as readers should see it: a running experiment's side files laid over
        it (raises OSError or ValueError when it is missing or damaged)."""
        return cls.from_json(overlay(read_json(record_path(output_dir)), output_dir))

    def sync_markers(self, output_dir: Path) -> "RunRecord":
        """Bring finished steps up to date with their markers (those made for this snapshot
        and these inputs: the ones a run counts as done)."""
        inputs = _inputs_of(self.config)
        for task_id, step in self.tasks.items():
            _overlay_step(step, output_dir, task_id, self.config_sha256, inputs, live=False)
        return self

    def overlay_steps(self, output_dir: Path) -> "RunRecord":
        """Finished steps from their markers, running ones from their running files."""
        inputs = _inputs_of(self.config)
        for task_id, step in self.tasks.items():
            _overlay_step(step, output_dir, task_id, self.config_sha256, inputs, live=True)
        return self

    # --- views ------------------------------------------------------------------------------
    def code_state(self) -> Provenance:
        """The code the run imported: the run-time capture when it differed from ready's."""
        return self.run_provenance or self.provenance



def _overlay_step(step: StepRecord, output_dir: Path, task_id: str, snapshot: str,
                  inputs: dict[str, str] | None, live: bool) -> None:
    """A step as its side files say: done if its marker (of this snapshot and, when known,
    these ``inputs``: a file the step wrote there itself is not one of ours) exists, else
    (``live``) running if its running file does.

    While an experiment runs, its steps report to these files rather than rewriting the
    whole record for every step (that cost more than the step itself for short steps); the
    record catches up when the run ends. Readers see both through here."""
    if step.state is StepState.COMPLETED:
        return
    marker = Marker.read(output_dir, task_id)
    if marker is not None and marker.snapshot == snapshot and (
            inputs is None or marker.inputs == inputs.get(task_id)):
        step.apply_marker(marker)
        return
    if not live:
        return
    try:
        running = read_json(running_path(output_dir, task_id))
    except (OSError, ValueError):
        return
    if isinstance(running, dict):
        for key in ("attempts", "started", "attempt_started", "host", "progress", "gpus"):
            if key in running:
                setattr(step, key, running[key])
        step.state = StepState.RUNNING


def overlay(data: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """A running experiment's record JSON with its steps' side files laid over it (other
    records are returned as they are)."""
    if data.get("state") != ExperimentState.RUNNING:
        return data
    snapshot = data.get("config_sha256", "")
    inputs = _inputs_of(data["config"]) if "config" in data else None  # views have none
    for task_id, entry in (data.get("tasks") or {}).items():
        step = StepRecord.from_json(entry)
        _overlay_step(step, output_dir, task_id, snapshot, inputs, live=True)
        data["tasks"][task_id] = step.to_json()
    return data


def load(output_dir: Path) -> RunRecord:
    return RunRecord.load(output_dir)


def load_named(ws: Any, name: str) -> RunRecord:
    """The record of experiment ``name``, or an error a user can act on."""
    ws.locate(name)
    output_dir = ws.output_dir(name)
    try:
        return RunRecord.load(output_dir)
    except (OSError, ValueError) as exc:
        raise RecordError(f"experiment {name!r} has no readable run record "
                          f"{record_path(output_dir)} ({type(exc).__name__}: {exc}); "
                          "`job-orchestration remove` deletes it") from None


def write(output_dir: Path, record: RunRecord, durable: bool = True) -> None:
    """The record, whole or not at all. ``durable``: fsynced, so a power cut cannot leave it
    empty; its folder is not (a lost rename leaves the record before this change, which the
    folders and the markers, the states' ground truth, correct)."""
    atomic_write(record_path(output_dir), dumps(record.to_json()), durable=durable,
                 sync_folder=False)


def update(output_dir: Path, change: Callable[[RunRecord], None],
           durable: bool = True) -> RunRecord:
    """Apply ``change`` to the record under the experiment's lock; returns the new record.

    ``durable=False`` skips the fsyncs where losing the update costs nothing (a claim's
    note, a requeue: the next claim or ``reconcile`` writes it again).
    """
    meta_dir(output_dir).mkdir(exist_ok=True)
    with locked(meta_dir(output_dir) / "lock", 0o644):
        record = RunRecord.from_json(read_json(record_path(output_dir)))
        change(record)
        write(output_dir, record, durable=durable)
    return record

