"""`python -m kubeloop.serving` serves the model; `python -m kubeloop.serving validate` validates it."""

from __future__ import annotations

import logging
import sys

from kubeloop.contracts.serving import ServingSettings
from kubeloop.serving import jsonlog
from kubeloop.serving.server import serve
from kubeloop.serving.validate import main as validate
from kubeloop.store.client import RetryPolicy, Store

EX_USAGE, EX_CONFIG = 64, 78  # sysexits.h: a bad command line; a bad pod template (restarts won't help)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command == "validate":
        jsonlog.configure()
        return validate()
    if command != "serve":
        print(f"usage: python -m kubeloop.serving [serve|validate] (got {command!r})", file=sys.stderr)
        return EX_USAGE
    jsonlog.configure()
    try:
        settings = ServingSettings.from_env()
        store = Store.from_env(RetryPolicy(attempts=4, first_delay=0.5))  # then the loader backs off
    except ValueError as error:
        logging.getLogger("kubeloop.serving").error(str(error))
        return EX_CONFIG
    jsonlog.configure(settings.log_level)
    serve(settings, store)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
