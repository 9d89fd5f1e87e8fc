"""Detectors of personal data and secrets in single values, and redaction of what they find.

Secrets: the regex plugins of Yelp's detect-secrets (pure Python; its only dependencies, PyYAML and
requests, are already ours), applied to values directly rather than through its file scanner, plus its
keyword detector for structured fields whose *name* says they hold a credential. Two of its plugins are
left out: IPPublicDetector (an IP address is personal data here and DATA-PII-IP covers IPv4 and IPv6) and
ArtifactoryDetector (its `AP[0-9A-F]...` pattern matches base-62 Spotify URIs such as `spotify:track:AP0...`).
The entropy detectors are left out too: every pseudonymised listener id is a high-entropy hex string.

Personal data: e-mail addresses, IPv4/IPv6 addresses (validated with `ipaddress`; a dotted quad after a
product token, as in "Chrome/119.0.0.0", is a version), payment card numbers (issuer prefix, length and
Luhn checksum), phone numbers (candidates validated against Google's libphonenumber metadata through
`phonenumbers`, also pure Python), and raw usernames / user agents by field name. Whole values of known
harmless shapes (ISO timestamps, hex pseudonyms, Spotify content URIs) are skipped: they are most of the
distinct values of listening data. No detector reports the value it found, only a redacted form.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from spotify_jobs.etl.schema import PERSONAL_FIELDS

EMAIL = "DATA-PII-EMAIL"
IP = "DATA-PII-IP"
PHONE = "DATA-PII-PHONE"
CARD = "DATA-PII-CARD"
IDENTIFIER = "DATA-PII-IDENTIFIER"
SECRET = "DATA-SECRET"

# Fields whose values are direct identifiers whatever they look like (IP fields are found by value).
IDENTIFIER_FIELDS = frozenset(f for f in PERSONAL_FIELDS if not f.startswith("ip_")) | {
    "user_name",
    "user_agent",
}
TENANT_FIELDS = frozenset({"tenant", "tenant_id", "tenantid"})
PHONE_REGION = "US"  # numbers without a +country prefix are read as North American ones

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![\w-])"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*:[0-9A-Fa-f]{0,4}(?:%[\w.]+)?(?![\w:]|\.\d)")
# A dotted quad right after a product token is a version number, not an address: "Chrome/119.0.0.0"
# (user-agent product/version) or a known product or version word and a space ("chrome 119.0.0.0").
_PRODUCT_BEFORE = re.compile(r"(?:^|[\s;(,])([A-Za-z][\w.-]*)(/| )$")
_VERSION_WORDS = frozenset(
    {"chrome", "chromium", "crios", "safari", "firefox", "fxios", "edge", "edg", "opera", "opr", "webkit",
     "applewebkit", "samsungbrowser", "version", "ver", "v", "build", "release", "firmware", "os"}
)  # fmt: skip
_CARD = re.compile(r"(?<![\w.+-])\d(?:[ -]?\d){12,18}(?!\w|[.-]\d)")
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{6,18}\d(?!\w)")
_PSEUDONYM = re.compile(r"^[0-9a-f]{32,}$")
_DATE_OR_TIME = re.compile(r"^\d{4}-\d\d-\d\d|\d\d:\d\d")
# Whole values of these shapes can hold neither personal data nor a secret, and make up most distinct
# values of listening data: ISO dates and times, lower-case hex digests (pseudonyms), Spotify content URIs.
_BENIGN = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d:?\d\d)?)?"
    r"|[0-9a-f]{32,128}"
    r"|spotify:(?:track|episode|show|album|artist|audiobook|chapter):[0-9A-Za-z]{22}"
)
_PLACEHOLDERS = frozenset({"unknown", "none", "null", "n/a", "redacted", "anonymous"})


@dataclass(frozen=True)
class Detection:
    control: str
    kind: str  # email, ipv4, ipv6, card, phone, username, or the detect-secrets secret type
    redacted: str
    span: tuple[int, int] = (0, 0)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_network(digits: str) -> str | None:
    """The card network an issuer prefix and length belong to, or None (not a payment card number)."""
    n = len(digits)
    two, three, four, six = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925) and 16 <= n <= 19:
        return "discover"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (two in (36, 38, 39) or 300 <= three <= 305) and 14 <= n <= 19:
        return "diners"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    return None


def is_payment_card(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return (
        13 <= len(digits) <= 19
        and len(set(digits)) > 1
        and card_network(digits) is not None
        and luhn_valid(digits)
    )


def _redact_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def _redact_tail(value: str, keep: int) -> str:
    digits = re.sub(r"\D", "", value)
    return "*" * (len(digits) - keep) + digits[-keep:]


def _version_context(text: str, start: int) -> bool:
    match = _PRODUCT_BEFORE.search(text[max(0, start - 40) : start])
    if not match:
        return False
    return match.group(2) == "/" or match.group(1).lower() in _VERSION_WORDS


def _ips(text: str) -> list[Detection]:
    found = []
    whole = text.strip()
    for match in _IPV4.finditer(text):
        address = ipaddress.IPv4Address(match.group())
        if address.is_loopback or address.is_unspecified:
            continue
        if match.group() != whole and _version_context(text, match.start()):
            continue
        first, second, *_ = match.group().split(".")
        found.append(Detection(IP, "ipv4", f"{first}.{second}.x.x", match.span()))
    for match in _IPV6.finditer(text):
        try:
            address = ipaddress.IPv6Address(match.group().split("%", 1)[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_unspecified:
            continue
        found.append(Detection(IP, "ipv6", f"{address.exploded[:9]}:x", match.span()))
    return found


def _phones(text: str, taken: list[tuple[int, int]]) -> list[Detection]:
    found = []
    for match in _PHONE_CANDIDATE.finditer(text):
        if _DATE_OR_TIME.search(match.group()) or any(
            s < match.end() and match.start() < e for s, e in taken
        ):
            continue
        import phonenumbers

        try:
            number = phonenumbers.parse(match.group(), PHONE_REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            found.append(Detection(PHONE, "phone", _redact_tail(match.group(), 2), match.span()))
    return found


@functools.cache
def _secret_plugins() -> tuple:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    left_out = {"IPPublicDetector", "ArtifactoryDetector"}
    classes = get_mapping_from_secret_type_to_class().values()
    return tuple(
        cls()
        for cls in sorted(classes, key=lambda c: c.__name__)
        if issubclass(cls, RegexBasedDetector) and cls.__name__ not in left_out
    )


@functools.cache
def _keyword_detector():
    from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector

    return KeywordDetector(), re.compile("|".join(DENYLIST), re.IGNORECASE)


def secret_plugin_names() -> list[str]:
    """The detect-secrets plugins in use (for the report's method section)."""
    return [type(plugin).__name__ for plugin in _secret_plugins()] + ["KeywordDetector (field names)"]


def _secrets(text: str) -> list[Detection]:
    found = []
    for plugin in _secret_plugins():
        for secret in plugin.analyze_string(text):
            found.append(Detection(SECRET, plugin.secret_type, f"{plugin.secret_type} ({secret[:4]}...)"))
    return found


def detect_value(text: str) -> list[Detection]:
    """Personal data and secrets in one string value."""
    if _BENIGN.fullmatch(text):
        return []
    found = [Detection(EMAIL, "email", _redact_email(m.group()), m.span()) for m in _EMAIL.finditer(text)]
    found += _ips(text)
    for match in _CARD.finditer(text):
        if is_payment_card(match.group()):
            found.append(Detection(CARD, "card", _redact_tail(match.group(), 4), match.span()))
    found += _phones(text, [d.span for d in found])
    found += _secrets(text)
    return found


def detect_card_number(number: int) -> list[Detection]:
    """A payment card number stored as a number (only card numbers are long enough to matter)."""
    text = str(abs(number))
    return [Detection(CARD, "card", _redact_tail(text, 4))] if is_payment_card(text) else []


def detect_field(field: str, value: str) -> list[Detection]:
    """What a value means because of the field it sits in: raw identifiers and credential fields."""
    name = field.lower()
    found = []
    raw = value.strip()
    if name in IDENTIFIER_FIELDS and raw and raw.lower() not in _PLACEHOLDERS and not _PSEUDONYM.match(raw):
        found.append(Detection(IDENTIFIER, name, f"{name}={value[:1]}***"))
    detector, keywords = _keyword_detector()
    if keywords.search(name) and raw:
        line = f'"{field}": "{value}"'
        for _secret in detector.analyze_string(line):
            found.append(
                Detection(SECRET, detector.secret_type, f"{detector.secret_type} in field {field!r}")
            )
            break
    return found
