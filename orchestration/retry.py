"""``retry``: give a failed experiment another go without losing anything.

An experiment that had been readied is re-validated against today's code and queued again:
finished steps keep their markers (so they are skipped), outputs and logs stay. A config that
was rejected at ``ready`` simply goes through ``ready`` again.
"""
from __future__ import annotations

import time
from pathlib import Path

from .config.schema import spec_from_snapshot
from .exceptions import ConfigError, WorkspaceError
from .ready import Outcome, ReadyContext, ready_files, ready_lock, validate_spec
from .records import run_record
from .states import ExperimentState
from .workspace import Workspace


def retry(ws: Workspace, name: str, base: Path | None = None) -> Outcome:
    state, path = ws.locate(name)
    if state is not ExperimentState.FAILED:
        raise WorkspaceError(f"{name} is {state.value}; only failed experiments can be retried")
    if name not in ws.registered():
        return ready_files(ws, [ws.move(path, ExperimentState.NEW)], base)[0]
    with ready_lock(ws):
        ctx = ReadyContext(ws=ws, base=base or Path.cwd(), in_use=ws.registered())
        output_dir = ws.output_dir(name)
        record = run_record.load_named(ws, name)
        try:
            spec = spec_from_snapshot(record["config"])
        except (KeyError, ValueError) as exc:
            raise WorkspaceError(f"the run record of {name} ({run_record.record_path(output_dir)})"
                                 f" is damaged ({exc}); `rerun` or a fresh `ready` of its config "
                                 "gives it a new one") from None
        try:
            _, _, warnings, prov = validate_spec(ctx, path, name, spec)
        except ConfigError as exc:
            ws.fail(path, str(exc))
            return Outcome(name, False, str(exc))

        def change(rec: dict) -> None:
            if rec.get("provenance") != prov:
                rec.setdefault("previous_provenance", []).append(rec.get("provenance"))
                rec["provenance"] = prov
            for task in rec["tasks"].values():
                if task["state"] != "done":
                    task.update(state="pending", error=None, progress=None)
            rec.update(state="queued", error=None, retried_at=time.time())

        run_record.update(output_dir, change)
        ws.error_file(path).unlink(missing_ok=True)
        ws.move(path, ExperimentState.QUEUED)
    return Outcome(name, True, f"{name}: queued again; finished steps will be skipped",
                   warnings=warnings)
