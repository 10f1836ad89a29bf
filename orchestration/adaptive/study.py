"""Everything that touches Optuna: the study in its journal file, samplers, ask and tell.

Only this module imports Optuna (an optional dependency: ``pip install
'job-orchestration[search]'``). Every call here runs under the search's lock, so the
study is loaded fresh each time (the journal is replayed) and no two processes ask or tell
at once. Each trial carries the name of its experiment as the user attribute
``experiment``; that, not the trial number, is how a trial and its experiment find each
other, which keeps the journal the single record of what every experiment was told.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any

from ..exceptions import UsageError
from .spec import SAMPLER_NEEDS, SAMPLERS, ParamSpec, SearchSpec

try:
    import optuna
    from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                      FloatDistribution, IntDistribution)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
    from optuna.trial import FrozenTrial, Trial, TrialState
except ImportError:  # pragma: no cover - exercised by users without the extra
    raise UsageError("adaptive search needs Optuna, which is not installed here: run "
                     "pip install 'job-orchestration[search]'") from None

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own messages say what happened

EXPERIMENT = "experiment"    # user attribute: the trial's experiment name
RETRY_OF = "retry_of"        # user attribute: the failed trial a completed retry stands for
FAIL_REASON = "fail_reason"  # user attribute: why a trial was told FAIL
FIXED_SEED = ("grid", "qmc")  # their order comes from the seed: it must be the same every time


LOCK_GRACE_SECONDS = 5  # Optuna's default, 30, is for writers that do not hold a lock of ours


def storage(journal: str) -> JournalStorage:
    """The journal file storage, with Optuna's symlink lock (which works on NFS). Our own
    writers append only under the search's lock, so a symlink lock that outlives its grace
    period is one a killed writer left: it is broken after seconds, not half a minute."""
    return JournalStorage(JournalFileBackend(
        journal, lock_obj=JournalFileSymlinkLock(journal, grace_period=LOCK_GRACE_SECONDS)))


def sampler_for(spec: SearchSpec, seed: int, asked: int) -> "optuna.samplers.BaseSampler":
    """A fresh sampler for one ask. Each process builds its own, so a sampler that draws
    random numbers is seeded with ``seed`` plus the number of trials so far: the same seed
    every time would propose the same random points again and again."""
    missing = [m for m in SAMPLER_NEEDS.get(spec.sampler, ()) if
               importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"search.sampler: {spec.sampler} needs {' and '.join(missing)}, which "
                         f"is not installed: pip install {' '.join(missing)}")
    options: dict[str, Any] = {"constant_liar": True} if spec.sampler == "tpe" else {}
    options.update(spec.sampler_options)
    if spec.sampler == "grid":
        options["search_space"] = {p.name: p.grid_values() for p in spec.params}
    options["seed"] = seed if spec.sampler in FIXED_SEED else seed + asked
    cls = getattr(optuna.samplers, SAMPLERS[spec.sampler])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return cls(**options)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"search.sampler_options: {cls.__name__} does not accept "
                             f"{spec.sampler_options}: {exc}") from None


def create(journal: str, name: str, spec: SearchSpec, seed: int) -> "optuna.Study":
    return optuna.create_study(storage=storage(journal), study_name=name,
                               direction=spec.direction, sampler=sampler_for(spec, seed, 0))


def load(journal: str, name: str, repair: bool = False) -> "optuna.Study":
    """The study as its journal has it; ``ask`` sets the sampler for each ask. ``repair``
    (for writers, under the search's lock) first cuts a line a killed writer left torn."""
    if repair:
        drop_torn_tail(journal)
    return optuna.load_study(study_name=name, storage=storage(journal))


def drop_torn_tail(journal: str) -> bool:
    """Cut a last line that lacks its newline: a writer killed in mid-append leaves one, and
    Optuna would glue the next entry to it, after which it cannot read the journal at all.
    Checked again under the journal's own lock (an optuna-dashboard may be appending)."""
    if _complete(journal):
        return False
    lock = JournalFileSymlinkLock(journal, grace_period=LOCK_GRACE_SECONDS)
    lock.acquire()
    try:
        if _complete(journal):
            return False
        with open(journal, "rb+") as fh:
            data = fh.read()
            fh.truncate(data.rfind(b"\n") + 1)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    finally:
        lock.release()


def _complete(journal: str) -> bool:
    with open(journal, "rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def trials(study: "optuna.Study") -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False)


def distribution(param: ParamSpec) -> BaseDistribution:
    if param.type == "categorical":
        return CategoricalDistribution(param.choices)
    if param.type == "int":
        return IntDistribution(int(param.low), int(param.high), log=param.log,
                               step=int(param.step or 1))
    return FloatDistribution(float(param.low), float(param.high), log=param.log,
                             step=None if param.step is None else float(param.step))


def ask(study: "optuna.Study", spec: SearchSpec, seed: int, experiment: str) -> FrozenTrial:
    """The trial of ``experiment`` with every parameter set: asked now, or finished from
    where an interrupted ask stopped (every step here can be repeated)."""
    study.sampler = sampler_for(spec, seed, len(trials(study)))
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    mine = [t for t in running if t.user_attrs.get(EXPERIMENT) == experiment]
    orphans = [t for t in running if EXPERIMENT not in t.user_attrs]
    if mine:
        trial = Trial(study, mine[0]._trial_id)
    elif orphans:  # asked, then the asker died before naming it: this is that ask
        if spec.sampler == "grid" and "grid_id" not in orphans[0].system_attrs:
            study.sampler.before_trial(study, orphans[0])
        trial = Trial(study, orphans[0]._trial_id)
    else:
        trial = study.ask()
    trial.set_user_attr(EXPERIMENT, experiment)
    for param in spec.params:  # values already set are returned as they are
        dist = distribution(param)
        if isinstance(dist, CategoricalDistribution):
            trial.suggest_categorical(param.name, dist.choices)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(param.name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            trial.suggest_float(param.name, dist.low, dist.high, step=dist.step, log=dist.log)
    return study._storage.get_trial(trial._trial_id)


def grid_left(study: "optuna.Study", spec: SearchSpec) -> int | None:
    """Grid points no trial has taken yet (None when the sampler is not a grid). Optuna's
    grid sampler would repeat a point rather than stop: the search stops asking instead."""
    if spec.sampler != "grid":
        return None
    taken = {t.system_attrs.get("grid_id") for t in trials(study)}
    return len(set(range(spec.grid_size or 0)) - taken)


def tell(study: "optuna.Study", experiment: str, number: int, value: float | None,
         reason: str | None) -> str | None:
    """Tell trial ``number`` (of ``experiment``) its value, or FAIL with ``reason`` when
    ``value`` is None. Returns what was done, or None when the journal already has it.

    Optuna cannot tell a finished trial again: an experiment that failed, was retried and
    then completed is added as a new completed trial with the same parameters, once."""
    # No sampler hook on tell: the grid sampler's would call study.stop(), which Optuna
    # allows only inside optimize().
    study.sampler = optuna.samplers.RandomSampler()
    trial = trials(study)[number]
    if trial.state == TrialState.RUNNING:
        if value is None:
            trial_handle = Trial(study, trial._trial_id)
            trial_handle.set_user_attr(FAIL_REASON, reason or "failed")
            study.tell(number, state=TrialState.FAIL)
            return f"told FAIL (Optuna trial {number}): {reason}"
        study.tell(number, value)
        return f"told {value:g} (Optuna trial {number})"
    if value is None or trial.state != TrialState.FAIL:
        return None
    if any(t.state == TrialState.COMPLETE and t.user_attrs.get(EXPERIMENT) == experiment
           for t in trials(study)):
        return None
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=value, params=trial.params,
        distributions=trial.distributions,
        user_attrs={EXPERIMENT: experiment, RETRY_OF: number}))
    return (f"completed after a retry: told {value:g} as a new Optuna trial "
            f"{len(trials(study)) - 1} (its first, {number}, had failed)")


def result_of(study: "optuna.Study", experiment: str) -> FrozenTrial | None:
    """The trial that says how ``experiment`` ended: its completed one if any (a retry's),
    else its original."""
    mine = [t for t in trials(study) if t.user_attrs.get(EXPERIMENT) == experiment]
    complete = [t for t in mine if t.state == TrialState.COMPLETE]
    return (complete or mine or [None])[-1]
