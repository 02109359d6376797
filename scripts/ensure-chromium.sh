#!/usr/bin/env bash
# tests/test_web_page.py drives Debian's Chromium headless through Playwright (never a
# browser download of Playwright's own): install it with apt-get when it is missing (needs
# root, as on CI machines), with a colour emoji font so the page's screenshot shows the
# animal example's groups. Quick when both are there.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi 'Noto Color Emoji'; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji fontconfig >/dev/null
fi
