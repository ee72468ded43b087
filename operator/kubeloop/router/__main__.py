"""`python -m kubeloop.router`: the traffic router, configured by environment (contracts/router.py)."""

from __future__ import annotations

import logging
import sys

from kubeloop.contracts.router import ENV, RouterSettings
from kubeloop.router.app import Router
from kubeloop.router.server import run, source_of
from kubeloop.serving import jsonlog

EX_USAGE, EX_CONFIG = 64, 78  # sysexits.h: a bad command line; a bad pod template (restarts won't help)
USAGE = "usage: python -m kubeloop.router\n\nConfigured by environment:\n" + "\n".join(
    f"  {variable}" for variable in ENV.values()
)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv:
        print(f"{USAGE}\n\nunexpected arguments: {' '.join(argv)}", file=sys.stderr)
        return EX_USAGE
    jsonlog.configure()
    logger = logging.getLogger("kubeloop.router")
    try:
        settings = RouterSettings.from_env()
        jsonlog.configure(settings.log_level)
        router = Router(settings)
        source = source_of(settings, router)
    except ValueError as error:
        logger.error(str(error))
        return EX_CONFIG
    run(settings, router, source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
