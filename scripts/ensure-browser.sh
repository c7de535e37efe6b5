#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the dashboard's browser tests (Playwright drives
# /usr/bin/chromium). Idempotent: installs only what is missing, quietly.
set -euo pipefail
missing=()
for package in chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "== installing ${missing[*]} for the browser tests"
log=$(mktemp)
if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
         --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log"
  exit 1
fi
rm -f "$log"
