"""The monitor workload: drift and live performance of a deployed model, from its request logs.

`python -m kubeloop.monitor` reads the task from KUBELOOP_TASK (contracts/monitoring.py), streams
the window's request logs and feedback from the store, and writes report.json, report.html and a
summary in its termination message. Imports neither the operator's code nor scikit-learn.
"""
