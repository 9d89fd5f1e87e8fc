"""The training tests' tenant, its synthetic data sizes and a fast training configuration."""

from __future__ import annotations

from spotify_jobs.training.config import TrainingConfig

TENANT = "enterprise-001"
# small and fast: ~2 200 train pairs, 150 listeners x 240 tracks, well under a second per training
EVENTS = {"listeners": 150, "tracks": 240, "genres": 6, "days": 8, "seed": 1}
FAST = TrainingConfig(dim=16, epochs=6, batch_size=256, learning_rate=0.05)
