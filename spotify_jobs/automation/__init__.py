"""Schedules and sensors across domains, the run queue's configuration, and what the ops CLI drives."""

from spotify_jobs.automation.alerts import AlertChannels, alert_channels_from_settings
from spotify_jobs.automation.retraining import RetrainPolicy
from spotify_jobs.automation.schedules import JobSchedule, build_schedules
from spotify_jobs.automation.sensors import build_sensors

__all__ = [
    "AlertChannels",
    "JobSchedule",
    "RetrainPolicy",
    "alert_channels_from_settings",
    "build_schedules",
    "build_sensors",
]
