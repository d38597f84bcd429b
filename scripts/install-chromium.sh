#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "make browser: Chromium is missing; run as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
  fi
fi
${SUDO:-} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq chromium >/dev/null
echo "installed $(/usr/bin/chromium --version)"
