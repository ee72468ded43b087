"""The only code that talks to the API server: status patches, Events, server-side apply."""

FIELD_MANAGER = "kubeloop"
