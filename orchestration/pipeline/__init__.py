"""Configs as Luigi graphs: ``luigi --module orchestration.pipeline Experiment --name NAME``
or ``... Queue`` run readied experiments with Luigi's own CLI."""
from .luigi_tasks import Experiment, Queue, Step

__all__ = ["Experiment", "Queue", "Step"]
