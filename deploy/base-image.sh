#!/usr/bin/env bash
# Builds the local base image `localhost/python-base:3.11` without any image registry: a minimal
# Debian (the release and mirrors apt is already configured with) with python3, the host's CA
# certificates and a venv at /opt/venv first on PATH, so deploy/Dockerfile (written for
# python:3.11-slim, where `pip install` goes to the system Python) builds on it unchanged.
#
#   deploy/base-image.sh [IMAGE]        (root; CONTAINERS_CONF=deploy/containers.conf)
#
# Debian bookworm's python3 is 3.11, the version the project requires.
set -euo pipefail
IMAGE="${1:-localhost/python-base:3.11}"
SOURCES="${APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}"
CERTS=/usr/local/share/ca-certificates

if [[ ! -r "$SOURCES" ]]; then
    echo "base-image: $SOURCES is missing; set APT_SOURCES to a deb822 .sources file." >&2
    exit 2
fi

# One `deb URI SUITE COMPONENTS` line per suite of each deb822 stanza (Types: deb).
mapfile -t MIRRORS < <(awk '
    function flush() { if (types ~ /(^| )deb( |$)/) { n = split(suites, s, " ");
                         for (i = 1; i <= n; i++) print "deb " uris " " s[i] " " comps }
                       types = uris = suites = comps = "" }
    /^[ \t]*$/ { flush(); next }
    /^Types:/      { sub(/^Types:[ \t]*/, "");      types = $0 }
    /^URIs:/       { sub(/^URIs:[ \t]*/, "");       uris = $0 }
    /^Suites:/     { sub(/^Suites:[ \t]*/, "");     suites = $0 }
    /^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
    END { flush() }' "$SOURCES")
if [[ ${#MIRRORS[@]} -eq 0 ]]; then
    echo "base-image: no 'Types: deb' entry in $SOURCES." >&2
    exit 2
fi
SUITE=$(awk '{print $3; exit}' <<<"${MIRRORS[0]}")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/certs"
# HTTPS to the package index may be inspected by a local CA: the image trusts what the host trusts.
if compgen -G "$CERTS/*.crt" >/dev/null; then
    cp "$CERTS"/*.crt "$WORK/certs/"
fi

echo "base-image: debootstrapping $SUITE from ${#MIRRORS[@]} source(s) into $IMAGE"
mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
    --include=ca-certificates,python3,python3-venv \
    --customize-hook="mkdir -p \"\$1$CERTS\"" \
    --customize-hook="sync-in $WORK/certs $CERTS" \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    --customize-hook='chroot "$1" python3 -m venv /opt/venv' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$WORK/rootfs.tar" "${MIRRORS[@]}"

podman import --quiet \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV VIRTUAL_ENV=/opt/venv' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "base-image: $IMAGE ready"
