"""Times the official Stripe SDK for Python verifying and parsing webhook payloads.

usage: python peer_python.py <payload-dir> <secret>
For each <size>.json in the directory, signs it now (untimed) and times
`stripe.Webhook.construct_event(payload, header, secret)`: signature verification and
parsing into a `stripe.Event`, exactly what a Python webhook handler calls. Prints one JSON
object {"<size>": ns_per_op, ...}: the median of 5 rounds of at least 0.4 s each.
"""
import hashlib
import hmac
import json
import statistics
import sys
import time
from pathlib import Path

import stripe


def header_for(payload: bytes, secret: str) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def ns_per_op(fn, rounds=5, min_round_s=0.4):
    fn()
    n = 1
    while True:  # calibrate: iterations per round
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        spent = time.perf_counter_ns() - start
        if spent >= min_round_s * 1e9:
            break
        n *= 2
    results = [spent / n]
    for _ in range(rounds - 1):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        results.append((time.perf_counter_ns() - start) / n)
    return statistics.median(results)


def main():
    directory, secret = Path(sys.argv[1]), sys.argv[2]
    out = {}
    for path in sorted(directory.glob("*.json")):
        payload = path.read_bytes()
        header = header_for(payload, secret)
        event = stripe.Webhook.construct_event(payload, header, secret)
        assert event.id.startswith("evt_")
        out[path.stem] = ns_per_op(lambda: stripe.Webhook.construct_event(payload, header, secret))
    out["sdk_version"] = stripe.VERSION
    print(json.dumps(out))


if __name__ == "__main__":
    main()
