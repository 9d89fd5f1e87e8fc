"""Tenants, tiers, priorities and partitions."""
