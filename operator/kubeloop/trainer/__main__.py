"""`python -m kubeloop.trainer`: the exit code tells the Job whether to retry (see contracts.tasks)."""

import sys

from kubeloop.trainer.main import main

sys.exit(main())
