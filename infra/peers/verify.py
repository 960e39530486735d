"""Verifies a webhook signature with the official Stripe SDK for Python.

usage: python verify.py <secret> <header>  (payload on stdin)
Prints the event id and exits 0 when the SDK accepts, prints the SDK's error and exits 1
when it refuses.
"""
import sys

import stripe

secret, header = sys.argv[1], sys.argv[2]
payload = sys.stdin.buffer.read()
try:
    event = stripe.Webhook.construct_event(payload, header, secret)
except (stripe.SignatureVerificationError, ValueError) as err:
    print(f"refused: {err}")
    sys.exit(1)
print(event["id"])
