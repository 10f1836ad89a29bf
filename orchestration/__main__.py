"""``python -m orchestration`` is the ``job-orchestration`` command."""
import sys

from .cli.main import main

sys.exit(main())
