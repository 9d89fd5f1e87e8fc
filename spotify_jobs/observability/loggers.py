"""A Dagster logger that writes redacted JSON lines for log shippers, next to Dagster's own run logs.

Add it to the Definitions' loggers together with Dagster's console logger (giving `loggers` replaces the
defaults), passing the secrets that must never appear verbatim:

    loggers={
        "console": dg.colored_console_logger,
        "json": build_json_lines_logger([settings.pseudonym_secret.get_secret_value()]),
    }

Each record's tenant and job type come from the run's tags, its run id and step from Dagster.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

import dagster as dg

from spotify_jobs.observability.logs import json_lines_handler

_LEVELS = dg.Enum(
    "JsonLinesLogLevel", [dg.EnumValue(v) for v in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")]
)
_STREAMS = dg.Enum("JsonLinesStream", [dg.EnumValue("stdout"), dg.EnumValue("stderr")])


def build_json_lines_logger(secrets: Iterable[str] = ()) -> dg.LoggerDefinition:
    """The `json_lines` logger definition, redacting `secrets` (and the patterns of logs.redact) in every line."""
    secrets = tuple(s for s in secrets if s)

    @dg.logger(
        config_schema={
            "log_level": dg.Field(_LEVELS, default_value="INFO", description="Lowest level written."),
            "stream": dg.Field(_STREAMS, default_value="stdout", description="Where the lines go."),
        },
        description="Redacted JSON lines (time, level, tenant, job_type, run_id, step, message) for log shippers.",
    )
    def json_lines_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
        config = init_context.logger_config
        level = logging.getLevelNamesMapping()[config["log_level"]]
        stream = sys.stdout if config["stream"] == "stdout" else sys.stderr
        logger = logging.Logger("spotify_jobs.json_lines", level=level)
        logger.addHandler(json_lines_handler(stream, secrets=secrets, level=level))
        return logger

    return json_lines_logger


json_lines_logger = build_json_lines_logger()
