"""Thin Kopf handlers, one module per kind; importing this package registers them all."""

from kubeloop.controllers import batchprediction, modeldeployment, modelmonitor, modelversion, trainingrun

__all__ = ["batchprediction", "modeldeployment", "modelmonitor", "modelversion", "trainingrun"]
