"""Protects the tenant data scan: seeded personal data, secrets and foreign objects are found where they
lie (clean outputs fail, landing files are risk); the real ETL's outputs raise nothing; nothing is missed."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spotify_jobs.etl.schema import output_key
from spotify_jobs.security.controls import GDPR, HIPAA, ISO, PCI
from spotify_jobs.security.data_scan import DATA_CONTROLS, ScanLimits, scan_file, scan_tenant_files
from spotify_jobs.security.findings import Status
from spotify_jobs.storage.object_store import S3ObjectStore
from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs_tests.security.helpers import DATE, TENANT

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
HEX = "9f" * 32


def seeded_frame() -> pd.DataFrame:
    """Clean-looking listening rows, with one e-mail, IP, valid card number and AWS key each, a card-like
    number that fails Luhn, and a user-agent version that looks like an address."""
    rows = 6
    frame = pd.DataFrame(
        {
            "listener_id": [HEX] * rows,
            "track_name": ["Midnight City"] * rows,
            "platform": ["web_player windows 10;chrome 119.0.0.0;desktop"] * rows,
            "note": ["", "", "", "", "", ""],
            "ms_played": [200_000] * rows,
        }
    )
    frame.loc[1, "track_name"] = "dedicated to jane.doe@example.com"
    frame.loc[2, "note"] = "seen from 203.0.113.42"
    frame.loc[3, "note"] = "paid with 4111 1111 1111 1111"
    frame.loc[4, "note"] = f"aws_access_key_id={AWS_KEY}"
    frame.loc[5, "track_name"] = "Catalogue 4111 1111 1111 1112"
    return frame


def by_control(findings) -> dict[str, list]:
    result: dict[str, list] = {}
    for finding in findings:
        result.setdefault(finding.control, []).append(finding)
    return result


def test_seeded_values_in_a_clean_output_fail_with_their_controls_and_requirements(platform):
    storage = platform.tenant_storage(TENANT)
    key = output_key("listening_events", DATE)
    storage.write_parquet(seeded_frame(), key)
    ledger, coverage = scan_file(storage, key)
    found = by_control(ledger.findings)
    assert set(found) == {"DATA-PII-EMAIL", "DATA-PII-IP", "DATA-PII-CARD", "DATA-SECRET"}
    assert all(f.status is Status.FAIL and f.object.name == key for fs in found.values() for f in fs)
    [email] = found["DATA-PII-EMAIL"]
    assert (email.field, email.count) == ("track_name", 1)
    assert "row 1" in email.message and "j***@example.com" in email.message
    [ip] = found["DATA-PII-IP"]
    assert ip.field == "note" and "row 2" in ip.message
    [card] = found["DATA-PII-CARD"]
    assert card.count == 1, "the Luhn-failing number must not be counted"
    assert "row 3" in card.message and "************1111" in card.message
    assert "4111 1111 1111 1111" not in card.message
    [secret] = found["DATA-SECRET"]
    assert "row 4" in secret.message and AWS_KEY not in secret.message
    assert "3.5.1" in card.frameworks[PCI] and "A.8.11" in card.frameworks[ISO]
    assert {"Art. 5(1)(c)", "Art. 25", "Art. 32(1)(a)"} <= set(email.frameworks[GDPR])
    assert "164.514(b)(2)" in ip.frameworks[HIPAA]
    assert PCI not in email.frameworks, "an e-mail address is not cardholder data"
    assert {"8.6.2", "8.3.2"} <= set(secret.frameworks[PCI])
    assert coverage.rows_total == coverage.rows_scanned == 6


def test_the_same_values_in_landing_files_are_risk_not_failure(platform):
    storage = platform.tenant_storage(TENANT)
    records = [
        {"ts": "2026-11-20T01:00:00Z", "username": "melody_fan", "ip_addr": "203.0.113.42",
         "master_metadata_track_name": "for jane.doe@example.com", "note": f"key {AWS_KEY}",
         "card": 4111111111111111, "not_a_card": 4111111111111112},
    ]  # fmt: skip
    key = f"landing/{DATE}/export-abc/Streaming_History_Audio_2026_0.json"
    storage.write_bytes(json.dumps(records).encode(), key)
    ledger, _ = scan_file(storage, key)
    found = by_control(ledger.findings)
    assert set(found) == {
        "DATA-PII-IDENTIFIER",
        "DATA-PII-IP",
        "DATA-PII-EMAIL",
        "DATA-SECRET",
        "DATA-PII-CARD",
    }
    assert {f.status for fs in found.values() for f in fs} == {Status.RISK}
    assert found["DATA-PII-IDENTIFIER"][0].field == "$[*].username"
    assert found["DATA-PII-CARD"][0].field == "$[*].card"


def test_a_clean_tenant_after_the_real_etl_has_no_failing_data_finding(platform, clean_tenant):
    result = scan_tenant_files(clean_tenant, platform.registry.ids)
    fails = [f for f in result.ledger.findings if f.status is Status.FAIL]
    assert fails == []
    risks = by_control(result.ledger.findings)
    assert {"DATA-PII-IDENTIFIER", "DATA-PII-IP"} <= set(risks)
    assert all(f.object.name.startswith("landing/") for fs in risks.values() for f in fs)
    clean_files = [f for f in result.files if f.zone == "clean"]
    assert {f.key.split("/")[1] for f in clean_files} == {
        "listening_events",
        "quarantined_events",
        "daily_track_stats",
    }
    for control_id in DATA_CONTROLS:
        assert len(result.ledger.checked[control_id]) == len(result.files)
    coverage = result.coverage()
    assert coverage["sampled_files"] == [] and coverage["rows_scanned"] == coverage["rows_total"] > 0


def test_a_pseudonymisation_slip_in_the_etl_output_is_found(platform, clean_tenant):
    key = output_key("listening_events", DATE)
    events = clean_tenant.read_parquet(key)
    events.loc[len(events) // 2, "listener_id"] = "melody_fan"
    events["username"] = events["listener_id"]
    clean_tenant.write_parquet(events, key)
    found = by_control(scan_file(clean_tenant, key)[0].findings)
    [identifier] = found["DATA-PII-IDENTIFIER"]
    assert identifier.status is Status.FAIL and identifier.field == "username" and identifier.count == 1
    assert f"row {len(events) // 2}" in identifier.message


def test_csv_text_jsonl_and_json_inside_cells_are_scanned(platform):
    storage = platform.tenant_storage(TENANT)
    storage.write_bytes(b"invoice,contact\n1,billing@example.com\n", "reports/billing/2026-11/invoice.csv")
    storage.write_bytes(b"boot ok\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n", "logs/step.log")
    storage.write_bytes(b'{"event": "login", "src": "2001:db8::7"}\n', "audit/2026-11-20.jsonl")
    quarantine = pd.DataFrame(
        {"reason": ["bad_ts"], "redacted_record": [json.dumps({"username": "melody_fan"})]}
    )
    storage.write_parquet(quarantine, output_key("quarantined_events", DATE))
    result = scan_tenant_files(storage)
    found = {(f.control, f.object.name, f.field) for f in result.ledger.findings}
    assert found == {
        ("DATA-PII-EMAIL", "reports/billing/2026-11/invoice.csv", "column contact"),
        ("DATA-SECRET", "logs/step.log", "text"),
        ("DATA-PII-IP", "audit/2026-11-20.jsonl", "$.src"),
        ("DATA-PII-IDENTIFIER", output_key("quarantined_events", DATE), "redacted_record.username"),
    }


def test_objects_of_another_tenant_are_isolation_failures(platform):
    storage = platform.tenant_storage(TENANT)
    storage.write_parquet(
        pd.DataFrame({"tenant_id": [TENANT, "enterprise-001"]}), "assets/usage/date=2026-11-20.parquet"
    )
    storage.write_json({"tenant": "enterprise-001", "files": 3}, "manifests/import.json")
    storage.write_json({"tenant": TENANT}, "manifests/own.json")
    storage.write_bytes(b"x", "assets/listening_events/tenant=premium-client-001.parquet.txt")
    storage.write_bytes(b"y", "exports/enterprise-001/readme.txt")
    result = scan_tenant_files(storage, platform.registry.ids)
    crossed = {
        (f.object.name, f.field) for f in result.ledger.findings if f.control == "TEN-CROSS-TENANT-OBJECT"
    }
    assert crossed == {
        ("assets/usage/date=2026-11-20.parquet", "tenant_id"),
        ("manifests/import.json", "$.tenant"),
        ("assets/listening_events/tenant=premium-client-001.parquet.txt", "key"),
        ("exports/enterprise-001/readme.txt", "key"),
    }
    finding = next(f for f in result.ledger.findings if f.object.name == "manifests/import.json")
    assert "'enterprise-001'" in finding.message and finding.severity.value == "critical"


def _row_grouped_parquet(rows: int, needle_row: int, group_rows: int) -> bytes:
    values = [f"track {i}" for i in range(rows)]
    values[needle_row] = "contact jane.doe@example.com"
    buffer = io.BytesIO()
    pq.write_table(pa.table({"track_name": values}), buffer, row_group_size=group_rows)
    return buffer.getvalue()


def test_every_row_is_scanned_up_to_the_budget_and_beyond_it_the_sample_is_reported(platform):
    storage = platform.tenant_storage(TENANT)
    key = output_key("daily_track_stats", DATE)
    storage.write_bytes(_row_grouped_parquet(5000, needle_row=4999, group_rows=500), key)
    ledger, coverage = scan_file(storage, key, limits=ScanLimits(batch_rows=700))
    [email] = ledger.findings
    assert "row 4999" in email.message and coverage.rows_scanned == 5000 and not coverage.sampled
    ledger, coverage = scan_file(storage, key, limits=ScanLimits(max_rows_per_file=1000))
    assert coverage.sampled and coverage.rows_scanned == 1000 and coverage.rows_total == 5000
    assert "sampled 2 of 10 row groups" in coverage.note
    assert ledger.findings == [], "row 4999 lies in a row group the sample skips"
    storage.write_bytes(_row_grouped_parquet(5000, needle_row=2600, group_rows=500), key)
    [email] = scan_file(storage, key, limits=ScanLimits(max_rows_per_file=1000))[0].findings
    assert "row 2600" in email.message, "rows keep their index in the file when sampled"


def test_an_unparseable_json_export_is_scanned_as_text_keeping_field_rules(platform):
    storage = platform.tenant_storage(TENANT)
    key = f"landing/{DATE}/export-t/Streaming_History_Audio_2026_1.json"
    storage.write_bytes(
        b'[\n{"username": "melody_fan", "ip_addr": "203.0.113.9", "ts": "2026-11-20T01:00', key
    )
    ledger, coverage = scan_file(storage, key)
    assert coverage.format == "text" and "not valid JSON" in coverage.note
    assert {(f.control, f.field, f.status) for f in ledger.findings} == {
        ("DATA-PII-IDENTIFIER", "text.username", Status.RISK),
        ("DATA-PII-IP", "text", Status.RISK),
    }


def test_json_arrays_beyond_the_budget_are_sampled_evenly(platform):
    storage = platform.tenant_storage(TENANT)
    key = f"landing/{DATE}/export-x/Streaming_History_Audio_2026_0.json"
    storage.write_bytes(json.dumps([{"username": f"user{i}"} for i in range(100)]).encode(), key)
    _, full = scan_file(storage, key)
    assert (full.rows_scanned, full.sampled) == (100, False)
    ledger, sampled = scan_file(storage, key, limits=ScanLimits(max_rows_per_file=10))
    assert (sampled.rows_total, sampled.rows_scanned) == (100, 10)
    assert ledger.findings[0].count == 10


def test_own_reports_are_skipped_and_binary_files_listed(platform):
    storage = platform.tenant_storage(TENANT)
    storage.write_json({"contact": "jane.doe@example.com"}, "reports/security/2026-11-19/report.json")
    storage.write_bytes(b"\x00\x01model weights\x00", "models/recommender/model.pt")
    result = scan_tenant_files(storage)
    assert result.ledger.findings == []
    assert result.coverage()["files_skipped"] == [
        {
            "key": "models/recommender/model.pt",
            "reason": "binary file (not parquet, JSON, CSV or text): content not scanned",
        }
    ]


@pytest.fixture
def s3_tenant(s3_endpoint, s3_bucket):
    return TenantStorage(S3ObjectStore(s3_bucket, "platform", endpoint_url=s3_endpoint), TENANT)


def test_tenant_files_on_s3_are_scanned_the_same_way(s3_tenant):
    s3_tenant.write_parquet(seeded_frame(), output_key("listening_events", DATE))
    result = scan_tenant_files(s3_tenant)
    assert {f.control for f in result.ledger.findings} == {
        "DATA-PII-EMAIL",
        "DATA-PII-IP",
        "DATA-PII-CARD",
        "DATA-SECRET",
    }
