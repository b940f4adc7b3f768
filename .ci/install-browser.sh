#!/usr/bin/env bash
# Debian's Chromium, for the player view's browser tests (tests/view/test_player_browser.py).
# Idempotent and quiet: nothing happens when chromium is already there. The tests drive this
# browser through Playwright's executable_path; never run `playwright install` (it downloads a
# browser of its own, which a closed network refuses). Under CI=true the browser tests fail,
# rather than skip, when chromium is missing, so this must run before them.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
echo "installed: $(chromium --version 2>/dev/null)"
