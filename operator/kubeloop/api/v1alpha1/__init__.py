"""kubeloop.io/v1alpha1: the five kinds and the registry describing them."""

from kubeloop.api.v1alpha1.batchprediction import BatchPrediction, BatchPredictionSpec, BatchPredictionStatus
from kubeloop.api.v1alpha1.modeldeployment import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus
from kubeloop.api.v1alpha1.modelmonitor import ModelMonitor, ModelMonitorSpec, ModelMonitorStatus
from kubeloop.api.v1alpha1.modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus
from kubeloop.api.v1alpha1.registry import KINDS, KindInfo, PrinterColumn, kind_info
from kubeloop.api.v1alpha1.trainingrun import TrainingRun, TrainingRunSpec, TrainingRunStatus

__all__ = [
    "KINDS",
    "BatchPrediction",
    "BatchPredictionSpec",
    "BatchPredictionStatus",
    "KindInfo",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelMonitor",
    "ModelMonitorSpec",
    "ModelMonitorStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "PrinterColumn",
    "TrainingRun",
    "TrainingRunSpec",
    "TrainingRunStatus",
    "kind_info",
]
