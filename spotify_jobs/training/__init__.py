"""ML training: per-tenant recommendation models from clean listening events (torch, imported lazily)."""
