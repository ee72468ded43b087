"""Kubeloop: the machine-learning loop as Kubernetes custom resources."""

__version__ = "0.1.0"
API_GROUP = "kubeloop.io"
API_VERSION = "v1alpha1"
