"""ModelMonitor handlers. The core reconcile for now; the kind's own behaviour comes with its issue."""

from kubeloop.api.v1alpha1.registry import MODEL_MONITOR
from kubeloop.controllers.core import register_core
from kubeloop.planning import modelmonitor

register_core(MODEL_MONITOR, modelmonitor.POLICY)
