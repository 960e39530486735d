// console.js: the operator's billing console (docs/api.md, "Operator view and console").
//
// A dependency-free ES module with no build step, like billing.js: host web/admin/ anywhere
// (its origin in the stack's AllowedOrigins) and hand it the operator's token:
//
//   import { createConsole } from "./console.js";
//   createConsole({ apiBase: "https://api.example.com", getToken: () => auth.token() })
//     .render(document.getElementById("console"));
//
// It renders with the DOM API only (never innerHTML), so nothing the API returns is read as
// markup. It shows what the admin routes answer and nothing else: never a secret, never a
// webhook payload (the API does not hand one out). Grants and refunds ask for a reason and
// a confirmation before they are sent, and show the API's answer as it came.

const STATES = ["failed", "unclaimed", "queued", "processed", "ignored"];

/**
 * @param {{apiBase?: string, getToken?: () => (string|null|undefined|Promise<string|null|undefined>),
 *          fetch?: typeof fetch}} [options]
 */
export function createConsole(options = {}) {
  const apiBase = options.apiBase ?? "";
  const getToken = options.getToken ?? (() => null);
  const doFetch = options.fetch ?? ((...a) => fetch(...a));
  let banner = null;
  let nav = null;

  /** Calls the API; answers {status, body}. A 401/403 also says so in the banner. */
  async function api(method, path, body) {
    const token = await getToken();
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let status = 0;
    let json = null;
    try {
      const r = await doFetch(apiBase + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      status = r.status;
      json = await r.json().catch(() => null);
    } catch (e) {
      json = { error: { code: "network_error", message: `the API could not be reached: ${e.message}` } };
    }
    if (banner && (status === 401 || status === 403)) {
      banner.dataset.consoleState = status === 401 ? "unauthenticated" : "forbidden";
      banner.textContent = status === 401
        ? "Not signed in: the API wants an operator's token (401 unauthenticated)."
        : "This token is not an operator's: the API refused it (403 forbidden). Sign in with a token whose scope holds billing:admin.";
    } else if (banner && status >= 200 && status < 300) {
      banner.dataset.consoleState = "ok";
      banner.textContent = "";
    }
    return { status, body: json };
  }

  return { api, render };

  function render(root) {
    root.replaceChildren();
    root.classList.add("billing-console");
    banner = el("p", { className: "console-banner", role: "alert" });
    nav = el("nav", { className: "console-nav" });
    const panel = el("section", { className: "console-panel" });
    const screens = {
      events: () => eventsScreen(panel, "Events", null),
      "dead-letters": () => eventsScreen(panel, "Dead letters", "failed",
        "Events that failed: after five attempts each is in the dead-letter queue. Its error says why; fix the cause, then replay it."),
      unclaimed: () => eventsScreen(panel, "Unclaimed payments", "unclaimed",
        "Payments applied to no account. Find the payer (user search), then grant what they bought, or refund."),
      reconcile: () => reconcileScreen(panel),
      user: () => userScreen(panel),
      grant: () => grantScreen(panel, {}),
      refund: () => refundScreen(panel, {}),
    };
    for (const [id, show] of Object.entries(screens)) {
      const b = el("button", { type: "button", textContent: id.replace("-", " ") });
      b.dataset.screen = id;
      b.addEventListener("click", () => { current(id); show(); });
      nav.append(b);
    }
    root.append(banner, nav, panel);
    nav.firstChild.click();
  }

  /** Marks the screen shown (also when the user view opens a grant or refund form). */
  function current(id) {
    for (const b of nav.children) {
      if (b.dataset.screen === id) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
  }

  // -- events, dead letters, unclaimed payments --

  function eventsScreen(panel, title, fixedState, help) {
    panel.replaceChildren(el("h2", { textContent: title }));
    if (help) panel.append(el("p", { className: "help", textContent: help }));
    let state = fixedState ?? "";
    if (!fixedState) {
      const select = el("select", { name: "state" });
      select.append(el("option", { value: "", textContent: "every state" }));
      for (const s of STATES) select.append(el("option", { value: s, textContent: s }));
      select.addEventListener("change", () => { state = select.value; load(null, true); });
      panel.append(el("label", { textContent: "State " }, select));
    }
    const table = eventTable();
    const more = el("button", { type: "button", textContent: "Older events", className: "more", hidden: true });
    const detail = el("div", { className: "event-detail" });
    const answer = el("pre", { className: "answer" });
    panel.append(table, more, detail, answer);
    let next = null;
    let generation = 0; // a state picked later wins over an answer still on its way
    more.addEventListener("click", () => load(next, false));

    async function load(cursor, fresh) {
      const mine = fresh ? ++generation : generation;
      const q = new URLSearchParams({ limit: "20" });
      if (state) q.set("state", state);
      if (cursor) q.set("cursor", cursor);
      const r = await api("GET", `/api/billing/admin/events?${q}`);
      if (mine !== generation) return;
      if (fresh) table.tBodies[0].replaceChildren();
      if (r.status !== 200) { showAnswer(answer, r); more.hidden = true; return; }
      answer.textContent = "";
      for (const e of r.body.events) table.tBodies[0].append(eventRow(e, () => showEvent(detail, e)));
      if (!r.body.events.length && fresh) table.tBodies[0].append(emptyRow(5, "No events."));
      next = r.body.next;
      more.hidden = !next;
    }
    load(null, true);
  }

  function eventTable() {
    const t = el("table", { className: "events" });
    const head = el("tr");
    for (const h of ["received", "id", "type", "state", "error"]) head.append(el("th", { textContent: h }));
    t.append(el("thead", {}, head), el("tbody"));
    return t;
  }

  function eventRow(e, open) {
    const tr = el("tr");
    tr.dataset.eventId = e.id;
    tr.dataset.state = e.state;
    const link = el("button", { type: "button", className: "link", textContent: e.id });
    link.addEventListener("click", open);
    tr.append(el("td", { textContent: e.received_at ?? "" }), el("td", {}, link), el("td", { textContent: e.type }),
      el("td", { textContent: e.state }), el("td", { textContent: short(e.error) }));
    return tr;
  }

  function showEvent(detail, e) {
    detail.replaceChildren(el("h3", { textContent: `Event ${e.id}` }));
    const dl = el("dl");
    for (const [k, v] of [["type", e.type], ["state", e.state], ["received", e.received_at], ["processed", e.processed_at],
      ["API version", e.api_version], ["error", e.error ?? "none"]]) {
      dl.append(el("dt", { textContent: k }), el("dd", { textContent: v ?? "" }));
    }
    dl.lastChild.className = "error";
    const replay = el("button", { type: "button", textContent: "Replay this event", className: "replay" });
    const answer = el("pre", { className: "answer" });
    replay.addEventListener("click", async () => {
      replay.disabled = true;
      showAnswer(answer, await api("POST", "/api/billing/admin/replay", { event_id: e.id }));
      replay.disabled = false;
    });
    detail.append(dl, replay, answer);
  }

  // -- reconcile --

  function reconcileScreen(panel) {
    panel.replaceChildren(el("h2", { textContent: "Reconcile" }),
      el("p", { className: "help", textContent: "Fetches Stripe's events of the window (up to 30 days) and ingests those never recorded. Safe to run twice." }));
    const since = el("input", { name: "since", placeholder: "2026-11-01T00:00:00Z (empty: Stripe's 30 days)" });
    const go = el("button", { type: "submit", textContent: "Reconcile" });
    const form = el("form", { className: "reconcile" }, el("label", { textContent: "Since " }, since), go);
    const answer = el("pre", { className: "answer" });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      go.disabled = true;
      const body = since.value.trim() ? { since: since.value.trim() } : {};
      showAnswer(answer, await api("POST", "/api/billing/admin/reconcile", body));
      go.disabled = false;
    });
    panel.append(form, answer);
  }

  // -- one user --

  function userScreen(panel, preset) {
    panel.replaceChildren(el("h2", { textContent: "User" }));
    const q = el("input", { name: "q", placeholder: "user id, cus_… or cs_…", value: preset ?? "" });
    const form = el("form", { className: "user-search" }, el("label", { textContent: "Find " }, q),
      el("button", { type: "submit", textContent: "Search" }));
    const out = el("div", { className: "user-view" });
    const answer = el("pre", { className: "answer" });
    panel.append(form, answer, out);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = q.value.trim();
      if (!v) return;
      const path = v.startsWith("cus_") ? `/api/billing/admin/users?customer_id=${encodeURIComponent(v)}`
        : v.startsWith("cs_") ? `/api/billing/admin/users?session_id=${encodeURIComponent(v)}`
          : `/api/billing/admin/users/${encodeURIComponent(v)}`;
      const r = await api("GET", path);
      out.replaceChildren();
      if (r.status !== 200) { showAnswer(answer, r); return; }
      answer.textContent = "";
      renderUser(out, r.body, panel);
    });
    if (preset) form.requestSubmit();
  }

  function renderUser(out, v, panel) {
    const a = v.account;
    out.dataset.userId = v.user_id;
    const dl = el("dl", { className: "summary" });
    for (const [k, val] of [["user", v.user_id], ["Stripe customer", v.stripe_customer_id ?? "none"], ["tier", a.tier],
      ["plan", a.plan_id ?? "none"], ["credits", String(a.credits.balance)], ["free uses left", String(a.credits.free_uses_remaining)],
      ["access until", a.credit_until ?? "none"], ["payment problem", a.payment_problem ? `invoice ${a.payment_problem.invoice_id}` : "none"]]) {
      dl.append(el("dt", { textContent: k }), el("dd", { textContent: val }));
    }
    const grantBtn = el("button", { type: "button", textContent: "Grant to this user…" });
    grantBtn.addEventListener("click", () => { current("grant"); grantScreen(panel, { user_id: v.user_id }); });
    out.append(dl, grantBtn);
    out.append(list("Subscriptions", "subscriptions", v.subscriptions, ["id", "status", "plan_id", "current_period_end", "cancel_at_period_end"]));
    const purchases = list("Purchases", "purchases", a.purchases, ["at", "plan_id", "session_id", "payment_intent_id", "amount", "status"],
      { amount: (p) => money(p.amount, p.currency) });
    for (const row of purchases.querySelectorAll("tbody tr")) {
      const p = a.purchases[Number(row.dataset.index)];
      const refund = el("button", { type: "button", textContent: "Refund…" });
      refund.addEventListener("click", () => {
        current("refund");
        const which = p.session_id ? { session_id: p.session_id } : { payment_intent_id: p.payment_intent_id };
        refundScreen(panel, { ...which, currency: p.currency });
      });
      row.append(el("td", {}, refund));
    }
    out.append(purchases);
    out.append(list("Grants", "grants", v.grants, ["at", "operator", "reason", "days", "credits", "feature", "units"]));
    // A refund is in its purchase's currency; a purchase not on this page leaves it in minor units.
    const currencyOf = (id) => (a.purchases.find((p) => p.session_id === id || p.payment_intent_id === id) || {}).currency;
    out.append(list("Refunds", "refunds", v.refunds, ["at", "purchase_id", "refund_id", "operator", "reason", "amount"],
      { amount: (r) => money(r.amount, currencyOf(r.purchase_id)) }));
    out.append(list("Events", "events", v.events, ["received_at", "id", "type", "state", "error"]));
    const cursors = [["purchases", a.purchases_next], ["grants", v.grants_next], ["refunds", v.refunds_next], ["events", v.events_next]];
    for (const [name, cursor] of cursors.filter(([, c]) => c)) {
      const older = el("button", { type: "button", className: "more", textContent: `Older ${name}` });
      older.addEventListener("click", async () => {
        const r = await api("GET", `/api/billing/admin/users/${encodeURIComponent(v.user_id)}?${name}_cursor=${encodeURIComponent(cursor)}`);
        if (r.status === 200) { out.replaceChildren(); renderUser(out, r.body, panel); }
      });
      out.append(older);
    }
  }

  /** A table of `rows`; `format` turns a column's value into text (default: the value as it came). */
  function list(title, name, rows, columns, format = {}) {
    const section = el("section", { className: `list ${name}` }, el("h3", { textContent: `${title} (${rows.length})` }));
    const t = el("table");
    const head = el("tr");
    for (const c of columns) head.append(el("th", { textContent: c.replaceAll("_", " ") }));
    const body = el("tbody");
    rows.forEach((r, i) => {
      const tr = el("tr");
      tr.dataset.index = String(i);
      for (const c of columns) {
        const text = format[c] ? format[c](r) : r[c] === null || r[c] === undefined ? "" : String(c === "error" ? short(r[c]) : r[c]);
        tr.append(el("td", { className: c, textContent: text }));
      }
      body.append(tr);
    });
    if (!rows.length) body.append(emptyRow(columns.length, "None."));
    t.append(el("thead", {}, head), body);
    section.append(t);
    return section;
  }

  // -- grant and refund: a reason, then a confirmation, then the API's answer --

  function grantScreen(panel, preset) {
    confirmForm(panel, "Grant", "grant", [
      ["user_id", "User id", preset.user_id ?? ""], ["credits", "Credits", ""], ["days", "Days of access", ""], ["reason", "Reason", ""]],
    (v) => {
      const body = { user_id: v.user_id, reason: v.reason, idempotency_key: crypto.randomUUID() };
      if (v.credits) body.credits = Number(v.credits);
      if (v.days) body.days = Number(v.days);
      return [body, `Grant ${body.credits ?? 0} credits and ${body.days ?? 0} days to ${body.user_id}, because “${body.reason}”?`];
    }, "/api/billing/admin/grant");
  }

  function refundScreen(panel, preset) {
    confirmForm(panel, "Refund", "refund", [
      ["session_id", "Checkout session (cs_…)", preset.session_id ?? ""], ["payment_intent_id", "or PaymentIntent (pi_…)", preset.payment_intent_id ?? ""],
      ["amount", "Amount in minor units (empty: what is left)", ""], ["reason", "Reason", ""]],
    (v) => {
      const body = { reason: v.reason };
      if (v.session_id) body.session_id = v.session_id;
      if (v.payment_intent_id) body.payment_intent_id = v.payment_intent_id;
      if (v.amount) body.amount = Number(v.amount);
      const what = body.session_id ?? body.payment_intent_id ?? "(no purchase)";
      // The currency is known for the purchase the form was opened from, not for one typed in.
      const same = (body.session_id ?? null) === (preset.session_id ?? null) && (body.payment_intent_id ?? null) === (preset.payment_intent_id ?? null);
      const how = body.amount === undefined ? "everything left"
        : preset.currency && same ? `${money(body.amount, preset.currency)} (${body.amount} minor units)` : `${body.amount} minor units`;
      return [body, `Refund ${how} of ${what} through Stripe, because “${body.reason}”?`];
    }, "/api/billing/admin/refund");
  }

  function confirmForm(panel, title, name, fields, build, path) {
    panel.replaceChildren(el("h2", { textContent: title }));
    const form = el("form", { className: `confirm-form ${name}` });
    const inputs = {};
    for (const [key, label, value] of fields) {
      inputs[key] = el("input", { name: key, value });
      form.append(el("label", { textContent: `${label} ` }, inputs[key]));
    }
    const review = el("button", { type: "submit", textContent: `Review ${title.toLowerCase()}` });
    form.append(review);
    const confirm = el("div", { className: "confirm", hidden: true });
    const answer = el("pre", { className: "answer" });
    panel.append(form, confirm, answer);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value.trim()]));
      if (!values.reason) {
        answer.dataset.status = "refused";
        answer.textContent = "A reason is required: it is recorded with the operation.";
        return;
      }
      const [body, question] = build(values);
      const yes = el("button", { type: "button", className: "confirm-yes", textContent: `Yes, ${title.toLowerCase()}` });
      const no = el("button", { type: "button", className: "confirm-no", textContent: "Cancel" });
      confirm.replaceChildren(el("p", { textContent: question }), yes, no);
      confirm.hidden = false;
      answer.textContent = "";
      no.addEventListener("click", () => { confirm.hidden = true; });
      yes.addEventListener("click", async () => {
        yes.disabled = no.disabled = true;
        showAnswer(answer, await api("POST", path, body));
        confirm.hidden = true;
      });
    });
  }
}

function showAnswer(pre, r) {
  pre.dataset.status = String(r.status);
  pre.textContent = `${r.status} ${JSON.stringify(r.body, null, 2)}`;
}

/** Minor units as money in their currency, with the currency's own decimals (JPY has none). */
function money(amount, currency) {
  if (typeof amount !== "number") return "";
  if (!currency) return `${amount} minor units`;
  try {
    const f = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() });
    return f.format(amount / 10 ** (f.resolvedOptions().maximumFractionDigits ?? 2));
  } catch (_) {
    return `${amount} ${currency.toUpperCase()} minor units`;
  }
}

function short(text) {
  if (!text) return "";
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function emptyRow(span, text) {
  return el("tr", {}, el("td", { colSpan: span, className: "empty", textContent: text }));
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "role") node.setAttribute("role", v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}
