"""TrainingRun handlers. The core reconcile for now; the kind's own behaviour comes with its issue."""

from kubeloop.api.v1alpha1.registry import TRAINING_RUN
from kubeloop.controllers.core import register_core
from kubeloop.planning import trainingrun

register_core(TRAINING_RUN, trainingrun.POLICY)
