// Times the official Stripe SDK for Node verifying and parsing webhook payloads.
//
// usage: node peer_node.mjs <payload-dir> <secret>
// For each <size>.json in the directory, signs it now with the SDK's own test helper
// (untimed) and times `stripe.webhooks.constructEvent(rawBody, header, secret)` on the raw
// Buffer a webhook route receives: signature verification and JSON parsing. Prints one JSON
// object {"<size>": ns_per_op, ...}: the median of 5 rounds of at least 0.4 s each, after a
// warm-up that lets the JIT settle.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

// The SDK is installed once, under infra/peers (infra/bootstrap.sh).
const require = createRequire(new URL("../peers/package.json", import.meta.url));
const Stripe = require("stripe");

const [dir, secret] = process.argv.slice(2);
const stripe = new Stripe("sk_test_bench_peer_only");

function nsPerOp(fn, rounds = 5, minRoundNs = 4e8) {
  const warmUntil = process.hrtime.bigint() + 1_000_000_000n;
  while (process.hrtime.bigint() < warmUntil) fn();
  let n = 1;
  let spent;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    spent = Number(process.hrtime.bigint() - start);
    if (spent >= minRoundNs) break;
    n *= 2;
  }
  const results = [spent / n];
  for (let r = 1; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    results.push(Number(process.hrtime.bigint() - start) / n);
  }
  results.sort((a, b) => a - b);
  return results[Math.floor(results.length / 2)];
}

const out = {};
for (const name of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const raw = readFileSync(join(dir, name));
  const header = stripe.webhooks.generateTestHeaderString({
    payload: raw.toString("utf8"),
    secret,
    timestamp: Math.floor(Date.now() / 1000),
  });
  const event = stripe.webhooks.constructEvent(raw, header, secret);
  if (!event.id.startsWith("evt_")) throw new Error("not an event");
  out[name.replace(/\.json$/, "")] = nsPerOp(() => stripe.webhooks.constructEvent(raw, header, secret));
}
const pkg = new URL("../peers/node_modules/stripe/package.json", import.meta.url);
out.sdk_version = JSON.parse(readFileSync(pkg, "utf8")).version;
out.node_version = process.version;
console.log(JSON.stringify(out));
