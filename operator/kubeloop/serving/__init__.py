"""The model server workload: one ONNX model behind the Open Inference Protocol (FastAPI + onnxruntime).

`python -m kubeloop.serving` serves; `python -m kubeloop.serving validate` is the ModelVersion
validation Job. Nothing here imports scikit-learn, kopf, kubernetes or the operator's packages:
the server image has none of them (tests/unit/serving/test_import_boundaries.py checks it).
"""
