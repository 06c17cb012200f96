#!/usr/bin/env bash
# Renders prometheusrule.yaml (beside this script) from
# deploy/prometheus/alerts.yml, the one source of docflow's alert rules: a
# PrometheusRule's spec.groups is a rule file's `groups`, so the file's groups
# are copied in, indented under `spec:`, comments and all. kustomize has no
# generator for a custom resource, hence a committed rendering.
#
#   bash deploy/k8s/prometheus-operator/render-prometheusrule.sh          # rewrite it
#   bash deploy/k8s/prometheus-operator/render-prometheusrule.sh --check  # exit 1 if stale
#
# scripts/check-deploy.sh runs --check, and compares the rendered
# PrometheusRule's spec.groups with alerts.yml's groups after parsing both.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/../../prometheus/alerts.yml
out=$here/prometheusrule.yaml

# Everything from `groups:` on is copied, so nothing else may follow at the
# top level.
extra=$(sed -n '/^groups:/,$p' "$src" | sed -n '2,$p' | grep -E '^[^[:space:]#]' || true)
if ! grep -q '^groups:' "$src" || [ -n "$extra" ]; then
    echo "render-prometheusrule.sh: $src must end with its top-level groups: (found: ${extra:-no groups:})" >&2
    exit 1
fi

render() {
    cat <<'YAML'
# GENERATED from deploy/prometheus/alerts.yml by render-prometheusrule.sh;
# edit alerts.yml and run the script again (scripts/check-deploy.sh fails
# while this file is stale). alerts.yml's header lists the metrics the rules
# use and the service that exports each.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: docflow
  labels:
    app.kubernetes.io/name: docflow
spec:
YAML
    sed -n '/^groups:/,$p' "$src" | sed 's/^./  &/'
}

case "${1:-}" in
    --check)
        if ! render | cmp -s - "$out"; then
            echo "$out is stale: run bash ${BASH_SOURCE[0]}" >&2
            exit 1
        fi
        ;;
    "")
        render >"$out"
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac
