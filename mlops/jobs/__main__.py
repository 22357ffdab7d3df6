import sys

from mlops.jobs.worker import main

raise SystemExit(main(sys.argv[1:]))
