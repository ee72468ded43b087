"""Thin Kopf handlers, one module per kind; importing this package registers them all."""

from kubeloop.controllers import modeldeployment, modelmonitor, modelversion, trainingrun

__all__ = ["modeldeployment", "modelmonitor", "modelversion", "trainingrun"]
