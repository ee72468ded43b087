"""`python -m kubeloop.monitor`: the exit code tells the Job whether to retry (see contracts.tasks)."""

import sys

from kubeloop.monitor.main import main

sys.exit(main())
