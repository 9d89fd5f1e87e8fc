"""Protects the value detectors: personal data and secrets are found and redacted; look-alikes are not."""

from __future__ import annotations

import pytest

from spotify_jobs.security.detectors import (
    CARD,
    EMAIL,
    IDENTIFIER,
    IP,
    PHONE,
    SECRET,
    card_network,
    detect_card_number,
    detect_field,
    detect_value,
    luhn_valid,
)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
)
GITHUB_TOKEN = "ghp_" + "x1Y2z3" * 6
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def controls(text: str) -> list[str]:
    return [d.control for d in detect_value(text)]


@pytest.mark.parametrize(
    ("text", "control", "kind"),
    [
        ("contact jane.doe+music@example.co.uk today", EMAIL, "email"),
        ("203.0.113.42", IP, "ipv4"),
        ("login from 198.51.100.7:443", IP, "ipv4"),
        ('{"ip": "192.168.1.20"}', IP, "ipv4"),
        ("2001:db8:85a3::8a2e:370:7334", IP, "ipv6"),
        ("peer fe80::1ff:fe23:4567:890a%eth0 answered", IP, "ipv6"),
        ("4111 1111 1111 1111", CARD, "card"),
        ("card: 5500-0000-0000-0004", CARD, "card"),
        ("378282246310005", CARD, "card"),
        ("6011111111111117", CARD, "card"),
        ("call +46 70 123 45 67", PHONE, "phone"),
        ("(415) 555-2671", PHONE, "phone"),
        ("+44 20 7946 0958", PHONE, "phone"),
        (f"aws_access_key_id = {AWS_KEY}", SECRET, "AWS Access Key"),
        (PRIVATE_KEY, SECRET, "Private Key"),
        (f"token {GITHUB_TOKEN}", SECRET, "GitHub Token"),
        (JWT, SECRET, "JSON Web Token"),
        ("https://admin:s3cr3tpass@db.example.com/prod", SECRET, "Basic Auth Credentials"),
    ],
)
def test_personal_data_and_secrets_are_found(text, control, kind):
    found = [d for d in detect_value(text) if d.control == control]
    assert found, f"{control} not found in {text!r}"
    assert found[0].kind == kind


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # card-like, fails Luhn
        "4111111111111112",
        "5500000000000005",
        "1234567812345670",  # passes Luhn but no card network starts with 1
        "4444444444444444",  # one repeated digit
        "web_player windows 10;chrome 119.0.0.0;desktop",  # a browser version, not an address
        "Spotify/8.5.60 iOS/13.4 (iPhone11,8)",
        "Windows 10 (10.0.19045; x64)",
        "spotify:track:4iV5W9uYEdYUVa79Axb7Rh",
        "a3f5" + "4111111111111111" + "bcd9" * 11,  # digits inside a hex digest
        "2026-11-27T03:15:00Z",
        "2026-11-27",
        "10:00:00",
        "00:1a:2b:3c:4d:5e",  # a MAC address
        "127.0.0.1",
        "::1",
        "Midnight City Lights",
        "order 12345678",
        "1700000000000",  # epoch milliseconds
    ],
)
def test_look_alikes_are_not_reported(text):
    assert detect_value(text) == []


def test_luhn_and_card_networks():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert luhn_valid("79927398713")
    assert card_network("4111111111111111") == "visa"
    assert card_network("378282246310005") == "amex"
    assert card_network("2221000000000009") == "mastercard"
    assert card_network("3530111333300000") == "jcb"
    assert card_network("9111111111111111") is None


def test_card_numbers_stored_as_numbers():
    [found] = detect_card_number(4111111111111111)
    assert found.control == CARD and found.redacted.endswith("1111")
    assert detect_card_number(4111111111111112) == []
    assert detect_card_number(1700000000000) == []


def test_redacted_forms_never_hold_the_value():
    text = "jane.doe@example.com 203.0.113.42 4111111111111111 +46 70 123 45 67 " + AWS_KEY
    found = detect_value(text)
    assert {d.control for d in found} == {EMAIL, IP, CARD, PHONE, SECRET}
    for detection in found:
        for secret in ("jane.doe", "113.42", "41111111111", "123 45", AWS_KEY):
            assert secret not in detection.redacted
    assert next(d for d in found if d.control == CARD).redacted == "************1111"


def test_identifier_fields_report_raw_values_only():
    [found] = detect_field("username", "melody_fan_42")
    assert found.control == IDENTIFIER and found.redacted == "username=m***"
    assert detect_field("Username", "x" * 3)[0].control == IDENTIFIER
    assert detect_field("username", "ab" * 32) == []  # an HMAC pseudonym
    assert detect_field("user_agent_decrypted", "unknown") == []
    assert detect_field("username", "") == []
    assert detect_field("track_name", "melody_fan_42") == []


def test_credential_fields_are_secrets_by_name():
    [found] = detect_field("db_password", "Zx8sdfkj23")
    assert found.control == SECRET
    assert "Zx8sdfkj23" not in found.redacted
    assert detect_field("token_count", "12") == []
    assert detect_field("password", "") == []
