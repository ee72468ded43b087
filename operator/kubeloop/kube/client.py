"""One ApiClient per process, configured in-cluster when running as a pod, else from KUBECONFIG."""

from __future__ import annotations

import functools
import os

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


@functools.cache
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except ConfigException:
        # Read KUBECONFIG now: the library reads it once, at import time.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()
