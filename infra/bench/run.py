"""`make bench`: every figure docs/performance.md quotes, measured in one run, printed as one table.

usage: .venv/bin/python infra/bench/run.py   (make bench runs infra/bootstrap.sh first)

1. Intake CPU path: criterion (`infra/bench/benches/intake.rs`) for our verify+parse and full
   intake, and the floor (HMAC-SHA256 + serde_json alone); the official Stripe SDKs for Python
   and Node (`peer_python.py`, `peer_node.mjs`) verifying and parsing the same payloads.
2. Cold start, size and memory of every function, as built for release, against a hello-world
   `lambda_runtime` binary of the same profile: each binary runs under cargo-lambda's runtime
   emulator (`cargo lambda watch --only-lambda-apis`, loopback), with DynamoDB and SQS in moto.
3. Cost per event: DynamoDB and SQS requests and billed units from metered in-memory
   adapters (`bench cost`), priced with AWS's published on-demand prices.
4. Local-stack throughput at concurrency 32 against moto (`bench throughput`).

Everything listens on 127.0.0.1 only and is stopped before the script returns. Raw results
are kept in $CARGO_TARGET_DIR/bench/results.json.
"""
import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loopback import free_port, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
OUT = TARGET / "bench"
WEBHOOK_SECRET = "whsec_test_secret"  # billing_testing::TEST_WEBHOOK_SECRET
LOCAL_WEBHOOK_SECRET = "whsec_local_dev_secret"
# (binary, its sample in events/): the expected answer is events/expected.json's for that
# sample (for webhook.json, the re-signed case; the bench signs each delivery itself).
SAMPLES = [
    ("webhook", "webhook.json"),
    ("worker", "worker-sqs.json"),
    ("checkout-status", "checkout-status.json"),
    ("account", "account.json"),
    ("checkout", "checkout.json"),
    ("portal", "portal.json"),
    ("admin", "admin-events.json"),
    ("usage", "usage.json"),
    ("referral", "referral.json"),
]


def expected_status(function, sample):
    """events/expected.json's status for the first invocation of `sample` by `function`
    (None for the worker, whose answer is its batch item failures)."""
    manifest = json.loads((ROOT / "events" / "expected.json").read_text())["invocations"]
    case = next(c for c in manifest if c["function"] == function and c["sample"] == sample)
    return case.get("status")


FUNCTIONS = [(name, sample, expected_status(name, sample)) for name, sample in SAMPLES]
COLD_RUNS = 15
LOAD_INVOCATIONS = 300
THROUGHPUT_EVENTS = int(os.environ.get("BENCH_EVENTS", "200"))
THROUGHPUT_CONCURRENCY = 32

