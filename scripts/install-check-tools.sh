#!/usr/bin/env bash
# Installs the tools that scripts/check-deploy.sh needs, on Debian 12
# (bookworm) as root, with no network but the Debian and PyPI registries:
#
#   docker-compose       Debian `docker-compose` (1.29, Python): `config -q` parses
#                        docker-compose.yml without a Docker engine
#   kubectl              Debian `kubernetes-client` (1.20, embedded kustomize v2.0):
#                        `kubectl kustomize DIR` renders offline. A kubectl that is
#                        already on PATH (e.g. Google's `kubectl` package, which owns
#                        the same /usr/bin/kubectl path) is used as it is.
#   promtool             Debian `prometheus`
#   kubernetes-validate  PyPI, with the Kubernetes JSON schemas bundled
#   jsonschema, PyYAML   PyPI (for the compose, KEDA, prometheus-operator and Grafana checks)
#
# The PyPI packages go into `python3` with `python3 -m pip install` when that
# interpreter accepts it (pyenv, a venv). Debian's own python3 is "externally
# managed" (PEP 668): there they go into a venv at $DOCFLOW_CHECK_VENV instead
# (default /opt/docflow-check-tools/venv), so that the newer jsonschema they
# need does not shadow the python3-jsonschema Debian's docker-compose runs on.
# check-deploy.sh uses that venv's python when it exists.
#
# Idempotent: every tool already present is skipped, `apt-get update` runs only
# when a Debian package is missing, and a run with everything installed takes
# well under a second. Quiet on success; on failure it prints the installer's
# output and exits non-zero.
set -euo pipefail

VENV=${DOCFLOW_CHECK_VENV:-/opt/docflow-check-tools/venv}
log=$(mktemp)
created_policy_rc=false
cleanup() {
    if $created_policy_rc; then rm -f /usr/sbin/policy-rc.d; fi
    rm -f "$log"
}
trap cleanup EXIT

fail() {
    echo "install-check-tools: $*" >&2
    if [ -s "$log" ]; then tail -n 40 "$log" >&2; fi
    exit 1
}

# --- Debian packages -------------------------------------------------------
apt_pkgs=()
command -v docker-compose >/dev/null 2>&1 || apt_pkgs+=(docker-compose)
# `kubectl kustomize` exists from kubectl 1.14 on; any kubectl that has it will do.
if ! command -v kubectl >/dev/null 2>&1; then
    apt_pkgs+=(kubernetes-client)
fi
command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
externally_managed() {
    python3 -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'
}
py_mods_ok() { "$1" -c 'import kubernetes_validate, jsonschema, yaml' >/dev/null 2>&1; }
use_venv=false
if ! command -v python3 >/dev/null 2>&1; then
    apt_pkgs+=(python3 python3-venv)   # Debian's python3 is externally managed
    use_venv=true
elif [ -x "$VENV/bin/python" ] || externally_managed; then
    use_venv=true
    if [ ! -x "$VENV/bin/python" ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_pkgs+=(python3-venv)
    fi
elif ! py_mods_ok python3 && ! python3 -m pip --version >/dev/null 2>&1; then
    apt_pkgs+=(python3-pip)
fi

if [ ${#apt_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || fail "missing ${apt_pkgs[*]}; run as root to install them"
    export DEBIAN_FRONTEND=noninteractive
    # Packages such as `prometheus` ship a service that their postinst tries to
    # start. There is no init system to start it with on a build or CI box, so
    # tell invoke-rc.d not to (exit 101 = "action forbidden"), for this install only.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy_rc=true
    fi
    apt-get update -qq >"$log" 2>&1 || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${apt_pkgs[@]}" >>"$log" 2>&1 || fail "apt-get install ${apt_pkgs[*]} failed"
    hash -r
fi

for tool in docker-compose kubectl promtool python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is still missing after installing ${apt_pkgs[*]:-nothing}"
done

# --- Python packages -------------------------------------------------------
# check-deploy.sh runs kubernetes-validate as `$PY -m kubernetes_validate`, so
# only the modules have to be importable (no PATH or pyenv shim is involved).
if $use_venv; then
    PY=$VENV/bin/python
    if [ ! -x "$PY" ]; then
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv "$VENV" >"$log" 2>&1 || fail "python3 -m venv $VENV failed"
    fi
else
    PY=python3
fi
if ! py_mods_ok "$PY"; then
    pip_flags=(--quiet --disable-pip-version-check --no-input)
    # pip >= 22.1 knows --root-user-action; older ones would reject it.
    if "$PY" -m pip install --help 2>/dev/null | grep -q -- '--root-user-action'; then
        pip_flags+=(--root-user-action=ignore)
    fi
    "$PY" -m pip install "${pip_flags[@]}" kubernetes-validate jsonschema PyYAML >"$log" 2>&1 \
        || fail "$PY -m pip install kubernetes-validate jsonschema PyYAML failed"
    py_mods_ok "$PY" || fail "kubernetes_validate, jsonschema or yaml still not importable by $PY"
fi
