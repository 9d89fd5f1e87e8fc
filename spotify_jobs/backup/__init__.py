"""Tenant backup, restore and migration: content-addressed, checksummed, proven restorable."""
