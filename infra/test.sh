#!/usr/bin/env bash
# The whole test suite (README and docs/testing.md: `make test`): static checks, then every test against one
# moto_server started here on a free loopback port and stopped on exit, then the browser
# tests (Debian's chromium, installed by `bootstrap.sh browser` when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/bootstrap.sh browser

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== the core's layout rules (infra/layout_check.py)"
layout_out="$(.venv/bin/python infra/layout_check.py)" || { echo "$layout_out"; exit 1; }
echo "$layout_out"
echo "== the layout check catches a layer pointing the wrong way (infra/layout_check.py --self-test)"
layout_self_test="$(.venv/bin/python infra/layout_check.py --self-test)" || { echo "$layout_self_test"; exit 1; }
echo "$layout_self_test"
echo "== every relative link in README.md and docs/ (infra/link_check.py)"
.venv/bin/python infra/link_check.py
echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
echo "== cfn-lint infra/examples (the snippets docs/ quotes)"
.venv/bin/cfn-lint infra/examples/*.yaml
echo "== sam validate --lint"
# Telemetry off: the SAM CLI would otherwise try to report the run.
SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint --region us-east-1 --template-file template.yaml
echo "== checkov template.yaml (every finding fixed or waived next to its resource)"
# --skip-download: no network here, and the built-in checks are all that is used.
.venv/checkov/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
infra/moto_server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/billing-moto-$port.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
export MOTO_ENDPOINT="http://127.0.0.1:$port"
# Stripe's own parameter definitions (from the stripe package), generated once for every fake
# Stripe of this run; each checked request is logged for the coverage check at the end.
export STRIPE_PARAM_DEFINITIONS="${TMPDIR:-/tmp}/billing-stripe-params-$$.json"
export STRIPE_CHECK_LOG="${TMPDIR:-/tmp}/billing-stripe-checks-$$.log"
: > "$STRIPE_CHECK_LOG"
.venv/bin/python infra/stripe_params.py --out "$STRIPE_PARAM_DEFINITIONS"
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$STRIPE_PARAM_DEFINITIONS" "$STRIPE_CHECK_LOG"' EXIT
echo "== cargo test (moto on $MOTO_ENDPOINT)"
set +e
printf '%s\n%s\n' "$layout_out" "$layout_self_test" > "${TMPDIR:-/tmp}/billing-test-$$.log"
cargo test --workspace --quiet 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
status=${PIPESTATUS[0]}
set -e
echo "== every sample in events/ through the Lambda runtime emulator (cargo lambda watch)"
cargo build --quiet -p local-stack
set +e
.venv/bin/python infra/invoke_samples.py "$MOTO_ENDPOINT" 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
emulator_status=${PIPESTATUS[0]}
set -e
[ "$emulator_status" -eq 0 ] || status=1
echo "== openapi.yaml against the local stack (schemathesis), every response and log scanned for secrets"
set +e
.venv/bin/python infra/api_contract.py 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
contract_status=${PIPESTATUS[0]}
set -e
[ "$contract_status" -eq 0 ] || status=1
echo "== billing.js and the demo pages in headless chromium (infra/browser_test.py)"
set +e
.venv/bin/python infra/browser_test.py 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
browser_status=${PIPESTATUS[0]}
set -e
[ "$browser_status" -eq 0 ] || status=1
echo "== the operator console in headless chromium (infra/console_test.py)"
set +e
.venv/bin/python infra/console_test.py 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
console_status=${PIPESTATUS[0]}
set -e
[ "$console_status" -eq 0 ] || status=1
echo "== the strict fake Stripe: its checker, and every endpoint the project calls sent through it"
set +e
{ .venv/bin/python infra/stripe_params.py --self-test && echo "stripe checker self-test: 1 passed, 0 failed" \
    || echo "stripe checker self-test: 0 passed, 1 failed"; } 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
.venv/bin/python infra/stripe_params.py --coverage "$STRIPE_CHECK_LOG" 2>&1 | tee -a "${TMPDIR:-/tmp}/billing-test-$$.log"
coverage_status=${PIPESTATUS[0]}
set -e
[ "$coverage_status" -eq 0 ] || status=1
grep -q "stripe checker self-test: 1 passed" "${TMPDIR:-/tmp}/billing-test-$$.log" || status=1
# Only summary lines count (cargo's "test result:" lines and each suite's "<name>: N passed,
# M failed" line), so an id or a message that happens to hold "5 failed" changes no total.
summaries=$(grep -E '^test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed|^[A-Za-z][A-Za-z0-9 ._/-]*: [0-9]+ passed, [0-9]+ failed$' "${TMPDIR:-/tmp}/billing-test-$$.log")
passed=$(printf '%s\n' "$summaries" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(printf '%s\n' "$summaries" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
rm -f "${TMPDIR:-/tmp}/billing-test-$$.log"
echo "total: $passed passed, $failed failed"
exit "$status"
