"""`kubeloop`: the command line next to kubectl (status, approve, abort, promote, report)."""
