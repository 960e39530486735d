"""The HTTP API against its OpenAPI document, and every response scanned for secrets.

usage: python infra/api_contract.py   (make test runs it; needs `cargo build -p local-stack`)

Starts, all on 127.0.0.1 and stopped before it returns:
- a fake Stripe answering with the official fixtures (checkout and portal sessions, an empty
  events list), so that checkout, portal and reconcile answer as with a configured key;
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
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from loopback import free_port, wait_for
import stripe_params

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
FIXTURES = json.loads((ROOT / "shared" / "testdata" / "stripe" / "fixtures3.json").read_text())["resources"]
PLANS = [p["id"] for p in json.loads((ROOT / "shared" / "src" / "domain" / "catalog.json").read_text())["plans"]]
MAX_EXAMPLES = os.environ.get("CONTRACT_MAX_EXAMPLES", "25")
TIME_LIMIT = 240  # seconds for the whole schemathesis run


# Requests the fake Stripe refused by Stripe's definitions: the flows here send none.
REFUSED = []


def fake_stripe():
    """Stripe's API for the calls the functions make, answering with the official fixtures."""
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refused(self, raw=""):
            """Stripe's own definitions first (infra/stripe_params.py): what Stripe refuses, so does this."""
            refusal = stripe_params.check_request("infra/api_contract.py", self.command, self.path, raw)
            if refusal:
                REFUSED.append((self.command, self.path, refusal[1]))
                self.answer(*refusal)
            return refusal

        def do_GET(self):
            path = self.path.split("?")[0]
            if path in ("/v1/", "/v1"):
                return self.answer(200, {})
            if self.refused():
                return
            if path == "/v1/events" or path.endswith("/line_items"):
                return self.answer(200, {"object": "list", "data": [], "has_more": False, "url": path})
            self.answer(404, {"error": {"type": "invalid_request_error", "message": "No such object"}})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            if self.refused(raw):
                return
            counter["n"] += 1
            if self.path == "/v1/checkout/sessions":
                session = dict(FIXTURES["checkout.session"])
                session.update(id=f"cs_test_contract_{counter['n']}", status="open",
                               url=f"https://checkout.stripe.com/c/pay/cs_test_contract_{counter['n']}")
                return self.answer(200, session)
            expire = re.fullmatch(r"/v1/checkout/sessions/(cs_test_contract_\d+)/expire", self.path)
            if expire:
                session = dict(FIXTURES["checkout.session"])
                session.update(id=expire.group(1), status="expired", url=None)
                return self.answer(200, session)
            if self.path == "/v1/billing_portal/sessions":
                return self.answer(200, FIXTURES["billing_portal.session"])
            if self.path == "/v1/payment_intents":
                intent = dict(FIXTURES["payment_intent"])
                pi = f"pi_test_contract_{counter['n']}"
                intent.update(id=pi, amount=int(form.get("amount", "0")), currency=form.get("currency", "usd"),
                              client_secret=f"{pi}_secret_contract", status="requires_payment_method",
                              metadata={k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")})
                return self.answer(200, intent)
            if self.path == "/v1/refunds":
                refund = dict(FIXTURES["refund"])
                refund.update(id=f"re_test_contract_{counter['n']}", amount=int(form.get("amount", "0")),
                              payment_intent=form.get("payment_intent"))
                return self.answer(200, refund)
            self.answer(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


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
    stripe = fake_stripe()
    port = free_port()
    env = dict(os.environ, **configured, PORT=str(port),
               STRIPE_API_BASE=f"http://127.0.0.1:{stripe.server_address[1]}",
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
        stripe.shutdown()
    logs = log_path.read_text()
    leaked = [name for name, value in configured.items() if value in logs]
    logs_ok = len(logs) > 0 and not leaked
    print(f"{'ok  ' if logs_ok else 'FAIL'} the stack's logs ({len(logs.splitlines())} lines) carry no configured secret"
          + (f": found {leaked}" if leaked else ""))
    results.append(logs_ok)
    print(f"{'ok  ' if not REFUSED else 'FAIL'} every request to the fake Stripe passed Stripe's own definitions"
          + (f": refused {REFUSED[:3]}" if REFUSED else ""))
    results.append(not REFUSED)
    passed = sum(results)
    if passed == len(results):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"     (requests, responses and logs kept in {work})")
    print(f"api contract: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
