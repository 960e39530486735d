"""The project's one fake Stripe, for the Python suites: starts `local-stack fake-stripe`
(shared/testing/src/fake_stripe_server/, the Rust tests' fake Stripe served on its own)
on a free loopback port and stops it; reads what it received and tells it what Stripe holds
through its control API under `/_fake/` (docs/testing.md, "The fake Stripe").

Every request under /v1/ goes through Stripe's own parameter definitions in that server
(STRIPE_PARAM_DEFINITIONS and STRIPE_CHECK_LOG are passed on, as infra/test.sh sets them).
"""
import json
import os
import subprocess
import urllib.request
from pathlib import Path

from loopback import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


class FakeStripe:
    def __init__(self, by, tag, prices=None, checkout_delay=0.0):
        """`by` names the suite in the coverage log; `tag` goes into the ids it makes
        (`cs_test_<tag>_1_…`); `prices` (plan → price id) price previews from the catalog;
        creating a Checkout Session takes `checkout_delay` seconds."""
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        cmd = [str(TARGET / "debug" / "local-stack"), "fake-stripe", "--port", str(port), "--by", by, "--tag", tag,
               "--checkout-delay-ms", str(int(checkout_delay * 1000)),
               "--prices", ",".join(f"{plan}={price}" for plan, price in (prices or {}).items())]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
        if not wait_for(port, 30):
            self.stop()
            raise RuntimeError(f"the fake Stripe did not start on {self.base}")

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=15) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def requests(self, method=None, path=None, prefix=None):
        """What it received under /v1/, oldest first: method, path, query, idempotency_key,
        form (name → value) and refused (Stripe's error body, or None)."""
        return [r for r in self._call("GET", "/_fake/requests")
                if (method is None or r["method"] == method) and (path is None or r["path"] == path)
                and (prefix is None or r["path"].startswith(prefix))]

    def calls(self, path):
        """(Idempotency-Key, form) of every POST to `path` that Stripe's definitions took."""
        return [(r["idempotency_key"], r["form"]) for r in self.requests("POST", path) if not r["refused"]]

    @property
    def refused(self):
        """What Stripe's own definitions refused: (method, path, error)."""
        return [(r["method"], r["path"], r["refused"]) for r in self.requests() if r["refused"]]

    def put_subscription(self, subscription):
        """Stripe now holds `subscription` (GET /v1/subscriptions/{id} answers it)."""
        self._call("POST", "/_fake/subscriptions", subscription)

    def subscription(self, sid):
        """The subscription as Stripe holds it now (after the stack's updates)."""
        return self._call("GET", f"/_fake/subscriptions/{sid}")

    def add_invoice(self, invoice):
        """One more of a customer's invoices, as GET /v1/invoices lists them."""
        self._call("POST", "/_fake/invoices", invoice)

    def event(self, kind, obj, **envelope):
        """A Stripe event of `kind` carrying `obj`, built by the project's one event builder
        (billing_testing::event); `envelope` may name its id and created."""
        return self._call("POST", "/_fake/events", dict(envelope, type=kind, object=obj))

    def stop_and_check(self, report=True):
        """Stops it and says whether every request it received passed Stripe's own definitions:
        prints `ok   every request …` or `FAIL … refused …` and returns True or False; with
        `report=False`, returns a function that prints and returns that later (for a suite
        that prints its other findings first)."""
        refused = self.refused
        self.stop()

        def check():
            print(f"{'ok  ' if not refused else 'FAIL'} every request to the fake Stripe passed Stripe's own "
                  "definitions" + (f": refused {refused[:3]}" if refused else ""))
            return not refused
        return check() if report else check

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
