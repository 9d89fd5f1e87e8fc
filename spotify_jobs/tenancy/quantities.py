"""Kubernetes resource quantities as numbers, for quota arithmetic."""

from __future__ import annotations

import re

_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, "": 1 / (1024 * 1024)}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([A-Za-z]*)$")


def cpu_millicores(quantity: str | int) -> int:
    """'500m' -> 500, '2' -> 2000."""
    match = _QUANTITY.match(str(quantity))
    if not match or match.group(2) not in ("", "m"):
        raise ValueError(f"not a CPU quantity: {quantity!r} (use e.g. '500m' or '2')")
    value = float(match.group(1))
    return int(value if match.group(2) == "m" else value * 1000)


def memory_mib(quantity: str | int) -> float:
    """'512Mi' -> 512, '4Gi' -> 4096 (binary units only, as the platform writes them)."""
    match = _QUANTITY.match(str(quantity))
    if not match or match.group(2) not in _MEMORY_UNITS:
        raise ValueError(f"not a memory quantity: {quantity!r} (use e.g. '512Mi' or '4Gi')")
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2)]
