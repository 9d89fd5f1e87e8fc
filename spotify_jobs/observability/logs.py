"""Structured JSON logs for log shippers, with personal data and secrets redacted (no Dagster imports).

One JSON object per line: `time` (UTC ISO 8601), `level`, `tenant`, `job_type`, `run_id`, `step`,
`logger`, `message` (and `exception` when there is one). Fields a record does not know are null.
Dagster log records carry the run's tags and step key in `record.dagster_meta`; plain records may set
`extra={"tenant": ..., "job_type": ..., "run_id": ..., "step": ...}`.

`redact()` replaces, in this order: configured secret values (e.g. the pseudonym secret) verbatim, URL
credentials, bearer tokens, `key=value` / `key: value` pairs whose key names a secret or a person (password, token,
secret, api_key, username, email, ...), AWS access key ids, e-mail addresses, and IPv4 and
IPv6 addresses.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

REDACTED = "[REDACTED]"
LOG_FIELDS = ("time", "level", "tenant", "job_type", "run_id", "step", "logger", "message")

_SENSITIVE_KEYS = (
    r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|"
    r"session[_-]?token|private[_-]?key|credentials?|authorization|user(?:[_-]?name)?|login|email|e-mail|"
    r"ip[_-]?addr(?:ess)?|client[_-]?ip|remote[_-]?addr|phone|pseudonym[_-]?secret"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/=-]+"), f"Bearer {REDACTED}"),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@"), rf"\1{REDACTED}@"),
    # key=value, key: value, "key": "value"
    (
        re.compile(
            rf"""(?ix)(["']?\b[\w-]*(?:{_SENSITIVE_KEYS})["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&}}\]]+)"""
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"), REDACTED),
    (re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"), REDACTED),
)
# IPv6 candidates (hex digits and at least two colons); ipaddress decides, so times like 12:30:45 survive.
_IPV6_CANDIDATE = re.compile(r"(?<![\w:.])[0-9A-Fa-f]*:[0-9A-Fa-f:]*:[0-9A-Fa-f.]*(?![\w:])")


def _ipv6_or_kept(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)
    return REDACTED


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with secrets and personal data replaced by [REDACTED]."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _IPV6_CANDIDATE.sub(_ipv6_or_kept, text)


class RedactionFilter(logging.Filter):
    """Redacts the formatted message (and arguments) of every record passing through."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


def _dagster_fields(record: logging.LogRecord) -> dict[str, str | None]:
    # Imported lazily so this module stays free of Dagster; the tag names are plain strings.
    from spotify_jobs.k8s.tags import JOB_TYPE_TAG, TENANT_TAG

    meta = getattr(record, "dagster_meta", None) or {}
    tags = meta.get("job_tags") or {}
    event = meta.get("dagster_event")
    # step and run failures carry their error in the event, not in the message
    error = getattr(getattr(event, "event_specific_data", None), "error", None)
    return {
        "tenant": tags.get(TENANT_TAG) or tags.get("dagster/partition/tenant"),
        "job_type": tags.get(JOB_TYPE_TAG),
        "run_id": meta.get("run_id"),
        "step": meta.get("step_key"),
        "message": meta.get("orig_message"),
        "exception": error.to_string() if hasattr(error, "to_string") else None,
    }


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line, redacted."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        fields = _dagster_fields(record)
        message = fields.pop("message") or record.getMessage()
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "tenant": getattr(record, "tenant", None) or fields["tenant"],
            "job_type": getattr(record, "job_type", None) or fields["job_type"],
            "run_id": getattr(record, "run_id", None) or fields["run_id"],
            "step": getattr(record, "step", None) or fields["step"],
            "logger": record.name,
            "message": redact(str(message), self.secrets),
        }
        exception = self.formatException(record.exc_info) if record.exc_info else fields["exception"]
        if exception:
            payload["exception"] = redact(exception, self.secrets)
        return json.dumps(payload, ensure_ascii=False, default=str)


def json_lines_handler(
    stream=None, secrets: Iterable[str] = (), level: int = logging.INFO
) -> logging.Handler:
    """A stream handler (stderr by default) writing redacted JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)
    handler.setFormatter(JsonLinesFormatter(secrets))
    handler.addFilter(RedactionFilter(secrets))
    return handler
