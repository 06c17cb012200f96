#!/usr/bin/env bash
# Installs the local blob-store servers the cloud blob-store tests start:
# moto's S3 server (PyPI, into a venv) and Azurite's blob service (npm), and
# openssl if it is missing.
# Called from the Makefile's `test` target (and so from .ci/run) before
# nextest; quick when both are already there. The tests find them in
# $DOCFLOW_BLOB_SERVERS_DIR (default ~/.cache/docflow/blob-servers), the
# same default crates/test-support/src/blob_servers.rs uses.
set -euo pipefail

# Pinned: the tests rely on their behaviour. Azurite 3.36 and later need
# Node.js 21+, and Debian's Node.js here is 20.
MOTO_VERSION=5.2.5
AZURITE_VERSION=3.35.0

DIR=${DOCFLOW_BLOB_SERVERS_DIR:-$HOME/.cache/docflow/blob-servers}
STAMP="$DIR/installed"
WANT="moto=$MOTO_VERSION azurite=$AZURITE_VERSION"

# The https S3 test makes its CA and certificate with the openssl command line.
if ! command -v openssl >/dev/null; then
    echo "installing openssl (Debian package)"
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$DIR/venv/bin/moto_server" \
      && -x "$DIR/node/node_modules/.bin/azurite-blob" ]]; then
    exit 0
fi

mkdir -p "$DIR"
rm -f "$STAMP"

if [[ ! -x "$DIR/venv/bin/moto_server" ]] || ! "$DIR/venv/bin/python" -c \
        "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
    echo "installing moto[server] $MOTO_VERSION into $DIR/venv"
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

if [[ ! -x "$DIR/node/node_modules/.bin/azurite-blob" ]] || [[ "$(node -p \
        "require('$DIR/node/node_modules/azurite/package.json').version" 2>/dev/null)" != "$AZURITE_VERSION" ]]; then
    command -v npm >/dev/null || { echo "npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
    echo "installing azurite $AZURITE_VERSION into $DIR/node"
    mkdir -p "$DIR/node"
    npm install --silent --no-audit --no-fund --prefix "$DIR/node" "azurite@$AZURITE_VERSION" >/dev/null
fi

test -x "$DIR/venv/bin/moto_server"
test -x "$DIR/node/node_modules/.bin/azurite-blob"
echo "$WANT" >"$STAMP"
echo "blob servers ready in $DIR ($WANT)"
