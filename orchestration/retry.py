"""``retry``: give a failed experiment another go without losing anything.

The experiment is re-validated (today's code, and the config file if it was edited since)
and queued again: finished steps keep their markers and are skipped, outputs and logs stay.
It runs the code it was readied with: ``pathToTasks`` was recorded absolute at ``ready``,
so where ``retry`` is run from does not matter. An edited config is a new snapshot: steps
finished for the old one run again (a marker counts only for the snapshot it was made for).
A config that was rejected at ``ready`` simply goes through ``ready`` again.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from . import lifecycle
from .config.loader import load_config
from .config.schema import ExperimentSpec, check, spec_from_snapshot
from .config.validate import tasks_folder
from .exceptions import ConfigError, RecordError, WrongState
from .ready import Outcome, Readier, expand_date_time, ready_lock, settle
from .records import run_record
from .records.run_record import RunRecord
from .states import ExperimentState
from .workspace import Workspace


def retry(ws: Workspace, name: str, base: Path | None = None) -> Outcome:
    state, path = ws.locate(name)
    if state is not ExperimentState.FAILED:
        raise WrongState(f"{name} is {state.value}; only failed experiments can be retried")
    with ready_lock(ws):
        readier = Readier(ws, base)
        if name not in ws.registered():  # rejected at ready: judge it again, as ready would
            return readier.run([ws.move(path, ExperimentState.NEW)])[0]
        output_dir = ws.output_dir(name)
        try:
            record = RunRecord.load(output_dir)
        except (OSError, ValueError) as exc:
            raise RecordError(f"the run record of {name} ({run_record.record_path(output_dir)})"
                              f" is damaged ({exc}); `job-orchestration remove {name}` and a "
                              "fresh `ready` of its config give it a new one") from None
        settle([path])  # an edited config may still be being written
        try:
            source = readier._read_capped(path)
            spec = _spec(path, source, record)
            candidate = readier.prepare_spec(path, name, spec, source, own_name=name)
            readier.validate([candidate])
            if candidate.problems:
                raise ConfigError(path, candidate.problems)
        except ConfigError as exc:
            lifecycle.reject(ws, path, str(exc))
            return Outcome(name, False, str(exc))
        changed = run_record.config_hash(spec.data) != record.config_sha256

        def change(rec: RunRecord) -> None:
            if changed:  # an edited config: a new snapshot
                rec.config, rec.config_sha256 = spec.data, run_record.config_hash(spec.data)
                rec.source_sha256 = hashlib.sha256(source).hexdigest()
            if rec.provenance != candidate.provenance:
                rec.previous_provenance.append(rec.provenance.to_json())
                rec.provenance = candidate.provenance
            rec.run_provenance = None

        lifecycle.retry(ws, name, path, change)
    note = ("the config was edited since ready: steps run again for the new snapshot"
            if changed else "finished steps will be skipped")
    return Outcome(name, True, f"{name}: queued again; {note}", warnings=candidate.warnings)


def _spec(path: Path, source: bytes, record: RunRecord) -> ExperimentSpec:
    """The recorded snapshot when the file is as it was readied, else the edited file
    resolved the way ``ready`` resolved it (relative paths against ready's folder)."""
    if hashlib.sha256(source).hexdigest() == record.source_sha256:
        return spec_from_snapshot(record.config)
    data = load_config(path, source)
    spec, problems = check(data)
    if spec is None:
        raise ConfigError(path, problems)
    base = Path(record.readied_in) if record.readied_in else Path.cwd()
    data["pathToTasks"] = str(tasks_folder(spec.path_to_tasks, base))
    data["outputDir"] = expand_date_time(spec.output_dir)
    if data["outputDir"] != record.config.get("outputDir"):
        raise ConfigError(path, [f"outputDir: changed from {record.config.get('outputDir')!r}"
                                 f" to {data['outputDir']!r}; a retry keeps its output folder "
                                 "(to use another one, `job-orchestration remove` the "
                                 "experiment and ready the config again)"])
    return replace(spec, path_to_tasks=data["pathToTasks"], output_dir=data["outputDir"])
