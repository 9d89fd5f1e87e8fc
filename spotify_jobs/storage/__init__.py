"""Tenant-scoped storage (local directory or S3) and the IO manager that uses it."""
