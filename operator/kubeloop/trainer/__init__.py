"""The training workload (`python -m kubeloop.trainer`, the trainer image's entrypoint).

Reads a TrainerTask from KUBELOOP_TASK, loads and validates the dataset, then either evaluates one
search trial (mode `trial`) or fits, evaluates and exports the whole pipeline to ONNX (mode `train`),
writing its artifacts to the run's store folder and a compact result to the termination message.
Never imports kopf, kubernetes or the operator's controllers.
"""
