"""The batch scoring workload, run with the server image: `python -m kubeloop.batch [score|notify]`.

`score` is one shard of a BatchPrediction run (a pod of an Indexed Job): it streams its share of
the input in chunks, validates the rows against the model's signature (bad rows go to a rejects
file with the reason), scores them with onnxruntime and writes output parts and a manifest to the
store. `notify` runs once the run is over: it writes the run's manifest and delivers the webhook
and the email. Like the server, nothing here imports scikit-learn, kopf, kubernetes or the
operator's packages (tests/unit/batch/test_import_boundaries.py checks it).
"""
