"""The ``job-orchestration`` command line: one module per command."""
