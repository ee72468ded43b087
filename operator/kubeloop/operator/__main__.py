"""python -m kubeloop.operator: the operator image's entrypoint.

python -m kubeloop.operator                  # all namespaces
python -m kubeloop.operator -n team-a -n b   # only these (or KUBELOOP_NAMESPACES='["team-a"]')
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import kopf
from kopf._core.engines.peering import Identity  # kopf.run's type, not re-exported

from kubeloop import API_GROUP
from kubeloop.operator import metrics
from kubeloop.operator.settings import OperatorSettings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own annotation prefix and finalizer, not Kopf's defaults.
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    # We post our own Events, on transitions only; Kopf's per-handler Events would be noise.
    settings.posting.enabled = False
    settings.networking.request_timeout = 60
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10


def parse_args(defaults: OperatorSettings) -> OperatorSettings:
    parser = argparse.ArgumentParser(prog="python -m kubeloop.operator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("-n", "--namespace", action="append", dest="namespaces", help="namespace to watch")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (env KUBELOOP_METRICS_PORT)")
    parser.add_argument("--health-port", type=int, help="liveness port (env KUBELOOP_HEALTH_PORT)")
    parser.add_argument("-v", "--verbose", action="store_true", default=None)
    args = parser.parse_args()
    overrides = {k: v for k, v in vars(args).items() if v is not None and k != "all_namespaces"}
    if args.all_namespaces:
        overrides["namespaces"] = []
    return defaults.model_copy(update=overrides)


def main() -> None:
    settings = parse_args(OperatorSettings())
    log_format = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=settings.verbose, log_format=log_format)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # a line per probe is noise
    logging.getLogger("kubeloop").info("starting; namespaces: %s", settings.namespaces or "all")
    import kubeloop.controllers  # noqa: F401, PLC0415 - registers the handlers

    metrics.serve(settings.bind_host, settings.metrics_port)
    health = f"http://{settings.bind_host}:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        standalone=True,  # one replica; no peering CRDs to install
        identity=Identity(settings.identity()),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=health,
    )


if __name__ == "__main__":
    main()
