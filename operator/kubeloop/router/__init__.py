"""The traffic router workload: one ModelDeployment's entry point in front of its model servers.

`python -m kubeloop.router` follows the routing table (the ConfigMap `<mdep>-routing`, or a file
outside Kubernetes) and the backends' EndpointSlices, answers every request from the stable or the
candidate version, copies a share of them to the other side off the response path, and compares
the two answers for the rollout analysis (`GET /stats`). Nothing here imports scikit-learn,
onnxruntime, FastAPI, kopf or kubernetes: the router image has none of them.
"""
