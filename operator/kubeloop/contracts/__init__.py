"""Wire formats shared by the operator and the workloads (pydantic; no kopf, no kubernetes)."""
