#!/usr/bin/env bash
# Check the alerting rules and run their unit tests: `promtool check rules` + `promtool test rules`.
# promtool comes from Debian's `prometheus` package (about 20 MB to download, 30 s; the server it
# also installs is not started), installed here when missing and when we may (root).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "promtool is missing: install Debian's prometheus package (apt-get install prometheus)" >&2
        exit 1
    fi
    # Another apt may be running (CI installs chromium too): wait for its lock, bounded.
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends prometheus >/dev/null
fi
promtool check rules alerts.yaml
promtool test rules alerts.test.yaml
