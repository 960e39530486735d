#!/usr/bin/env python3
"""Writes the sample events under events/.

The Stripe webhook bodies (events/stripe/*.json) are built by the project's one Stripe event
builder (shared/testing/src/samples.rs, from Stripe's official fixture objects; this script
asks `local-stack stripe-events` for them), which overrides only ids, metadata, amounts,
statuses and timestamps, so the project's Stripe types are tested against Stripe's real
shapes; a test of local-stack checks that the files are current. The API Gateway and SQS samples that carry a Stripe
body (events/webhook.json, events/worker-sqs.json) are written here too, so their body,
content-length and md5OfBody can never drift from the Stripe sample they wrap; the
other API Gateway samples are written here so that all of them share one request shape.

Usage: python3 infra/make_sample_events.py   (runs `cargo run -p local-stack -- stripe-events`)
Output is deterministic: the same fixtures give byte-identical files.
"""

import base64
import copy
import hashlib
import json
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


USER = "user_demo"
CUSTOMER = "cus_demo"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "b1llingapi"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:billing-fulfilment.fifo"
STREAM_ARN = (f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/billing-BillingTable-1NQ4C2S7XK9Q"
              "/stream/2026-11-20T09:00:00.000")
# One of the addresses Stripe publishes for webhook deliveries.
STRIPE_SOURCE_IP = "3.18.12.63"
BROWSER_IP = "203.0.113.24"
BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Safari/605.1.15"
)
CLAIMS = {"sub": USER, "email": "demo@example.com", "scope": "openid"}


