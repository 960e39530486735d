#!/usr/bin/env bash
# Installs what the local stack and the tests need into a project-local virtualenv (.venv)
# and node_modules under infra/peers. Idempotent: a stamp file records what was installed.
set -euo pipefail
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
peers="$root/infra/peers"
if [ -f "$peers/package.json" ] && [ ! -d "$peers/node_modules/stripe" ]; then
  echo "bootstrap: installing Node peers (npm ci)" >&2
  (cd "$peers" && npm ci --silent --no-audit --no-fund >&2)
fi
