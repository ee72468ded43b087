"""`make demo`: the whole loop on this machine, narrated, against the dev environment (.dev/env).

Leaves everything running for exploration; `make dev-down` stops it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.loop import Loop, Target
from tests.e2e.scenario import promoted_retrain, summary


def main() -> int:
    loop = Loop(Target.from_env(), namespace="demo")
    subprocess.run(["kubectl", "delete", "namespace", "demo", "--ignore-not-found", "--wait=true"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        outcome = promoted_retrain(loop)
    except (AssertionError, TimeoutError, RuntimeError) as error:
        loop.say(f"\n\033[1mThe demo stopped: {error}\033[0m")
        loop.show()
        return 1
    if outcome.traffic is not None:
        outcome.traffic.stop()
    summary(loop, outcome)
    loop.say("\nThe stack stays up:  source .dev/env && kubectl get kubeloop -n demo")
    loop.say("                     kubeloop -n demo status churn      kubeloop -n demo report churn")
    loop.say("Stop everything:     make dev-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
