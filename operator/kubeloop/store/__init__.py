"""The artifact store: S3/MinIO (and file:// for tests), with retries, digests and the object layout."""
