"""0.0.7's ``from job_orchestration.TaskBase import TaskBase``: the same class as
``orchestration.TaskBase``, so subclasses are found by the Tasks.py loader."""
from orchestration.taskbase import TaskBase

__all__ = ["TaskBase"]
