"""The kubeloop API: pydantic models of every custom resource and the CRD generator.

Pure Python on purpose: nothing here imports kopf or kubernetes, so planners, the CLI and the
workloads can all share these models.
"""
