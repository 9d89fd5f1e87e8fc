"""The one builder of dagster-k8s config, and rendering of the exact step Job manifests."""
