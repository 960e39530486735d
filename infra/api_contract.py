"""The HTTP API against its OpenAPI document, and every response scanned for secrets.

usage: python infra/api_contract.py   (make test runs it; needs `cargo build -p local-stack`)

Starts, all on 127.0.0.1 and stopped before it returns:
- the project's one fake Stripe (`local-stack fake-stripe`, through infra/fake_stripe.py),
  answering with the official fixtures (checkout and portal sessions, an empty events list),
  so that checkout, portal and reconcile answer as with a configured key;
- `local-stack serve` (its own moto) with a Stripe key, a webhook secret, a JWT secret and a
  price for every plan, each a fresh random value;
then runs schemathesis (pinned in infra/requirements.txt) over every operation in
`openapi.yaml` with an operator's token, bounded in examples and time, with the checks: no
5xx, declared status codes, content types, headers (`Cache-Control: no-store`) and response
bodies. Finally it scans every recorded response, and the stack's logs, for the configured
secrets (and the responses for the price ids, which docs/api.md keeps private too).

Prints `api contract: N passed, M failed` (schemathesis conformance, the response scan, the
log scan) and exits 1 on any failure.
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopback import free_port, wait_for
from fake_stripe import FakeStripe

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PLANS = [p["id"] for p in json.loads((ROOT / "shared" / "src" / "domain" / "catalog.json").read_text())["plans"]]
MAX_EXAMPLES = os.environ.get("CONTRACT_MAX_EXAMPLES", "25")
TIME_LIMIT = 240  # seconds for the whole schemathesis run


def main():
    local_stack = TARGET / "debug" / "local-stack"
    if not local_stack.exists():
        print(f"FAIL {local_stack} is missing: run cargo build -p local-stack")
        return 1
    work = Path(tempfile.mkdtemp(prefix="billing-contract-"))
    configured = {
        "STRIPE_SECRET_KEY": f"sk_test_contract{secrets.token_hex(12)}",
        "STRIPE_WEBHOOK_SECRET": f"whsec_contract{secrets.token_hex(12)}",
        "LOCAL_JWT_SECRET": f"jwt-contract-{secrets.token_hex(12)}",
    }
    prices = {plan: f"price_contract{secrets.token_hex(6)}" for plan in PLANS}
    stripe = FakeStripe("infra/api_contract.py", "contract", prices)
    port = free_port()
    env = dict(os.environ, **configured, PORT=str(port),
               STRIPE_API_BASE=stripe.base,
               STRIPE_PRICES=",".join(f"{k}={v}" for k, v in prices.items()),
               PUBLIC_BASE_URL="https://app.example.com", RUST_LOG="info")
    env.pop("MOTO_ENDPOINT", None)
    log_path = work / "local-stack.log"
    stack = subprocess.Popen([str(local_stack), "serve"], cwd=ROOT, env=env, stdout=open(log_path, "w"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    results = []
    try:
        if not wait_for(port, 90):
            print(f"FAIL the local stack did not start:\n{log_path.read_text()[-2000:]}")
            return 1
        token = subprocess.run([str(local_stack), "token", "contract_operator", "--admin", "--service"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        cassette = work / "cassette.yaml"
        cmd = [str(VENV_BIN / "schemathesis"), "run", str(ROOT / "openapi.yaml"),
               "--url", f"http://127.0.0.1:{port}",
               "--header", f"Authorization: Bearer {token}",
               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                           "response_headers_conformance,response_schema_conformance,ignored_auth",
               "--phases", "examples,coverage,fuzzing",
               "--max-examples", MAX_EXAMPLES, "--seed", "7", "--request-timeout", "15",
               "--report", "vcr", "--report-vcr-path", str(cassette), "--output-sanitize", "false",
               "--no-color"]
        started = time.time()
        try:
            run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=TIME_LIMIT)
            out, ok = run.stdout + run.stderr, run.returncode == 0
        except subprocess.TimeoutExpired as e:
            out, ok = f"{e.stdout or ''}{e.stderr or ''}\nschemathesis ran over {TIME_LIMIT} s", False
        summary = [l for l in out.splitlines() if re.search(r"(test cases|operations?|Seed|passed|failed|error)", l, re.I)]
        print(f"{'ok  ' if ok else 'FAIL'} schemathesis over openapi.yaml ({time.time() - started:.0f} s):")
        for line in (summary[-6:] if ok and not os.environ.get("CONTRACT_VERBOSE") else out.splitlines()[-120:]):
            # schemathesis's own tallies must not add to the suite's `N passed` total.
            line = re.sub(r"\b(\d+) (passed|failed)", r"\1 cases \2", line)
            print(f"     | {line}")
        results.append(ok)

        recorded = cassette.read_text() if cassette.exists() else ""
        responses = recorded.count("response:")
        leaked = [name for name, value in list(configured.items()) + [(f"price of {k}", v) for k, v in prices.items()]
                  if value in recorded]
        scan_ok = responses > 0 and not leaked
        print(f"{'ok  ' if scan_ok else 'FAIL'} {responses} recorded responses carry no configured secret or price id"
              + (f": found {leaked}" if leaked else ""))
        results.append(scan_ok)
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        stripe_ok = stripe.stop_and_check(report=False)
    logs = log_path.read_text()
    leaked = [name for name, value in configured.items() if value in logs]
    logs_ok = len(logs) > 0 and not leaked
    print(f"{'ok  ' if logs_ok else 'FAIL'} the stack's logs ({len(logs.splitlines())} lines) carry no configured secret"
          + (f": found {leaked}" if leaked else ""))
    results.append(logs_ok)
    results.append(stripe_ok())
    passed = sum(results)
    if passed == len(results):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"     (requests, responses and logs kept in {work})")
    print(f"api contract: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
