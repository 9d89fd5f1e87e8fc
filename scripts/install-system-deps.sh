#!/usr/bin/env bash
# Install the system tools the tests need, only when missing: PostgreSQL 15 (a private cluster backs the
# production-instance and run-queue tests), the Prometheus Pushgateway (a real one is
# started on 127.0.0.1 by the tests) and promtool (checks deploy/monitoring alert rules; Debian ships it in
# the `prometheus` package). Idempotent: when all are present it exits at once without touching apt.
#
# Usage: scripts/install-system-deps.sh          (as root, or with sudo available; Debian/Ubuntu)
#        scripts/install-system-deps.sh --check  (exit 1 and name what is missing; installs nothing)
set -euo pipefail

# A tool name (looked up on PATH) or an absolute path, and the Debian package that provides it.
declare -A PACKAGE_OF=(
    [prometheus-pushgateway]=prometheus-pushgateway
    [promtool]=prometheus
    [/usr/lib/postgresql/15/bin/pg_ctl]=postgresql-15
)

missing=()
for tool in "${!PACKAGE_OF[@]}"; do
    if [[ "$tool" == /* ]]; then
        [ -x "$tool" ] || missing+=("${PACKAGE_OF[$tool]}")
    else
        command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "${1:-}" = "--check" ]; then
    echo "missing system packages: ${missing[*]}" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install these packages yourself: ${missing[*]}" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-system-deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    as_root=(sudo)
fi

# Only refresh the package lists when they are absent (fresh containers ship without them).
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]; then
    "${as_root[@]}" apt-get update -qq
fi
# No systemd in containers: policy-rc.d 101 stops the packages' postinst from starting services.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod +x "$policy"
    trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
