#!/usr/bin/env bash
# Portal tests drive Debian's Chromium through its matching ChromeDriver. Install them when missing
# (root with apt, as on the project's machines and CI); otherwise say how, and let the tests skip.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver for the portal tests ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "note: /usr/bin/chromium or /usr/bin/chromedriver is missing; portal (browser) tests will skip." >&2
  echo "      install them with: sudo apt-get install chromium chromium-driver" >&2
fi
