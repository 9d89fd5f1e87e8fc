"""What the ETL's asset checks verify, as plain functions over Arrow tables (no Dagster)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from spotify_jobs.etl.parse import FILE_UNREADABLE, REASONS, TRACK_URI_PATTERN
from spotify_jobs.etl.schema import arrow_schema

_HEX_ID = r"^[0-9a-f]{64}$"
# Values shorter than this are only matched as whole cells, so that a username like "bob" does not flag
# every track name that contains it.
_MIN_SUBSTRING = 4


def schema_problems(schema: pa.Schema, columns: dict[str, str]) -> list[str]:
    """How `schema` differs from a column contract (missing, extra, mistyped columns)."""
    expected = arrow_schema(columns)
    problems = [f"missing column {f.name}" for f in expected if f.name not in schema.names]
    problems += [f"unexpected column {name}" for name in schema.names if name not in expected.names]
    for f in expected:
        if f.name in schema.names and schema.field(f.name).type != f.type:
            problems.append(f"column {f.name} is {schema.field(f.name).type}, expected {f.type}")
    return problems


def listening_event_problems(table: pa.Table) -> list[str]:
    problems = []
    bad_ids = len(table) - int(pc.sum(pc.match_substring_regex(table["listener_id"], _HEX_ID)).as_py() or 0)
    if bad_ids:
        problems.append(f"{bad_ids} listener_id values are not 64 hex characters")
    music = pc.equal(table["content_type"], "music")
    if pc.any(pc.and_(music, pc.is_null(table["track_uri"]))).as_py():
        problems.append("music events without track_uri")
    return problems


def quarantine_problems(table: pa.Table) -> list[str]:
    known = pa.array([*REASONS, FILE_UNREADABLE])
    unknown = pc.filter(table["reason"], pc.invert(pc.is_in(table["reason"], known)))
    return [f"unknown quarantine reasons {sorted(set(unknown.to_pylist()))}"] if len(unknown) else []


def daily_track_stats_problems(table: pa.Table) -> list[str]:
    """Invariants of daily_track_stats: counts consistent, rates in [0, 1], one row per (date, track)."""
    checks = {
        "streams > plays": pc.greater(table["streams"], table["plays"]),
        "unique_listeners > plays": pc.greater(table["unique_listeners"], table["plays"]),
        "plays < 1": pc.less(table["plays"], 1),
        "skip_rate outside [0, 1]": pc.or_(pc.less(table["skip_rate"], 0), pc.greater(table["skip_rate"], 1)),
        "ms_played_total < 0": pc.less(table["ms_played_total"], 0),
        "track_uri not a Spotify track URI": pc.invert(
            pc.match_substring_regex(table["track_uri"], TRACK_URI_PATTERN)
        ),
    }
    problems = [f"{int(pc.sum(failed).as_py() or 0)} rows with {what}" for what, failed in checks.items()]
    problems = [p for p in problems if not p.startswith("0 rows")]
    keys = table.group_by(["event_date", "track_uri"]).aggregate([]).num_rows
    if keys != table.num_rows:
        problems.append(f"{table.num_rows - keys} repeated (event_date, track_uri) rows")
    return problems


class _PersonalFields(msgspec.Struct, gc=False):
    username: Any = None
    ip_addr: Any = None
    ip_addr_decrypted: Any = None


_PERSONAL_DECODER = msgspec.json.Decoder(list[_PersonalFields])


def personal_values(files: Iterable[bytes]) -> set[str]:
    """Every distinct username and IP address in the given export files (unreadable files are skipped)."""
    values: set[str] = set()
    for data in files:
        try:
            records = _PERSONAL_DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        for record in records:
            for value in (record.username, record.ip_addr, record.ip_addr_decrypted):
                if isinstance(value, str) and value:
                    values.add(value)
    return values


def personal_data_hits(table: pa.Table, values: set[str]) -> dict[str, int]:
    """Per string column, how many distinct cells equal a personal value or contain one of 4+ characters."""
    if not values:
        return {}
    long_values = sorted((v for v in values if len(v) >= _MIN_SUBSTRING), key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, long_values))) if long_values else None
    hits: dict[str, int] = {}
    for name in table.column_names:
        column = table[name]
        if not pa.types.is_string(column.type):
            continue
        distinct = [v for v in pc.unique(column).to_pylist() if v is not None]
        found = sum(1 for v in distinct if v in values or (pattern is not None and pattern.search(v)))
        if found:
            hits[name] = found
    return hits


def markdown_table(table: pa.Table, limit: int = 10) -> str:
    """A Markdown preview of the first `limit` rows."""
    rows = table.slice(0, limit).to_pylist()
    names = table.column_names
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = (str(row[n]).replace("|", "\\|").replace("\n", " ")[:80] for n in names)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
