"""job-orchestration: run many experiment configs through Luigi, with provenance.

User code needs only ``TaskBase``; scripts use ``submit`` and ``results``.
"""
from .taskbase import TaskBase

__all__ = ["TaskBase"]
__version__ = "0.1.0"
