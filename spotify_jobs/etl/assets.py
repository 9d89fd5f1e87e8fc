"""Dagster wiring of the data ETL: one pass over a tenant's landing date feeds three assets.

`listening_events`, `quarantined_events` and `daily_track_stats` come from one multi-asset step (the files are
parsed once); selecting a subset writes only those outputs, and without listening_events fewer fields are
decoded. Outputs go to `output_key(asset, date)` in the tenant's storage (the IO manager's layout, so
downstream assets can load them as inputs) and replace the previous version, so re-runs are idempotent.
The computation lives in pipeline.py / parse.py / stats.py; the checks' logic in quality.py.
"""

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from spotify_jobs.etl.files import InputFile, landing_files
from spotify_jobs.etl.parse import FILE_UNREADABLE, REASONS
from spotify_jobs.etl.pipeline import EtlResult, TenantStorageSink, run_etl, tenant_key
from spotify_jobs.etl.quality import (
    daily_track_stats_problems,
    listening_event_problems,
    markdown_table,
    personal_data_hits,
    personal_values,
    quarantine_problems,
    schema_problems,
)
from spotify_jobs.etl.schema import ETL_OUTPUTS, OUTPUT_COLUMNS, landing_prefix, output_key
from spotify_jobs.k8s.tags import step_tags
from spotify_jobs.observability.metering import step_meter
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_daily_partitions, tenant_of, time_of
from spotify_jobs.tenancy.tiers import JobType

GROUP = "etl"
OWNERS = ["team:ml-platform"]
KINDS = {"pandas", "parquet"}
# The materialisation that carries `records_in`, which billing meters once per run.
BILLED_METADATA_KEY = "records_in"

_DESCRIPTIONS = {
    "listening_events": (
        "Clean, deduplicated, pseudonymised streams of one tenant's landing date: one row per stream, "
        "listener_id = HMAC-SHA256 of the listener under the tenant's key, no username / IP / user agent."
    ),
    "quarantined_events": (
        "Records the ETL refused, with the reason (first that applies: missing_listener, bad_ts, "
        "bad_ms_played, bad_track_uri, no_content; file_unreadable for a whole file), the file, the "
        "position and a redacted record without personal data."
    ),
    "daily_track_stats": (
        "Music only, one row per (event_date, track_uri): plays, streams (>= 30 s), ms_played_total, "
        "unique_listeners and skip_rate of the clean, deduplicated plays."
    ),
}


def _column_schema(name: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(column, dtype) for column, dtype in OUTPUT_COLUMNS[name].items()]
    )


ETL_SPECS = [
    dg.AssetSpec(
        name,
        description=_DESCRIPTIONS[name],
        group_name=GROUP,
        kinds=KINDS,
        owners=OWNERS,
        partitions_def=tenant_daily_partitions,
        metadata={"dagster/column_schema": _column_schema(name)},
        skippable=True,
    )
    for name in ETL_OUTPUTS
]


def _metadata(result: EtlResult, name: str, billed: bool) -> dict[str, object]:
    info = result.outputs[name]
    metadata: dict[str, object] = {
        "path": dg.MetadataValue.path(info.uri),
        "dagster/row_count": dg.MetadataValue.int(info.rows),
        "bytes": dg.MetadataValue.int(info.bytes),
        "input_records": dg.MetadataValue.int(result.records_in),
        "clean_records": dg.MetadataValue.int(result.clean),
        "quarantined_records": dg.MetadataValue.int(result.quarantined),
        "duplicate_records": dg.MetadataValue.int(result.duplicates),
        "conserved": dg.MetadataValue.bool(result.conserved),
        "files": dg.MetadataValue.int(result.files),
        "unreadable_files": dg.MetadataValue.int(result.unreadable_files),
        "ignored_files": dg.MetadataValue.json(result.ignored_files),
        "quarantine_reasons": dg.MetadataValue.json(result.quarantine_reasons),
        "content_types": dg.MetadataValue.json(result.content_types),
        "listeners": dg.MetadataValue.int(result.listeners),
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "preview": dg.MetadataValue.md(markdown_table(result.previews[name])),
    }
    if billed:
        metadata[BILLED_METADATA_KEY] = dg.MetadataValue.int(result.records_in)
    return metadata


@dg.multi_asset(
    name="etl_landing_date",
    specs=ETL_SPECS,
    can_subset=True,
    op_tags=step_tags(JobType.DATA_ETL),
)
def etl_landing_date(context: dg.AssetExecutionContext, platform: PlatformResource):
    """Load one tenant's landing date of Spotify streaming-history exports into the three ETL outputs."""
    tenant = tenant_of(context.partition_key)
    date = time_of(context.partition_key)
    storage = platform.tenant_storage(tenant)
    platform.tenant(tenant)  # registered tenants only: a partition may outlive its registry entry
    files, ignored = landing_files(storage, date)
    selected = [name for name in ETL_OUTPUTS if dg.AssetKey(name) in context.selected_asset_keys]
    context.log.info(f"{len(files)} export files under {storage.uri(landing_prefix(date))}")
    with step_meter(context, platform) as meter:
        result = run_etl(
            files,
            tenant_key(platform.pseudonym_secret, tenant),
            TenantStorageSink(storage, date),
            outputs=selected,
            ignored_files=ignored,
        )
        meter.add_records(result.records_in)
        meter.add_bytes(sum(file.size for file in files))
    context.log.info(
        f"{result.records_in} records in: {result.clean} clean, {result.quarantined} quarantined, "
        f"{result.duplicates} duplicates ({result.seconds:.2f} s)"
    )
    for position, name in enumerate(selected):
        yield dg.MaterializeResult(asset_key=name, metadata=_metadata(result, name, billed=position == 0))


