"""Structured JSON logs carry run context, one object per line, and never personal data or secrets."""

import io
import json
import logging
import re

import dagster as dg
import pytest
from pydantic import SecretStr

from spotify_jobs.k8s.tags import JOB_TYPE_TAG, TENANT_TAG, step_tags
from spotify_jobs.observability.loggers import build_json_lines_logger
from spotify_jobs.observability.logs import LOG_FIELDS, REDACTED, json_lines_handler, redact
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_date_key
from spotify_jobs.tenancy.tiers import JobType

SECRET = "pseudonym-secret-7f3a9c"  # a test value that must never reach a log line
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PERSONAL = {
    "email": "alice.smith+music@example.com",
    "ipv4": "203.0.113.42",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "username": "username=bob_listener",
    "password": "password: hunter2",
    "aws key id": AWS_KEY_ID,
    "aws secret": f"aws_secret_access_key={AWS_SECRET}",
    "url credentials": "s3://AKIDUSER:topsecret@bucket.internal/path",
    "bearer": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    "json email": '{"email": "bob@example.org"}',
}
LEAKS = [
    SECRET,
    AWS_KEY_ID,
    AWS_SECRET,
    "alice.smith",
    "example.com",
    "example.org",
    "203.0.113.42",
    "2001:db8",
    "bob_listener",
    "hunter2",
    "topsecret",
    "eyJhbGci",
]


@pytest.mark.parametrize("kind", sorted(PERSONAL))
def test_redact_removes_each_kind_of_personal_or_secret_data(kind):
    text = f"step saw {PERSONAL[kind]} while loading"
    redacted = redact(text, [SECRET])
    assert REDACTED in redacted
    assert not [leak for leak in LEAKS if leak in redacted]


@pytest.mark.parametrize(
    "text",
    [
        "run 3f2a9c1e-7b4d-4e8a-9f00-1234567890ab step daily_track_stats done in 12:30:45",
        "tenant enterprise-001 partition 2026-05-01|enterprise-001 rows=1200 ratio 1:2",
        "wrote s3://bucket/tenants/startup-042/assets/x/date=2026-05-01.parquet (3.2 MiB) skip=3",
    ],
)
def test_redact_keeps_operational_text(text):
    assert redact(text, [SECRET]) == text


def test_configured_secrets_are_redacted_verbatim():
    assert redact(f"hashing with {SECRET}!", [SECRET, ""]) == f"hashing with {REDACTED}!"


def test_formatter_writes_one_json_object_per_line_with_context():
    stream = io.StringIO()
    logger = logging.Logger("test.json_lines")
    logger.addHandler(json_lines_handler(stream, secrets=[SECRET]))
    logger.info(
        "loaded %s rows for %s", 12, "carol@example.com", extra={"tenant": "startup-042", "step": "s1"}
    )
    try:
        raise ValueError(f"secret was {SECRET}")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert list(first) == list(LOG_FIELDS)
    assert (first["level"], first["tenant"], first["step"], first["run_id"]) == (
        "INFO",
        "startup-042",
        "s1",
        None,
    )
    assert first["message"] == f"loaded 12 rows for {REDACTED}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert second["level"] == "ERROR" and "ValueError" in second["exception"] and SECRET not in lines[1]


TENANT = "enterprise-001"


@dg.asset(partitions_def=tenant_daily_partitions, op_tags=step_tags(JobType.SECURITY_SCAN))
def chatty_scan(context: dg.AssetExecutionContext, platform: PlatformResource) -> None:
    """Logs personal data and secrets on purpose, then fails with them in the error."""
    with step_meter(context, platform):
        for value in PERSONAL.values():
            context.log.info(f"scanning {value}")
        context.log.warning(f"pseudonymising with {platform.pseudonym_secret}")
        raise RuntimeError(f"cannot reach {PERSONAL['ipv4']} as {PERSONAL['email']} using {SECRET}")


def test_a_dagster_run_logs_json_lines_without_personal_data_or_secrets(settings, capsys):
    platform = PlatformResource.from_settings(
        settings.model_copy(update={"pseudonym_secret": SecretStr(SECRET)})
    )
    defs = dg.Definitions(
        assets=[chatty_scan],
        jobs=[
            dg.define_asset_job(
                "scan_job", selection=[chatty_scan], tags={TENANT_TAG: TENANT, JOB_TYPE_TAG: "security-scan"}
            )
        ],
        resources={"platform": platform},
        loggers={"console": dg.colored_console_logger, "json": build_json_lines_logger([SECRET])},
    )
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    capsys.readouterr()

    result = defs.resolve_job_def("scan_job").execute_in_process(
        instance=instance,
        partition_key=tenant_date_key(TENANT, "2026-05-01"),
        run_config={"loggers": {"json": {"config": {"log_level": "DEBUG", "stream": "stdout"}}}},
        raise_on_error=False,
    )

    assert not result.success
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert len(records) >= len(PERSONAL) + 3
    assert all(list(r) in (list(LOG_FIELDS), [*LOG_FIELDS, "exception"]) for r in records)
    scanning = [r for r in records if r["message"].startswith("scanning")]
    assert len(scanning) == len(PERSONAL)
    assert {(r["tenant"], r["job_type"], r["run_id"], r["step"]) for r in scanning} == {
        (TENANT, "security-scan", result.run_id, "chatty_scan")
    }
    [step_failure] = [r for r in records if r["message"] == 'Execution of step "chatty_scan" failed.']
    assert (
        step_failure["level"] == "ERROR"
        and "RuntimeError: cannot reach [REDACTED]" in step_failure["exception"]
    )
    # Dagster's own console logger (stderr) and event log keep what assets log; the JSON lines must not.
    assert [leak for leak in LEAKS if leak in captured.out] == []
