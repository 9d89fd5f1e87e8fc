"""The ETL's C export reader (spotify_jobs/etl/_export_reader.c); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spotify_jobs.etl._export_reader",
            ["spotify_jobs/etl/_export_reader.c"],
            extra_compile_args=["-O3", "-Wall"],
        )
    ]
)
