"""The operator process: Kopf with kubeloop's settings, metrics and health endpoints."""
