"""Tests of the data ETL: generator, parsing rules, pipeline, assets, CLI."""
