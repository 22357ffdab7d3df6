"""`python -m mlops.jobs <job_id>`: the worker process of one job (see worker.py)."""

import sys

from mlops.jobs.worker import main

raise SystemExit(main(sys.argv[1:]))