# AWS on-demand prices, us-east-1, as published (checked 2026-11):
PRICES = {
    "ddb_wru": (0.625, "DynamoDB on-demand: $0.625 per million write request units",
                "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "ddb_rru": (0.125, "DynamoDB on-demand: $0.125 per million read request units",
                "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "sqs_fifo": (0.50, "SQS FIFO: $0.50 per million requests (64 KB chunks)",
                 "https://aws.amazon.com/sqs/pricing/"),
    "lambda_req": (0.20, "Lambda: $0.20 per million requests",
                   "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gbs": (0.0000133334, "Lambda arm64: $0.0000133334 per GB-second (128 MB = 0.125 GB, billed per 1 ms)",
                   "https://aws.amazon.com/lambda/pricing/"),
    "apigw_http": (1.00, "API Gateway HTTP API: $1.00 per million requests",
                   "https://aws.amazon.com/api-gateway/pricing/"),
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("cwd", ROOT)
    done = subprocess.run(cmd, **kw)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed ({done.returncode})")
    return done


# ---------------------------------------------------------------------------------------
# builds


def build():
    started = time.time()
    packages = [arg for name, _, _ in FUNCTIONS for arg in ("-p", name)]
    log("building the functions for release (as deployed; slow on a cold cache)")
    run(["cargo", "build", "--release", "--quiet", *packages])
    log("building the bench tools (hello-world floor, bench tool, criterion bench)")
    run(["cargo", "build", "--release", "--quiet", "-p", "bench", "--bins"])
    run(["cargo", "bench", "--quiet", "-p", "bench", "--bench", "intake", "--no-run"],
        stderr=subprocess.DEVNULL)
    return time.time() - started


# ---------------------------------------------------------------------------------------
# 1. intake CPU path


def intake():
    payloads = OUT / "payloads"
    run([str(RELEASE / "bench"), "payloads", str(payloads)])
    log("criterion: floor, verify+parse, full intake at 1 KB / 8 KB / 64 KB")
    # The intake prints one EMF metric line per event on stdout, as in Lambda: discard it.
    with open(OUT / "criterion.log", "w") as errors:
        run(["cargo", "bench", "--quiet", "-p", "bench", "--bench", "intake"],
            stdout=subprocess.DEVNULL, stderr=errors)
    ours = {}
    for name in ("floor", "verify_parse", "receive"):
        for path in payloads.glob("*.json"):
            est = TARGET / "criterion" / "intake" / name / path.stem / "new" / "estimates.json"
            ours.setdefault(name, {})[path.stem] = json.loads(est.read_text())["median"]["point_estimate"]
    log("official SDK peers: Python stripe.Webhook.construct_event, Node stripe.webhooks.constructEvent")
    py = json.loads(run([str(VENV_BIN / "python"), "infra/bench/peer_python.py", str(payloads), WEBHOOK_SECRET],
                        capture_output=True, text=True).stdout)
    node = json.loads(run(["node", "infra/bench/peer_node.mjs", str(payloads), WEBHOOK_SECRET],
                          capture_output=True, text=True).stdout)
    sizes = {p.stem: p.stat().st_size for p in payloads.glob("*.json")}
    return {"ours": ours, "python": py, "node": node, "sizes": sizes}


# ---------------------------------------------------------------------------------------
# 2. cold start, size, memory


class Emulator:
    """The Lambda runtime emulator of cargo-lambda (`cargo lambda watch --only-lambda-apis`):
    the Runtime API a function process polls and the Invoke API we call, on a free loopback
    port; the function process is started by us, so its start is ours to time."""

    def __init__(self):
        self.port = free_port()
        self.log = open(OUT / "emulator.log", "ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--only-lambda-apis",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for(self.port, 60, step=0.05):
            self.close()
            raise SystemExit("bench: cargo lambda watch --only-lambda-apis did not start")

    # The emulator names the one function it serves in this mode `_`.
    def runtime_env(self):
        return {"AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.port}/.rt", "AWS_LAMBDA_FUNCTION_NAME": "_"}

    def invoke(self, payload):
        """(time answered, "response" or "error", body) of one synchronous invocation."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/2015-03-31/functions/_/invocations",
                                     data=payload, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                body = r.read()
                failed = r.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as e:
            body, failed = e.read(), "Unhandled"
        return time.perf_counter(), ("error" if failed else "response"), body

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def sign(secret, body):
    import hashlib
    import hmac
    t = int(time.time())
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.{body}'.encode(), hashlib.sha256).hexdigest()}"


def event_maker(function, sample):
    """A function(i) giving the i-th invocation's payload: the sample, with fresh event and
    session ids (and a signature made now) where the function would otherwise see a repeat."""
    base = json.loads((ROOT / "events" / sample).read_text()) if sample else {}
    tag = f"{os.getpid()}{int(time.time() * 1000) % 100000}"

    def stripe_event(i):
        e = json.loads(json.loads((ROOT / "events" / "webhook.json").read_text())["body"])
        e["id"] = f"evt_bench_{function.replace('-', '')}_{tag}_{i}"
        e["data"]["object"]["id"] = f"cs_test_bench_{tag}_{i}"
        # Each session has its own PaymentIntent, as in Stripe: the payment ledger is keyed
        # by it, so a repeated one would be a second session paying with the same payment.
        if e["data"]["object"].get("payment_intent"):
            e["data"]["object"]["payment_intent"] = f"pi_bench_{tag}_{i}"
        return json.dumps(e)

    def make(i):
        if function == "webhook":
            body = stripe_event(i)
            ev = dict(base, body=body)
            ev["headers"] = dict(base["headers"], **{"stripe-signature": sign(LOCAL_WEBHOOK_SECRET, body)})
            return json.dumps(ev).encode()
        if function == "worker":
            ev = json.loads(json.dumps(base))
            ev["Records"][0]["body"] = stripe_event(i)
            ev["Records"][0]["messageId"] = f"m-{tag}-{i}"
            return json.dumps(ev).encode()
        return json.dumps(base).encode()

    return make


def proc_status(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def invoke_process(binary, env, make, invocations):
    """Under a fresh emulator, sends the first invocation (it waits, as a cold start's event
    does), starts `binary`, and times process start → first answer; then serves
    `invocations - 1` more, one after another, and reads the process's peak RSS."""
    emulator = Emulator()
    env = dict(env, **emulator.runtime_env())
    first = queue.Queue()
    threading.Thread(target=lambda: first.put(emulator.invoke(make(0))), daemon=True).start()
    time.sleep(0.2)  # the invocation is queued in the emulator before the process exists
    log_file = open(OUT / f"{Path(binary).name}.log", "ab")
    started = time.perf_counter()
    proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        at, kind, body = first.get(timeout=60)
        cold = at - started
        answers = [(kind, body)]
        durations = []
        for i in range(1, invocations):
            sent = time.perf_counter()
            at, kind, body = emulator.invoke(make(i))
            durations.append(at - sent)
            answers.append((kind, body))
        peak_rss = proc_status(proc.pid, "VmHWM")
    finally:
        proc.kill()
        proc.wait()
        emulator.close()
        log_file.close()
    return {"first": cold, "durations": durations, "peak_rss": peak_rss, "answers": answers}


def check_answer(function, expected, kind, body):
    if kind != "response":
        return f"invocation error: {body[:200]!r}"
    answer = json.loads(body)
    if function == "worker":
        failures = answer.get("batchItemFailures") or []
        return None if not failures else f"batch item failures: {failures}"
    if expected is not None and answer.get("statusCode") != expected:
        return f"status {answer.get('statusCode')} (want {expected}): {answer.get('body', '')[:200]}"
    return None


def start_moto():
    port = free_port()
    log_file = open(OUT / "moto.log", "w")
    proc = subprocess.Popen([str(ROOT / "infra" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log_file, stderr=subprocess.STDOUT)
    if wait_for(port, 30):
        return proc, f"http://127.0.0.1:{port}"
    proc.kill()
    raise SystemExit("bench: moto_server did not start")


def no_io_event(function, sample):
    """An invocation the function answers from memory, as the floor does: what its first
    answer then measures is start-up (runtime, config, AWS clients) and nothing of moto."""
    if function == "hello-lambda":
        return b"{}"
    if function == "worker":
        return b'{"Records": []}'
    e = json.loads((ROOT / "events" / sample).read_text())
    if function == "webhook":
        e["headers"] = dict(e["headers"], **{"stripe-signature": "t=1,v1=00"})  # 400, before any I/O
    else:
        e["requestContext"].pop("authorizer", None)  # 401 (or 400 on the public routes' missing id)
        e.pop("queryStringParameters", None)
        e["rawQueryString"] = ""
    return json.dumps(e).encode()


def check_no_io_answer(function, kind, body):
    if kind != "response":
        return f"invocation error: {body[:200]!r}"
    answer = json.loads(body)
    if function == "worker":
        return None if not answer.get("batchItemFailures") else f"batch item failures: {answer}"
    want = {200} if function == "hello-lambda" else {400, 401}
    return None if answer.get("statusCode") in want else f"status {answer.get('statusCode')} (want {want})"


def cold_starts():
    moto, endpoint = start_moto()
    try:
        # The environment Lambda gives a provided.al2023 function, not this machine's. The
        # AWS SDK's TLS stack loads the system's root certificates at start-up: AL2023 has one
        # bundle file; this machine also has a directory of ~150 single-certificate files,
        # which it would read one by one. SSL_CERT_FILE points it at the one bundle, as there.
        bundle = next((p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
                       if Path(p).exists()), None)
        base_env = {"PATH": os.environ["PATH"], "LANG": "en_US.UTF-8", "TZ": ":UTC",
                    "LAMBDA_TASK_ROOT": str(RELEASE), "LAMBDA_RUNTIME_DIR": str(RELEASE),
                    **({"SSL_CERT_FILE": bundle} if bundle else {})}
        base_env.update({
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", "STRIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_EXECUTION_ENV": "AWS_Lambda_rust",
        })
        results = {}
        for n, (function, sample, expected) in enumerate([("hello-lambda", None, None)] + FUNCTIONS):
            # Fresh tables per function: moto copies a whole table for every transaction, so
            # a table grown by earlier functions would slow later ones.
            lines = run([str(RELEASE / "bench"), "provision", endpoint, f"cold{n}"],
                        capture_output=True, text=True).stdout
            env = dict(base_env)
            for line in lines.splitlines():
                k, _, v = line.partition("=")
                env[k] = v
            binary = RELEASE / function
            make = event_maker(function, sample)
            first = no_io_event(function, sample)
            log(f"cold start, size and memory: {function}")
            cold = [invoke_process(binary, env, lambda i: first, 1) for _ in range(COLD_RUNS)]
            first_event = [invoke_process(binary, env, make, 1) for _ in range(COLD_RUNS)]
            load = invoke_process(binary, env, make, LOAD_INVOCATIONS)
            problems = {p for r in cold for kind, body in r["answers"]
                        if (p := check_no_io_answer(function, kind, body))}
            problems |= {p for r in first_event + [load] for kind, body in r["answers"]
                         if (p := check_answer(function, expected, kind, body))}
            if problems:
                raise SystemExit(f"bench: {function} answered wrongly: {sorted(problems)[:3]}")
            zipped = OUT / "zips" / function / "bootstrap.zip"
            zipped.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
                z.write(binary, "bootstrap")
            durations = sorted(load["durations"])
            results[function] = {
                "first_ms": statistics.median(r["first"] for r in cold) * 1e3,
                "first_event_ms": statistics.median(r["first"] for r in first_event) * 1e3,
                "warm_p50_ms": statistics.median(durations) * 1e3,
                "warm_p99_ms": durations[math.ceil(0.99 * len(durations)) - 1] * 1e3,
                "peak_rss": load["peak_rss"],
                "binary_bytes": binary.stat().st_size,
                "zip_bytes": zipped.stat().st_size,
            }
        return results
    finally:
        moto.kill()
        moto.wait()


# ---------------------------------------------------------------------------------------
# 3. cost, 4. throughput


def cost():
    out = OUT / "cost.json"
    run([str(RELEASE / "bench"), "cost", str(out)], stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def throughput():
    out = OUT / "throughput.json"
    log(f"local stack: {THROUGHPUT_EVENTS} events at concurrency {THROUGHPUT_CONCURRENCY} against moto")
    env = {k: v for k, v in os.environ.items() if k != "MOTO_ENDPOINT"}
    env["MOTO_SERVER"] = str(ROOT / "infra" / "moto_server")
    run([str(RELEASE / "bench"), "throughput", str(out), str(THROUGHPUT_EVENTS), str(THROUGHPUT_CONCURRENCY)],
        stdout=subprocess.DEVNULL, env=env)
    return json.loads(out.read_text())


# ---------------------------------------------------------------------------------------
# the table


def verdict(ok):
    return "met" if ok else "MISSED"


def fmt_ns(ns):
    return f"{ns / 1e3:,.1f} µs" if ns < 1e6 else f"{ns / 1e6:,.2f} ms"


def report(r):
    lines = []
    say = lines.append
    meta = r["meta"]
    say(f"make bench: {meta['date']}, {meta['cpu']} ({meta['cores']} cores), rustc {meta['rustc']}, "
        f"node {r['intake']['node'].get('node_version')}, python {meta['python']}")
    say("")
    i = r["intake"]
    say("1. Webhook intake CPU path, median time per event (lower is better)")
    say(f"   peers: stripe (Python) {i['python']['sdk_version']} Webhook.construct_event; "
        f"stripe (Node) {i['node']['sdk_version']} webhooks.constructEvent: verify + parse only")
    say("   ours: intake::receive on in-memory adapters, a new event id per delivery: verify, parse,")
    say("         claim (conditional put of the redacted record), queue send, metric + log line")
    header = f"   {'payload':<8}{'floor':>11}{'verify+parse':>14}{'ours intake':>13}{'Python SDK':>13}{'Node SDK':>12}" \
             f"{'Py/ours':>9}{'Node/ours':>11}{'ours/floor':>12}"
    say(header)
    targets = {"python": True, "node": True, "floor": True}
    for size in ("1KB", "8KB", "64KB"):
        floor, vp, ours = (i["ours"][k][size] for k in ("floor", "verify_parse", "receive"))
        py, node = i["python"][size], i["node"][size]
        targets["python"] &= py / ours >= 10
        targets["node"] &= node / ours >= 3
        targets["floor"] &= ours / floor <= 2
        say(f"   {size + ' (' + str(i['sizes'][size]) + ')':<8}{fmt_ns(floor):>11}{fmt_ns(vp):>14}{fmt_ns(ours):>13}"
            f"{fmt_ns(py):>13}{fmt_ns(node):>12}{py / ours:>8.0f}×{node / ours:>10.1f}×{ours / floor:>11.2f}×")
    say(f"   targets: ≥10× the Python SDK: {verdict(targets['python'])}; ≥3× the Node SDK: {verdict(targets['node'])}; "
        f"within 2× of the floor: {verdict(targets['floor'])}")
    say("")

    c = r["cold"]
    hello = c["hello-lambda"]
    mb = 1e6
    say("2. Cold start, size and memory (release profile, x86_64 host build, zipped as `cargo lambda build` zips)")
    say("   under cargo-lambda's Lambda runtime emulator (`cargo lambda watch --only-lambda-apis`), DynamoDB/SQS in moto,")
    say(f"   fresh tables per function; median of {COLD_RUNS} processes each. cold start: process start → first answer, to an")
    say("   invocation answered without I/O (as the floor's), the invocation already waiting; 1st event: the same to the")
    say(f"   function's sample (its DynamoDB/SQS calls included); warm: one invocation; peak RSS (VmHWM) after {LOAD_INVOCATIONS}")
    say(f"   {'function':<16}{'cold start':>11}{'vs floor':>10}{'1st event':>11}{'warm p50':>10}{'warm p99':>10}"
        f"{'binary':>10}{'zip':>9}{'peak RSS':>10}")
    worst_zip = worst_rss = worst_cold = 0
    for name, m in c.items():
        ratio = m["first_ms"] / hello["first_ms"]
        if name != "hello-lambda":
            worst_zip, worst_rss = max(worst_zip, m["zip_bytes"]), max(worst_rss, m["peak_rss"])
            worst_cold = max(worst_cold, ratio)
        say(f"   {name:<16}{m['first_ms']:>9.1f}ms{ratio:>9.2f}×{m['first_event_ms']:>9.1f}ms"
            f"{m['warm_p50_ms']:>8.2f}ms{m['warm_p99_ms']:>8.2f}ms{m['binary_bytes'] / mb:>8.2f}MB"
            f"{m['zip_bytes'] / mb:>7.2f}MB{m['peak_rss'] / mb:>8.1f}MB")
    say(f"   targets: cold start within 1.5× of the floor: {verdict(worst_cold <= 1.5)} (worst {worst_cold:.2f}×); "
        f"zip ≤ 6 MB: {verdict(worst_zip <= 6 * mb)} (largest {worst_zip / mb:.2f} MB); "
        f"peak RSS ≤ 40 MB: {verdict(worst_rss <= 40 * mb)} (largest {worst_rss / mb:.1f} MB)")
    say("   (MB = 10^6 bytes. Not in these figures: in AWS, a cold start also reads the Stripe secret from Secrets")
    say("    Manager once (STRIPE_SECRET_ARN), one HTTPS round trip. Warm and 1st-event figures include the emulator's")
    say("    round trip and moto's latency: upper bounds of what AWS would give.)")
    say("")

    k = r["cost"]["phases"]
    say("3. Cost per event (requests counted by metered in-memory adapters; units from item sizes)")
    say(f"   {'phase':<26}{'DDB reads':>10}{'DDB writes':>11}{'transactions':>13}{'RRU':>6}{'WRU':>6}{'GSI WRU':>9}"
        f"{'SQS reqs':>9}")
    for name in ("intake_new_checkout", "intake_duplicate", "fulfil_checkout", "intake_new_subscription",
                 "fulfil_subscription"):
        p = k[name]
        tx = f"{p['ddb_transactions']} ({p['ddb_transaction_items']} items)" if p["ddb_transactions"] else "0"
        say(f"   {name:<26}{p['ddb_reads']:>10}{p['ddb_writes']:>11}{tx:>13}{p['rru']:>6}{p['wru']:>6}{p['gsi_wru']:>9}"
            f"{p['sqs_billed_requests']:>9}")
    intake_ok = all(k[n]["ddb_writes"] <= 2 and k[n]["sqs_sends"] == 1 and k[n]["ddb_transactions"] == 0
                    for n in ("intake_new_checkout", "intake_new_subscription"))
    fulfil_ok = all(k[n]["ddb_transactions"] == 1 and k[n]["ddb_writes"] == 0
                    for n in ("fulfil_checkout", "fulfil_subscription"))
    say(f"   targets: intake ≤ 2 DynamoDB writes + 1 SQS send: {verdict(intake_ok)}; "
        f"fulfilment one transaction: {verdict(fulfil_ok)}")
    cc = r["cost"]
    a, p, lat = cc["account_read_rru"], cc["admin_page_rru"], cc["intake_latency_10ms"]
    say(f"   account read cost at 0 / 1,000 / 100,000 usage records: {a['0']} / {a['1000']} / {a['100000']} RRU")
    say(f"   admin list page cost with 1 KB / 64 KB payloads: {p['1KB']} / {p['64KB']} RRU")
    fc, ft = cc["feature_costs"], cc["feature_throughput"]
    for op in ("check", "track"):
        row = " / ".join(f"{fc[n][op]['rru']} RRU, {fc[n][op]['wru']} WRU, {fc[n][op]['requests']} requests, "
                         f"{fc[n][op]['round_trips']} round trips" for n in ("0", "1000", "100000"))
        say(f"   feature {op} at 0 / 1,000 / 100,000 usage records (12 past periods): {row}")
    flat = all(fc["100000"][op]["rru"] <= 2 * max(fc["0"][op]["rru"], 1)
               and fc["100000"][op]["round_trips"] <= 2 * max(fc["0"][op]["round_trips"], 1) for op in ("check", "track"))
    ratio = ft["usage_per_s"] / ft["tracks_per_s"]
    say(f"   tracks on one account: {ft['tracks_per_s']:.0f}/s vs POST /api/billing/usage {ft['usage_per_s']:.0f}/s "
        f"({ft['calls']} each, in process, in-memory store)")
    say(f"   targets: flat check and track (100,000 within 2× of 0): {verdict(flat)}; "
        f"tracks within 1.2× of usage calls: {verdict(ratio <= 1.2)}")
    say(f"   intake sequential AWS calls per new event: {cc['intake_sequential_calls']}")
    say(f"   intake latency with {lat['delay_ms']:.0f} ms added to every store and queue call: "
        f"p50 {lat['p50_ms']:.1f} ms / p99 {lat['p99_ms']:.1f} ms ({lat['events']} new events of {lat['payload_bytes']} B, one at a time)")
    say(f"   targets: flat account reads (100,000 within 2× of 0): {verdict(a['100000'] <= 2 * a['0'])}; "
        f"page cost independent of payload: {verdict(p['64KB'] == p['1KB'])}; "
        f"intake ≤ 2 sequential calls: {verdict(cc['intake_sequential_calls'] <= 2)}")
    ic, fc = k["intake_new_checkout"], k["fulfil_checkout"]
    wru = ic["wru"] + ic["gsi_wru"] + fc["wru"] + fc["gsi_wru"]
    rru = ic["rru"] + fc["rru"]
    sqs = ic["sqs_billed_requests"] + fc["sqs_billed_requests"]
    ms = math.ceil(c["webhook"]["warm_p50_ms"]) + math.ceil(c["worker"]["warm_p50_ms"])
    per_million = {
        "DynamoDB writes": wru * PRICES["ddb_wru"][0],
        "DynamoDB reads": rru * PRICES["ddb_rru"][0],
        "SQS FIFO": sqs * PRICES["sqs_fifo"][0],
        "Lambda requests": 2 * PRICES["lambda_req"][0],
        "Lambda duration": ms / 1000 * 0.125 * PRICES["lambda_gbs"][0] * 1e6,
    }
    total = sum(per_million.values())
    say(f"   per million paid checkouts (one delivery, {r['cost']['payload_bytes']['checkout']} B event): "
        + ", ".join(f"{n} ${v:.2f}" for n, v in per_million.items())
        + f" = ${total:.2f}; with API Gateway HTTP API ${total + PRICES['apigw_http'][0]:.2f}")
    say(f"   ({wru} WRU incl. GSI, {rru} RRU, {sqs} SQS requests (send, receive, delete; worst case of a batch of one),")
    say(f"    2 Lambda invocations (webhook + worker; batches of up to 10 share one), {ms} ms billed at 128 MB arm64,")
    say("    from the warm p50s above measured against moto: an upper bound)")
    say("   prices (us-east-1, on-demand): " + "; ".join(p[1] for p in PRICES.values()))
    say("   sources: " + ", ".join(sorted({p[2] for p in PRICES.values()})))
    say("")

    t = r["throughput"]
    say(f"4. Local stack throughput: {t['events']} paid checkouts, {t['concurrency']} concurrent clients, each: sign, POST the")
    say("   webhook, then read checkout-status every 100 ms until fulfilled (HTTP front → intake → SQS → worker → DynamoDB)")
    say(f"   {t['events_per_s']:.1f} events/s ({t['seconds']:.1f} s); intake p50 {t['intake_p50_ms']:.1f} ms, "
        f"p99 {t['intake_p99_ms']:.1f} ms; end to end p50 {t['e2e_p50_ms']:.1f} ms, p99 {t['e2e_p99_ms']:.1f} ms; "
        f"accounts wrong afterwards: {t['accounts_wrong']} "
        f"(account reads answered 503 and retried: {t.get('account_reads_refused_then_retried', 0)})")
    say("   bounded by moto, not by the functions: one Python process emulates DynamoDB and SQS, and its")
    say("   TransactWriteItems deep-copies the whole table for each item (so it slows as the table grows); the")
    say("   local queue mapping is a single poller. A figure for regressions, not for AWS capacity.")
    say("")
    say(f"total time {r['meta']['seconds']:.0f} s (builds {r['meta']['build_seconds']:.0f} s)")
    return "\n".join(lines)


def main():
    started = time.time()
    OUT.mkdir(parents=True, exist_ok=True)
    build_seconds = build()
    results = {"intake": intake()}
    results["cold"] = cold_starts()
    results["cost"] = cost()
    results["throughput"] = throughput()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown cpu")
    results["meta"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu, "cores": os.cpu_count(),
        "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.split()[1],
        "python": sys.version.split()[0],
        "build_seconds": build_seconds, "seconds": time.time() - started,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    table = report(results)
    (OUT / "table.txt").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
