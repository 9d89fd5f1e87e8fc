"""Shared fixtures; every module in fixtures/ is a plugin (servers on 127.0.0.1, platform objects)."""

from pathlib import Path

pytest_plugins = sorted(
    f"spotify_jobs_tests.fixtures.{path.stem}"
    for path in Path(__file__).with_name("fixtures").glob("*.py")
    if path.stem != "__init__"
)
