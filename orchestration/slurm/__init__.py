"""Workers on a Slurm cluster: ``slurm submit`` writes and submits an array job whose tasks
each run a worker on the shared workspace, then exits; ``status`` asks ``squeue`` about those
jobs once per call; ``slurm cancel`` cancels them. Each job's script and logs are in
``Misc/slurm/<job id>/``: the workspace is the only state, nothing of ours stays running on
the submitting host."""
from __future__ import annotations

from ..exceptions import OrchestrationError


class SlurmError(OrchestrationError):
    """A Slurm command is missing or refused, or a value cannot go into a script."""