assets = [etl_landing_date]


# --- asset checks --------------------------------------------------------------------------------------------


def _read_output(platform: PlatformResource, partition_key, name: str) -> pa.Table:
    tenant, date = tenant_of(partition_key), time_of(partition_key)
    data = platform.tenant_storage(tenant).read_bytes(output_key(name, date))
    return pq.read_table(pa.BufferReader(data))


def _result(problems: list[str], **metadata: object) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) if problems else "ok",
        metadata={"problems": dg.MetadataValue.json(problems), **metadata},
    )


@dg.asset_check(asset="listening_events", partitions_def=tenant_daily_partitions)
def listening_events_schema(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
    """listening_events has exactly its column contract, 64-hex listener ids, a track_uri on music."""
    table = _read_output(platform, context.partition_key, "listening_events")
    problems = schema_problems(table.schema, OUTPUT_COLUMNS["listening_events"])
    return _result(problems or listening_event_problems(table), rows=len(table))


@dg.asset_check(asset="quarantined_events", partitions_def=tenant_daily_partitions)
def quarantined_events_schema(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
    """quarantined_events has its column contract and only known reasons."""
    table = _read_output(platform, context.partition_key, "quarantined_events")
    problems = schema_problems(table.schema, OUTPUT_COLUMNS["quarantined_events"])
    reasons = dict.fromkeys([*REASONS, FILE_UNREADABLE], 0)
    for reason in table["reason"].to_pylist() if not problems else []:
        reasons[reason] = reasons.get(reason, 0) + 1
    return _result(problems or quarantine_problems(table), reasons=dg.MetadataValue.json(reasons))


@dg.asset_check(asset="daily_track_stats", partitions_def=tenant_daily_partitions)
def daily_track_stats_valid(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
    """daily_track_stats has its column contract, consistent counts and one row per (date, track)."""
    table = _read_output(platform, context.partition_key, "daily_track_stats")
    problems = schema_problems(table.schema, OUTPUT_COLUMNS["daily_track_stats"])
    return _result(problems or daily_track_stats_problems(table), rows=len(table))


@dg.asset_check(asset="listening_events", partitions_def=tenant_daily_partitions)
def etl_conservation(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
    """Input records = clean + quarantined + duplicates, and the stored outputs hold exactly those counts."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("listening_events"), asset_partitions=[str(context.partition_key)]
        ),
        limit=1,
    ).records
    if not records:
        return _result(["listening_events has no materialisation for this partition"])
    meta = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    counts = {
        k: meta[k] for k in ("input_records", "clean_records", "quarantined_records", "duplicate_records")
    }
    problems = []
    if (
        counts["input_records"]
        != counts["clean_records"] + counts["quarantined_records"] + counts["duplicate_records"]
    ):
        problems.append(f"not conserved: {counts}")
    events = _read_output(platform, context.partition_key, "listening_events").num_rows
    if events != counts["clean_records"]:
        problems.append(
            f"listening_events holds {events} rows, the run counted {counts['clean_records']} clean"
        )
    tenant, date = tenant_of(context.partition_key), time_of(context.partition_key)
    if platform.tenant_storage(tenant).exists(output_key("quarantined_events", date)):
        quarantined = _read_output(platform, context.partition_key, "quarantined_events").num_rows
        if quarantined != counts["quarantined_records"]:
            problems.append(
                f"quarantined_events holds {quarantined} rows, the run counted {counts['quarantined_records']}"
            )
    if counts["clean_records"] == 0:
        problems.append("no clean records at all")
    return _result(problems, **{k: dg.MetadataValue.int(v) for k, v in counts.items()})


def _readable(files: list[InputFile]):
    for file in files:
        try:
            yield file.reader.read()
        except ValueError:  # a name storage cannot address: the ETL quarantined it as file_unreadable
            continue


def _personal_data_check(name: str):
    @dg.asset_check(
        asset=name,
        name=f"{name}_has_no_personal_data",
        partitions_def=tenant_daily_partitions,
        description=f"No username or IP address of the landing files appears anywhere in {name}.",
    )
    def check(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
        tenant, date = tenant_of(context.partition_key), time_of(context.partition_key)
        storage = platform.tenant_storage(tenant)
        files, _ = landing_files(storage, date)
        values = personal_values(_readable(files))
        hits = personal_data_hits(_read_output(platform, context.partition_key, name), values)
        problems = [f"{count} distinct {column} values hold personal data" for column, count in hits.items()]
        return _result(problems, personal_values_checked=dg.MetadataValue.int(len(values)))

    return check


asset_checks = [
    listening_events_schema,
    quarantined_events_schema,
    daily_track_stats_valid,
    etl_conservation,
    *(_personal_data_check(name) for name in ETL_OUTPUTS),
]
