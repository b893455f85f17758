#!/usr/bin/env bash
# CI's deployment step (.ci/run): build the base image and the product image with podman, then run
# the deployment smoke test (deploy/smoke.py). Installs what is missing: podman, runc, mmdebstrap
# and iptables from apt, podman-compose 1.x from PyPI in a venv of its own (.tools/). Where no
# engine can run (not root, no apt, podman unusable) it says so in one line and exits 0.
#
#   deploy/ci.sh                      (root; DIALER_CI_REBUILD_BASE=1 rebuilds the base image)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE_IMAGE=localhost/python-base:3.11
IMAGE=localhost/campaign-dialer:ci
TOOLS=$ROOT/.tools
export CONTAINERS_CONF=$ROOT/deploy/containers.conf

skip() { echo "deploy: skipped: $*"; exit 0; }
took() { echo "deploy: $1 took $(( $(date +%s) - $2 )) s"; }
T0=$(date +%s)

# The static checks need no engine: hadolint, the compose file, the Kubernetes manifests and the
# Helm values against their schemas (tools in a venv of their own under .tools/).
DIALER_CHECK_CACHE=$TOOLS/static-checks deploy/check-static.sh
took "static checks" "$T0"

[[ $(id -u) -eq 0 ]] || skip "building images needs root here (rootful podman); run as root to build and smoke-test the image."
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null \
        || ! command -v iptables >/dev/null; then
    command -v apt-get >/dev/null || skip "podman is not installed and there is no apt-get to install it."
    T=$(date +%s)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc mmdebstrap iptables >/dev/null
    took "installing podman" "$T"
fi
podman info >/dev/null 2>&1 || skip "podman is installed but cannot run here ($(podman info 2>&1 | tail -1))."

if [[ ! -x $TOOLS/podman-compose/bin/podman-compose ]]; then
    python3 -m venv "$TOOLS/podman-compose"
    "$TOOLS/podman-compose/bin/pip" install --quiet --disable-pip-version-check 'podman-compose>=1.1,<2'
fi
# The smoke test's own libraries (moto's S3 server, aiosmtpd, boto3, psycopg) are the test extras'.
make --no-print-directory install-test >/dev/null

if [[ ${DIALER_CI_REBUILD_BASE:-0} == 1 ]] || ! podman image exists "$BASE_IMAGE"; then
    T=$(date +%s)
    deploy/base-image.sh "$BASE_IMAGE"
    took "base image" "$T"
fi

T=$(date +%s)
# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
podman build --quiet --format docker --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -f deploy/Dockerfile -t "$IMAGE" . >/dev/null
took "image build" "$T"

T=$(date +%s)
timeout -k 60 420 .venv/bin/python deploy/smoke.py --image "$IMAGE" --compose "$TOOLS/podman-compose/bin/podman-compose"
took "smoke test" "$T"
# Images from earlier builds of the same tag, now untagged.
podman image prune -f >/dev/null
took "deploy step" "$T0"
