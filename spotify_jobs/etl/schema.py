"""Column contracts of the ETL outputs; training, security and billing read these."""

from __future__ import annotations

# listening_events: one row per clean, deduplicated, pseudonymised stream.
LISTENING_EVENT_COLUMNS: dict[str, str] = {
    "listener_id": "string",  # HMAC-SHA256(listener key, tenant secret), hex
    "ts": "datetime64[ns, UTC]",  # stream end time
    "event_date": "string",  # UTC date of ts, YYYY-MM-DD
    "content_type": "string",  # music | podcast | audiobook
    "content_uri": "string",  # track, episode or audiobook URI
    "track_uri": "string",  # null unless music
    "track_name": "string",
    "artist_name": "string",
    "album_name": "string",
    "episode_name": "string",
    "show_name": "string",
    "ms_played": "int64",
    "platform": "string",
    "conn_country": "string",
    "reason_start": "string",
    "reason_end": "string",
    "shuffle": "boolean",
    "skipped": "boolean",  # null in the source counts as not skipped
    "offline": "boolean",
    "incognito_mode": "boolean",
}

# quarantined_events: one row per rejected record or unreadable file, with no personal data.
QUARANTINE_COLUMNS: dict[str, str] = {
    "reason": "string",  # file_unreadable | missing_listener | bad_ts | bad_ms_played | bad_track_uri | no_content
    "source_file": "string",  # path relative to the landing date folder: <export-id>/<file>.json
    "record_index": "int64",  # position in the file's array; -1 for a whole unreadable file
    "detail": "string",
    "redacted_record": "string",  # JSON of the record without username / ip_addr* / user_agent_decrypted
}

# daily_track_stats: music only, one row per (event_date, track_uri).
DAILY_TRACK_STATS_COLUMNS: dict[str, str] = {
    "event_date": "string",
    "track_uri": "string",
    "plays": "int64",
    "streams": "int64",  # plays with ms_played >= 30000
    "ms_played_total": "int64",
    "unique_listeners": "int64",
    "skip_rate": "float64",
}

PERSONAL_FIELDS = ("username", "ip_addr", "ip_addr_decrypted", "user_agent_decrypted")
STREAM_THRESHOLD_MS = 30_000


def landing_prefix(date: str) -> str:
    """Where a tenant's exports for one landing date lie, relative to the tenant prefix."""
    return f"landing/{date}"


def output_key(asset_name: str, date: str) -> str:
    """Where one date's output of an ETL asset lies, relative to the tenant prefix (the IO manager's layout)."""
    return f"assets/{asset_name}/date={date}.parquet"


ETL_OUTPUTS = ("listening_events", "quarantined_events", "daily_track_stats")


def arrow_schema(columns: dict[str, str]):
    """The Arrow schema of a column contract (what the Parquet files hold)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "boolean": pa.bool_(),
        "datetime64[ns, UTC]": pa.timestamp("ns", tz="UTC"),
    }
    return pa.schema([pa.field(name, types[dtype]) for name, dtype in columns.items()])


OUTPUT_COLUMNS: dict[str, dict[str, str]] = {
    "listening_events": LISTENING_EVENT_COLUMNS,
    "quarantined_events": QUARANTINE_COLUMNS,
    "daily_track_stats": DAILY_TRACK_STATS_COLUMNS,
}