def stripe_samples():
    """File name -> Stripe event, as the one event builder builds them
    (shared/testing/src/samples.rs, printed by `local-stack stripe-events`)."""
    run = subprocess.run(["cargo", "run", "--quiet", "-p", "local-stack", "--", "stripe-events"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    return {s["file"]: s["event"] for s in json.loads(run.stdout)}


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def stable_id(*parts):
    """A fixed, realistic-looking id derived from the sample's own content."""
    return hashlib.sha256("|".join(parts).encode()).digest()


def http_event(method, path, *, at, query=None, headers=None, body=None, claims=None,
               source_ip=BROWSER_IP, user_agent=BROWSER_UA, route=None, path_params=None):
    """An API Gateway HTTP API (payload format 2.0) request as Lambda receives it. `route`
    is the route's template when it has path parameters (`path_params`)."""
    raw_query = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    route_key = f"{method} {route or path}"
    domain = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
    all_headers = {
        "host": domain,
        "user-agent": user_agent,
        "x-amzn-trace-id": "Root=1-{:08x}-{}".format(
            at, stable_id(route_key, "trace").hex()[:24]),
        "x-forwarded-for": source_ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        all_headers["content-length"] = str(len(body.encode()))
    all_headers.update(headers or {})
    context = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": user_agent,
        },
        "requestId": base64.b64encode(stable_id(route_key, str(at))[:11], altchars=b"Kq").decode(),
        "routeKey": route_key,
        "stage": "$default",
        "time": datetime.fromtimestamp(at, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": at * 1000,
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": dict(sorted(all_headers.items())),
    }
    if query:
        event["queryStringParameters"] = query
    if path_params:
        event["pathParameters"] = path_params
    event["requestContext"] = context
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = False
    return event


def sqs_event(body, *, group, dedup_id, sent_at):
    """One record of a Lambda SQS event from the FIFO fulfilment queue."""
    sent_ms = sent_at * 1000 + 123
    return {
        "Records": [
            {
                "messageId": str(uuid.UUID(bytes=stable_id(dedup_id, "message")[:16], version=4)),
                "receiptHandle": "AQEB" + base64.b64encode(b"".join(
                    stable_id(dedup_id, "receipt", str(i)) for i in range(4))).decode().rstrip("="),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent_ms),
                    "SequenceNumber": "18899"
                    + str(int.from_bytes(stable_id(dedup_id, "seq")[:6], "big")).zfill(15),
                    "MessageGroupId": group,
                    "SenderId": "AROAEXAMPLEROLEID1234:billing-WebhookFunction-Q2x7T0sVn3Ld",
                    "MessageDeduplicationId": dedup_id,
                    "ApproximateFirstReceiveTimestamp": str(sent_ms + 27),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": REGION,
            }
        ]
    }


def stream_event(*, user, version, cause, at):
    """One record of a Lambda DynamoDB stream event: the outbox item of `user` at `version`
    (NEW_IMAGE), as the template's filter passes it to the publisher."""
    keys = {"pk": {"S": f"USER#{user}"}, "sk": {"S": "ENTITLEMENTS"}}
    image = {**keys, "version": {"N": str(version)}, "cause": {"S": cause},
             "updated_at": {"S": datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    return {
        "Records": [
            {
                "eventID": stable_id(user, str(version), "stream").hex()[:32],
                "eventName": "MODIFY" if version > 1 else "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": at,
                    "Keys": keys,
                    "NewImage": image,
                    "SequenceNumber": "4" + str(int.from_bytes(stable_id(user, str(version))[:8], "big")).zfill(20),
                    "SizeBytes": 120,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": STREAM_ARN,
            }
        ]
    }


def gateway_samples(webhook_event):
    body = compact(webhook_event)
    sent_at = webhook_event["created"] + 1
    json_accept = {"accept": "application/json"}
    account = http_event("GET", "/api/billing/account", at=1_795_000_300,
                         headers=json_accept, claims=CLAIMS)
    unauthenticated = copy.deepcopy(account)
    del unauthenticated["requestContext"]["authorizer"]
    session = "cs_test_demo_credits_starter"
    return {
        "account.json": account,
        "account-unauthenticated.json": unauthenticated,
        "checkout-status.json": http_event(
            "GET", "/api/billing/checkout-status", at=1_795_000_005,
            query={"session_id": session},
            headers={**json_accept, "referer": f"https://app.example.com/billing/success?session_id={session}"}),
        "billing-status.json": http_event(
            "GET", "/api/billing/status", at=1_794_999_300, headers=json_accept),
        "webhook.json": http_event(
            "POST", "/api/stripe/webhook", at=sent_at, body=body,
            headers={
                "accept": "*/*; q=0.5, application/xml",
                "cache-control": "no-cache",
                "content-type": "application/json; charset=utf-8",
                # Placeholder: `make send` signs the body with the local secret at send time.
                "stripe-signature": "t=0,v1=00",
            },
            source_ip=STRIPE_SOURCE_IP,
            user_agent="Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
        "worker-sqs.json": sqs_event(body, group=CUSTOMER, dedup_id=webhook_event["id"],
                                     sent_at=sent_at),
        "publisher-stream.json": stream_event(user="user_demo", version=1,
                                              cause=webhook_event["id"], at=sent_at + 2),
    }


def derived_samples(pi_event):
    """Requests of the PaymentIntent routes, shaped like `account.json`, and the worker's
    record of a PaymentIntent purchase."""
    ops = {"sub": "ops_demo", "email": "ops@example.com", "scope": "openid billing:admin"}

    # The app's own server: a client-credentials token (its sub names the client, no email).
    service = {"sub": "app_backend_demo", "scope": "billing:service"}

    def request(method, path, *, query=None, body=None, claims=CLAIMS, headers=None,
                route=None, path_params=None):
        h = {"accept": "application/json"}
        if body is not None:
            h["content-type"] = "application/json"
        h.update(headers or {})
        e = http_event(method, path, at=1_795_000_300, query=query,
                       body=None if body is None else compact(body), headers=h, claims=claims,
                       route=route, path_params=path_params)
        if claims is ops:
            e["requestContext"]["authorizer"]["jwt"]["scopes"] = ["billing:admin"]
        if claims is service:
            e["requestContext"]["authorizer"]["jwt"]["scopes"] = ["billing:service"]
        return e

    def for_user(method, what, claims, **kw):
        return request(method, f"/api/billing/users/{USER}/{what}", claims=claims,
                       route=f"/api/billing/users/{{user_id}}/{what}",
                       path_params={"user_id": USER}, **kw)

    body = compact(pi_event)
    return {
        "purchases.json": request(
            "POST", "/api/billing/purchases", body={"plan_id": "uses_20", "quantity": 1},
            headers={"idempotency-key": "demo-click-1"}),
        "usage-check.json": request("GET", "/api/billing/usage", query={"units": "5"}),
        "service-account.json": for_user("GET", "account", service),
        "service-usage.json": for_user(
            "POST", "usage", service,
            body={"units": 1, "idempotency_key": "agent-call-demo-1"}),
        "service-usage-check.json": for_user("GET", "usage", service, query={"units": "1"}),
        "service-forbidden.json": for_user("GET", "account", CLAIMS),
        "subscription-switch.json": request(
            "POST", "/api/billing/subscription", body={"plan_id": "pro_annual"},
            headers={"idempotency-key": "demo-switch-1"}),
        "subscription-cancel.json": request("POST", "/api/billing/subscription/cancel", body={}),
        "invoices.json": request("GET", "/api/billing/invoices", query={"limit": "10"}),
        "admin-refund.json": request(
            "POST", "/api/billing/admin/refund",
            body={"payment_intent_id": "pi_demo_never_sold", "reason": "duplicate order"},
            claims=ops),
        "admin-user.json": request(
            "GET", f"/api/billing/admin/users/{USER}", claims=ops,
            route="/api/billing/admin/users/{user_id}", path_params={"user_id": USER}),
        "admin-erase.json": request(
            "POST", f"/api/billing/admin/users/{USER}/erase", claims=ops,
            body={"reason": "erasure request #1"},
            route="/api/billing/admin/users/{user_id}/erase", path_params={"user_id": USER}),
        "worker-sqs-payment-intent.json": sqs_event(
            body, group=CUSTOMER, dedup_id=pi_event["id"], sent_at=pi_event["created"] + 1),
    }


def write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
    print(path.relative_to(ROOT))


def main():
    samples = stripe_samples()
    for name, event in samples.items():
        write(EVENTS / "stripe" / name, event)
    for name, event in gateway_samples(
            samples["checkout.session.completed.credits_starter.json"]).items():
        write(EVENTS / name, event)
    for name, event in derived_samples(samples["payment_intent.succeeded.json"]).items():
        write(EVENTS / name, event)


if __name__ == "__main__":
    main()
