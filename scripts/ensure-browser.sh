#!/usr/bin/env bash
# Installs the headless browser the console's browser tests drive: Debian's
# chromium and its chromedriver, when either is missing. Called from the
# Makefile's `test` target (and so from .ci/run) before nextest.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi
echo "installing chromium and chromium-driver (Debian packages)"
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: readable text in screenshots on a machine with no fonts.
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium && test -x /usr/bin/chromedriver
echo "chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}') ready"
