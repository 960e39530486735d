"""`make bench`: every figure the README quotes, measured in one run, printed as one table.

usage: .venv/bin/python infra/bench/run.py   (make bench runs infra/bootstrap.sh first)

1. Intake CPU path: criterion (`infra/bench/benches/intake.rs`) for our verify+parse and full
   intake, and the floor (HMAC-SHA256 + serde_json alone); the official Stripe SDKs for Python
   and Node (`peer_python.py`, `peer_node.mjs`) verifying and parsing the same payloads.
2. Cold start, size and memory of every function, as built for release, against a hello-world
   `lambda_runtime` binary of the same profile: each binary runs under a small local server
   that speaks the AWS Lambda Runtime API (loopback), with DynamoDB and SQS in moto.
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
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
OUT = TARGET / "bench"
WEBHOOK_SECRET = "whsec_test_secret"  # billing_core::testing::TEST_WEBHOOK_SECRET
LOCAL_WEBHOOK_SECRET = "whsec_local_dev_secret"
FUNCTIONS = [
    # (binary, sample in events/, expected status or None for the worker)
    ("webhook", "webhook.json", 200),
    ("worker", "worker-sqs.json", None),
    ("checkout-status", "checkout-status.json", 200),
    ("account", "account.json", 200),
    ("checkout", "checkout.json", 503),
    ("portal", "portal.json", 404),
    ("admin", "admin-events.json", 200),
    ("usage", "usage.json", 200),
    ("referral", "referral.json", 400),
]
COLD_RUNS = 5
LOAD_INVOCATIONS = 300
THROUGHPUT_EVENTS = int(os.environ.get("BENCH_EVENTS", "640"))
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class RuntimeApi:
    """The AWS Lambda Runtime API (2018-06-01) for one function process, on loopback."""

    def __init__(self):
        self.events = queue.Queue()
        self.responses = queue.Queue()
        self.first_next = None
        self.closed = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.reply(404, b"{}")
                if api.first_next is None:
                    api.first_next = time.perf_counter()
                while not api.closed:
                    try:
                        request_id, body = api.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        continue
                else:
                    return
                deadline = int(time.time() * 1000) + 30_000
                self.reply(200, body, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:000000000000:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                })

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                kind = "response" if self.path.endswith("/response") else "error"
                api.responses.put((time.perf_counter(), kind, body))
                self.reply(202, b'{"status":"OK"}')

            def reply(self, status, body, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


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
    """Starts `binary` against a fresh Runtime API with its first event waiting, as Lambda
    does, and serves `invocations` events one after another."""
    api = RuntimeApi()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.port}")
    api.events.put(("req-0", make(0)))
    log_file = open(OUT / f"{Path(binary).name}.log", "ab")
    started = time.perf_counter()
    proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        at, kind, body = api.responses.get(timeout=60)
        ready, first = api.first_next - started, at - started
        answers = [(kind, body)]
        durations = []
        for i in range(1, invocations):
            sent = time.perf_counter()
            api.events.put((f"req-{i}", make(i)))
            at, kind, body = api.responses.get(timeout=60)
            durations.append(at - sent)
            answers.append((kind, body))
        peak_rss = proc_status(proc.pid, "VmHWM")
    finally:
        proc.kill()
        proc.wait()
        api.close()
        log_file.close()
    return {"ready": ready, "first": first, "durations": durations, "peak_rss": peak_rss, "answers": answers}


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
    proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("bench: moto_server did not start")


def cold_starts():
    moto, endpoint = start_moto()
    try:
        lines = run([str(RELEASE / "bench"), "provision", endpoint, "cold"],
                    capture_output=True, text=True).stdout
        env = dict(os.environ)
        for line in lines.splitlines():
            k, _, v = line.partition("=")
            env[k] = v
        env.update({
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", "STRIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET,
            "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_EXECUTION_ENV": "AWS_Lambda_rust",
        })
        for k in ("STRIPE_SECRET_KEY", "STRIPE_SECRET_ARN", "RUST_LOG"):
            env.pop(k, None)
        results = {}
        for function, sample, expected in [("hello-lambda", None, None)] + FUNCTIONS:
            binary = RELEASE / function
            make = event_maker(function, sample)
            log(f"cold start, size and memory: {function}")
            cold = [invoke_process(binary, env, make, 1) for _ in range(COLD_RUNS)]
            load = invoke_process(binary, env, make, LOAD_INVOCATIONS)
            problems = {p for r in cold + [load] for kind, body in r["answers"]
                        if (p := check_answer(function, expected, kind, body))}
            if problems:
                raise SystemExit(f"bench: {function} answered wrongly: {sorted(problems)[:3]}")
            zipped = OUT / "zips" / function / "bootstrap.zip"
            zipped.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
                z.write(binary, "bootstrap")
            durations = sorted(load["durations"])
            results[function] = {
                "ready_ms": statistics.median(r["ready"] for r in cold) * 1e3,
                "first_ms": statistics.median(r["first"] for r in cold) * 1e3,
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
    env["MOTO_SERVER"] = str(VENV_BIN / "moto_server")
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
    say("         claim (conditional put of the redacted record), queue send, mark queued, metric + log line")
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
    say("2. Cold start, size and memory (release profile, x86_64 host build; deployed arm64 binaries are of similar size)")
    say("   measured: process start → first answered invocation under a local AWS Lambda Runtime API server")
    say("   (loopback, the 2018-06-01 contract), first event waiting, DynamoDB/SQS in moto; median of "
        f"{COLD_RUNS} cold starts; peak RSS (VmHWM) after {LOAD_INVOCATIONS} invocations in one process")
    say(f"   {'function':<16}{'init':>9}{'1st answer':>12}{'vs floor':>10}{'warm p50':>10}{'warm p99':>10}"
        f"{'binary':>10}{'zip':>9}{'peak RSS':>10}")
    worst_zip = worst_rss = 0
    for name, m in c.items():
        if name != "hello-lambda":
            worst_zip, worst_rss = max(worst_zip, m["zip_bytes"]), max(worst_rss, m["peak_rss"])
        extra = "floor" if name == "hello-lambda" else f"+{m['first_ms'] - hello['first_ms']:.1f}"
        say(f"   {name:<16}{m['ready_ms']:>7.1f}ms{m['first_ms']:>10.1f}ms{extra:>10}{m['warm_p50_ms']:>8.2f}ms"
            f"{m['warm_p99_ms']:>8.2f}ms{m['binary_bytes'] / 2**20:>8.2f}MB{m['zip_bytes'] / 2**20:>7.2f}MB"
            f"{m['peak_rss'] / 2**20:>8.1f}MB")
    say(f"   targets: zip ≤ 6 MB: {verdict(worst_zip <= 6 * 2**20)} (largest {worst_zip / 2**20:.2f} MB); "
        f"peak RSS ≤ 40 MB: {verdict(worst_rss <= 40 * 2**20)} (largest {worst_rss / 2**20:.1f} MB)")
    say("   (init = process start → first GET /invocation/next; warm = one invocation, Runtime API round trip and")
    say("    moto's DynamoDB/SQS latency included, so an upper bound of what DynamoDB itself would give)")
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
    say("   webhook, then read checkout-status every 25 ms until fulfilled (HTTP front → intake → SQS → worker → DynamoDB)")
    say(f"   {t['events_per_s']:.1f} events/s ({t['seconds']:.1f} s); intake p50 {t['intake_p50_ms']:.1f} ms, "
        f"p99 {t['intake_p99_ms']:.1f} ms; end to end p50 {t['e2e_p50_ms']:.1f} ms, p99 {t['e2e_p99_ms']:.1f} ms; "
        f"accounts wrong afterwards: {t['accounts_wrong']}")
    say("   bounded by moto (one Python process emulating DynamoDB and SQS) and the local mapping's single poller,")
    say("   not by the functions: a figure for regressions, not for AWS capacity")
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
