// Signs a payload with the official Stripe SDK for Node, as Stripe does for a webhook.
// usage: node sign.mjs <secret> <timestamp>  (payload on stdin); prints the header.
import Stripe from "stripe";
import { readFileSync } from "node:fs";

const [secret, timestamp] = process.argv.slice(2);
const payload = readFileSync(0, "utf8");
const stripe = new Stripe("sk_test_peer_only");
process.stdout.write(
  stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: Number(timestamp) }),
);
