"""Adaptive search: Optuna trials run as ordinary experiments of the queue.

There is no driver process. ``search start`` creates the study and writes the first
``parallel`` trials as experiment configs; from then on, whichever worker finishes a trial
tells the study its result and asks for the next one (``hooks``). The study lives in the
workspace in Optuna's journal file storage, so every worker on every machine sees it.

Modules, in the order the data flows: ``spec`` (the ``search:`` block), ``store`` (the
search's folder and ledger), ``study`` (everything that imports Optuna), ``trials`` (trial
configs and objective values), ``advance`` (tell ended trials, ask new ones), ``hooks`` (what
the worker calls), ``start`` (``search start``), ``report`` (status, best, results).
Only ``study`` imports Optuna, so the hooks cost nothing for experiments that are not trials.
"""
