#!/usr/bin/env bash
# Installs what the local stack and the tests need into a project-local virtualenv (.venv)
# and node_modules under infra/peers. Idempotent: a stamp file records what was installed.
# `bootstrap.sh browser` (what infra/test.sh runs) also installs Debian's chromium for the
# browser tests when /usr/bin/chromium is missing; `make dev` does not need it.
set -euo pipefail
# Playwright (requirements.txt) drives Debian's chromium; it must never fetch a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha"
want="$(sha256sum "$root/infra/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing pinned Python tools into .venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/infra/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
# checkov cannot share .venv with aws-sam-cli (requirements-checkov.txt says why).
checkov_venv="$venv/checkov"
checkov_want="$(sha256sum "$root/infra/requirements-checkov.txt" | cut -d' ' -f1)"
if [ "$(cat "$checkov_venv/.requirements.sha" 2>/dev/null)" != "$checkov_want" ]; then
  echo "bootstrap: installing pinned checkov into .venv/checkov" >&2
  [ -x "$checkov_venv/bin/python" ] || python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/infra/requirements-checkov.txt" >&2
  echo "$checkov_want" > "$checkov_venv/.requirements.sha"
fi
peers="$root/infra/peers"
if [ -f "$peers/package.json" ] && [ ! -d "$peers/node_modules/stripe" ]; then
  echo "bootstrap: installing Node peers (npm ci)" >&2
  (cd "$peers" && npm ci --silent --no-audit --no-fund >&2)
fi
if [ "${1:-}" = "browser" ] && [ ! -x /usr/bin/chromium ]; then
  # Debian's build, driven by Playwright through executable_path: Playwright's own browser
  # downloads are never used (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, no `playwright install`).
  echo "bootstrap: installing chromium (apt-get) for the browser tests" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: chromium is missing and installing it needs root: apt-get install chromium" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
