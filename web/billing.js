// billing.js: the browser side of the billing API (docs/api.md, "Browsers").
//
// A dependency-free ES module with no build step: copy it next to your pages (or serve it
// from your own origin) and import it from a <script type="module">. It renders with the
// DOM API only (never innerHTML), so nothing the API returns is interpreted as markup.
//
//   import { createBilling } from "/billing.js";
//   const billing = createBilling({ apiBase: "https://api.example.com", getToken: () => auth.token() });
//   billing.renderPlans(document.querySelector("#plans"));      // pricing page
//   billing.renderReturn(document.querySelector("#notice"));    // /billing/success and /billing/cancel
//   billing.renderAccount(document.querySelector("#account"));  // account page
//   billing.buyWithElements("uses_20", document.querySelector("#pay"));  // Stripe Elements
//   await billing.loadEntitlements(); billing.hasFeature("priority_support"); // on/off, from the plan
//   billing.renderGate(document.querySelector("#exports"), "exports");  // content, or what unlocks it
//
// What it promises the user, and why:
// - A pay button only where the API says the plan can be bought online; other plans show
//   the manual-invoice copy, never a button that can only fail.
// - Each click sends a fresh Idempotency-Key: a double click is one disabled button, and a
//   deliberate second try is a new checkout rather than a replay of a failed one.
// - The return page never says "paid" on the strength of a redirect: only checkout-status
//   `fulfilled` (the webhook has been applied) is shown as done. It polls with backoff for
//   about two minutes and then says, honestly, that it is still processing.
// - A gate fails closed: the gated content is out of the page until the check allows it, and
//   a locked gate offers exactly the plan or pack the API's check names. It is a convenience
//   for the page, not the enforcement: the API's track refuses what the plan does not allow.

/**
 * @typedef {object} BillingOptions
 * @property {string} [apiBase] Origin (and optional path prefix) of the billing API, no
 *   trailing slash; "" (the default) means the page's own origin.
 * @property {() => (string | null | undefined | Promise<string | null | undefined>)} [getToken]
 *   The signed-in user's bearer token (JWT), or null when nobody is signed in.
 * @property {string} [successPath] Where Stripe returns after paying, relative to the API's
 *   PUBLIC_BASE_URL. Default "/billing/success?checkout=success".
 * @property {string} [cancelPath] Where Stripe returns after cancelling. Default
 *   "/billing/cancel?checkout=cancel".
 * @property {string} [portalReturnPath] Where the billing portal returns. Default "/billing/account".
 * @property {string} [pricingHref] Link to the pricing page, shown after a failed or
 *   cancelled checkout. Default "/billing/pricing".
 * @property {string} [accountHref] Link to the account page, shown after a fulfilled
 *   checkout. Default "/billing/account".
 * @property {string} [manualInvoiceHref] Where a buyer asks for a manual invoice (a mailto:
 *   or contact page); without it the copy says to contact you.
 * @property {string} [locale] For numbers, money and dates; default the browser's.
 * @property {number[]} [pollDelaysMs] Waits between checkout-status polls; the last repeats.
 * @property {number} [pollBudgetMs] How long the return page polls before it says "still
 *   processing". Default 120000 (two minutes).
 * @property {(url: string) => void} [navigate] How to leave for Stripe; default
 *   `location.assign`.
 * @property {typeof fetch} [fetch] The fetch to use (tests, instrumentation).
 * @property {string} [publishableKey] Your Stripe publishable key (`pk_…`), for
 *   `buyWithElements`; it is public by design, and the API never hands it out.
 * @property {string} [stripeJsUrl] Where Stripe.js is loaded from at run time (never bundled:
 *   Stripe requires its own copy). Default "https://js.stripe.com/v3/".
 * @property {string} [elementsReturnPath] Where Stripe returns after a payment method that
 *   leaves the page (3-D Secure, bank redirects). Default "/billing/account".
 * @property {Record<string, string>} [featureNames] How features are named to the user
 *   (`{ai_messages: "AI messages"}`); a feature not named shows its id with spaces.
 */

/**
 * @typedef {object} Purchase
 * @property {string} payment_intent_id
 * @property {string} client_secret
 * @property {number} amount Minor units.
 * @property {string} currency
 * @property {number} credits
 */

/**
 * @typedef {object} PlanStatus
 * @property {string} name
 * @property {"payment" | "subscription"} mode
 * @property {number} amount Minor units (cents).
 * @property {string} currency
 * @property {string} [interval] "month" | "year" for subscriptions.
 * @property {boolean} available
 * @property {"checkout_session" | "payment_link" | "manual"} via
 * @property {boolean} [per_seat] Sold per seat (checkout and changes take a quantity).
 * @property {number} [max_quantity] The most seats of a per-seat plan.
 */

/**
 * @typedef {object} BillingStatus
 * @property {boolean} stripe_configured
 * @property {boolean} checkout_enabled
 * @property {boolean} portal_enabled
 * @property {Record<string, PlanStatus>} plans
 */

/**
 * @typedef {"processing" | "paid" | "fulfilled" | "failed" | "expired" | "unknown" | "canceled"} ReturnState
 */

/**
 * @typedef {object} Account
 * @property {string} user_id
 * @property {"free" | "paid"} tier
 * @property {string | null} plan_id
 * @property {null | Subscription} subscription
 * @property {{balance: number, free_uses_remaining: number}} credits
 * @property {string | null} credit_until
 * @property {{plan_id: string, session_id: string | null, payment_intent_id?: string, amount: number,
 *   currency: string, status: "paid" | "refunded" | "failed", at: string}[]} purchases
 * @property {{code: string | null, referred_by: string | null, conversions: number}} referral
 * @property {{kind?: "payment_failed" | "action_required", invoice_id: string, invoice_url?: string | null,
 *   at: string} | null} [payment_problem]
 * @property {Record<string, FeatureState>} [features] As in `GET /api/billing/entitlements`.
 */

/**
 * One feature of the account (`GET /api/billing/entitlements`); fields that do not apply to
 * its kind are null.
 * @typedef {object} FeatureState
 * @property {"boolean" | "limit" | "metered"} type
 * @property {boolean} enabled On; a limit above 0; a metered allowance the plan grants.
 * @property {number | null} limit
 * @property {number | null} included Units of a metered allowance per period.
 * @property {number | null} used Units drawn from the allowance this period.
 * @property {number | null} remaining
 * @property {string | null} resets_at When the allowance starts again; null: never.
 * @property {"block" | "credits" | "stripe_meter" | null} overage What units beyond it do.
 */

/**
 * @typedef {object} Entitlements
 * @property {Record<string, FeatureState>} features Every feature of the catalog.
 * @property {{balance: number}} credits
 */

/**
 * `GET /api/billing/features/{id}/check`: may the user use `units` now, and if not, the plan
 * (`upgrade`) and/or the credit pack (`purchase`) that would allow it.
 * @typedef {object} FeatureCheck
 * @property {boolean} allowed
 * @property {FeatureState} feature
 * @property {{plan_id: string, name: string} | null} upgrade
 * @property {{plan_id: string, amount: number, currency: string, credits: number} | null} purchase
 */

/**
 * @typedef {object} Subscription
 * @property {string} id
 * @property {string} status
 * @property {string | null} plan_id
 * @property {string | null} current_period_end
 * @property {boolean} cancel_at_period_end
 * @property {string | null} [cancel_at]
 * @property {string | null} trial_end
 * @property {number} [quantity] Seats.
 */

/**
 * @typedef {object} Invoice
 * @property {string} id
 * @property {string | null} number
 * @property {string | null} status
 * @property {number} amount_due
 * @property {number} amount_paid
 * @property {string | null} currency
 * @property {string | null} created
 * @property {string | null} hosted_invoice_url
 * @property {string | null} invoice_pdf
 */

/** An error answered by the API (`{"error": {"code", "message"}}`) or a network failure. */
export class BillingError extends Error {
  /**
   * @param {number} status HTTP status; 0 when the API could not be reached or was not asked
   *   (a call made too early, a feature the loaded entitlements do not name).
   * @param {string} code The API's error code, "network_error", or one of billing.js's own
   *   ("entitlements_not_loaded", "unknown_feature").
   * @param {string} message Human-readable, safe to show.
   */
  constructor(status, code, message) {
    super(message);
    this.name = "BillingError";
    this.status = status;
    this.code = code;
  }
}

const NETWORK_MESSAGE =
  "Could not reach the billing service. Check your connection and try again.";
/** Subscription states that can be canceled at period end or resumed. */
const LIVE_STATUSES = ["trialing", "active", "past_due"];
const TERMINAL = new Set(["fulfilled", "failed", "expired"]);
const DEFAULT_DELAYS = [1000, 1000, 2000, 2000, 3000, 5000, 8000, 10000];
const STRIPE_JS_URL = "https://js.stripe.com/v3/";
/** @type {WeakMap<Element, Node[]>} A gate's own content, kept while the gate is locked. */
const gatedContent = new WeakMap();
/** @type {WeakMap<Element, object>} The latest renderGate of each element: an older answer is dropped. */
const gateTurns = new WeakMap();
/** @type {Map<string, Promise<any>>} Stripe.js, loaded once per page and URL. */
const stripeJsLoads = new Map();

/**
 * Loads Stripe.js from Stripe's own URL (Stripe forbids bundling or self-hosting it).
 * @param {string} url
 * @returns {Promise<any>} the global `Stripe` constructor
 */
function loadStripeJs(url) {
  const g = /** @type {any} */ (globalThis);
  if (typeof g.Stripe === "function") return Promise.resolve(g.Stripe);
  let loading = stripeJsLoads.get(url);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.addEventListener("load", () =>
        typeof g.Stripe === "function" ? resolve(g.Stripe) : reject(new Error("no Stripe global")));
      script.addEventListener("error", () => reject(new Error("Stripe.js did not load")));
      document.head.append(script);
    });
    // A failed load (offline, blocked) may be retried by the next purchase.
    loading.catch(() => stripeJsLoads.delete(url));
    stripeJsLoads.set(url, loading);
  }
  return loading;
}

/** A fresh idempotency key; randomUUID needs a secure context, getRandomValues does not. */
export function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") {
    try {
      return crypto.randomUUID();
    } catch (_) {
      // Not a secure context: fall through.
    }
  }
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Creates a client bound to one API and one way of getting the user's token.
 * @param {BillingOptions} [options]
 */
export function createBilling(options = {}) {
  const apiBase = (options.apiBase || "").replace(/\/+$/, "");
  const getToken = options.getToken || (() => null);
  const doFetch = options.fetch || globalThis.fetch.bind(globalThis);
  const navigate = options.navigate || ((url) => window.location.assign(url));
  const successPath = options.successPath || "/billing/success?checkout=success";
  const cancelPath = options.cancelPath || "/billing/cancel?checkout=cancel";
  const portalReturnPath = options.portalReturnPath || "/billing/account";
  const pricingHref = options.pricingHref || "/billing/pricing";
  const accountHref = options.accountHref || "/billing/account";
  const delays = options.pollDelaysMs && options.pollDelaysMs.length ? options.pollDelaysMs : DEFAULT_DELAYS;
  const budgetMs = options.pollBudgetMs ?? 120000;
  const fmt = formatters(options.locale);
  /** @type {Promise<BillingStatus> | null} */
  let statusOnce = null;
  /** @type {Promise<Entitlements> | null} */
  let entitlementsOnce = null;
  /** @type {Entitlements | null} The last entitlements loaded, for hasFeature. */
  let entitlements = null;
  /** @type {Map<HTMLElement, {featureId: string, opts: {units?: number}}>} This client's gates, checked again after a plan switch. */
  const gates = new Map();

  /**
   * One API call; resolves with the JSON body or rejects with a BillingError.
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, auth?: boolean, headers?: Record<string, string>}} [opts]
   */
  async function call(method, path, opts = {}) {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json", ...(opts.headers || {}) };
    if (opts.auth) {
      const token = await getToken();
      if (!token) throw new BillingError(401, "unauthenticated", "Sign in to continue.");
      headers.Authorization = `Bearer ${token}`;
    }
    /** @type {RequestInit} */
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await doFetch(apiBase + path, init);
    } catch (_) {
      // A blocked CORS request looks exactly like this too: the browser hides which it was.
      throw new BillingError(0, "network_error", NETWORK_MESSAGE);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const err = body && body.error;
      const message =
        (err && typeof err.message === "string" && err.message) ||
        (response.status === 401 ? "Sign in to continue." : `The billing service answered ${response.status}.`);
      throw new BillingError(response.status, (err && err.code) || "http_error", message);
    }
    return body;
  }

  /**
   * Readiness and the plan catalog (`GET /api/billing/status`); fetched once per client.
   * @returns {Promise<BillingStatus>}
   */
  function loadStatus() {
    if (!statusOnce) {
      statusOnce = call("GET", "/api/billing/status");
      statusOnce.catch(() => {
        statusOnce = null; // a failed read may be retried by the next caller
      });
    }
    return statusOnce;
  }

  /** @returns {Promise<Account>} */
  function loadAccount() {
    return call("GET", "/api/billing/account", { auth: true });
  }

  /**
   * The signed-in user's features (`GET /api/billing/entitlements`), fetched once per client
   * and kept for `hasFeature`; `{refresh: true}` reads them again (after a sign-in or a
   * purchase).
   * @param {{refresh?: boolean}} [opts]
   * @returns {Promise<Entitlements>}
   */
  function loadEntitlements(opts = {}) {
    if (!entitlementsOnce || opts.refresh) {
      const loading = call("GET", "/api/billing/entitlements", { auth: true });
      entitlementsOnce = loading;
      loading.then(
        (e) => {
          if (entitlementsOnce === loading) entitlements = e;
        },
        () => {
          if (entitlementsOnce !== loading) return;
          // Retried by the next caller; until then hasFeature answers nothing rather than what
          // a previous user (before a sign-out) had.
          entitlementsOnce = null;
          entitlements = null;
        },
      );
    }
    return entitlementsOnce;
  }

  /**
   * Whether the loaded entitlements have `featureId` on: a boolean feature on, a limit above
   * 0, a metered allowance the plan grants (how much is left: `remaining`; whether `n` units
   * may be used now: `checkFeature` or `renderGate`). Synchronous; throws a BillingError
   * `entitlements_not_loaded` before `loadEntitlements()` has resolved, and `unknown_feature`
   * for an id the catalog does not name (a typo is an error, not a silent "no").
   * @param {string} featureId
   * @returns {boolean}
   */
  function hasFeature(featureId) {
    if (!entitlements) {
      throw new BillingError(0, "entitlements_not_loaded",
        `hasFeature("${featureId}") was called before the entitlements were loaded: await loadEntitlements() first.`);
    }
    const feature = Object.prototype.hasOwnProperty.call(entitlements.features, featureId)
      ? entitlements.features[featureId]
      : null;
    if (!feature) {
      throw new BillingError(0, "unknown_feature",
        `The catalog names no feature "${featureId}" (it has ${Object.keys(entitlements.features).join(", ")}).`);
    }
    return feature.enabled === true;
  }

  /**
   * May the signed-in user use `units` of a feature now (`GET
   * /api/billing/features/{id}/check`); consumes nothing.
   * @param {string} featureId
   * @param {{units?: number}} [opts]
   * @returns {Promise<FeatureCheck>}
   */
  function checkFeature(featureId, opts = {}) {
    const units = opts.units && opts.units !== 1 ? `?units=${encodeURIComponent(String(opts.units))}` : "";
    return call("GET", `/api/billing/features/${encodeURIComponent(featureId)}/check${units}`, { auth: true });
  }

  /**
   * @param {string} sessionId
   * @returns {Promise<{session_id: string, state: ReturnState}>}
   */
  function checkoutStatus(sessionId) {
    return call("GET", `/api/billing/checkout-status?session_id=${encodeURIComponent(sessionId)}`);
  }

  /**
   * Starts checkout for one plan and leaves for Stripe.
   * @param {string} planId
   * @param {{quantity?: number}} [opts]
   * @returns {Promise<{url: string, session_id: string | null, via: string}>}
   */
  async function startCheckout(planId, opts = {}) {
    /** @type {Record<string, unknown>} */
    const body = { plan_id: planId, success_path: successPath, cancel_path: cancelPath };
    if (opts.quantity && opts.quantity !== 1) body.quantity = opts.quantity;
    const started = await call("POST", "/api/billing/checkout", {
      auth: true,
      body,
      headers: { "Idempotency-Key": newIdempotencyKey() },
    });
    if (started.session_id) {
      try {
        // The cancel URL carries no session id; the cancel page may still want it.
        sessionStorage.setItem("billing:last_session_id", started.session_id);
      } catch (_) {
        // Storage disabled: nothing depends on it.
      }
    }
    navigate(started.url);
    return started;
  }

  /**
   * Ends the signed-in user's subscription at its period end (`POST
   * /api/billing/subscription/cancel`); the account shows it once Stripe confirms.
   * @returns {Promise<{subscription: Subscription}>}
   */
  function cancelSubscription() {
    return call("POST", "/api/billing/subscription/cancel", { auth: true, body: {} });
  }

  /**
   * Undoes a cancellation before the period ends (`POST /api/billing/subscription/resume`).
   * @returns {Promise<{subscription: Subscription}>}
   */
  function resumeSubscription() {
    return call("POST", "/api/billing/subscription/resume", { auth: true, body: {} });
  }

  /**
   * Switches the subscription to another plan and/or number of seats (`POST
   * /api/billing/subscription`).
   * @param {{plan_id?: string, quantity?: number}} change
   * @returns {Promise<{subscription: Subscription}>}
   */
  function changeSubscription(change) {
    return call("POST", "/api/billing/subscription", {
      auth: true,
      body: change,
      headers: { "Idempotency-Key": newIdempotencyKey() },
    });
  }

  /**
   * What a plan or seat change would cost now (`GET /api/billing/subscription/preview`).
   * @param {{plan_id?: string, quantity?: number}} change
   * @returns {Promise<{amount_due: number, currency: string, lines: {description: string | null, amount: number}[],
   *   next_payment_at: string | null}>}
   */
  function previewChange(change) {
    const q = new URLSearchParams();
    if (change.plan_id) q.set("plan_id", change.plan_id);
    if (change.quantity) q.set("quantity", String(change.quantity));
    return call("GET", `/api/billing/subscription/preview?${q}`, { auth: true });
  }

  /**
   * One page of the signed-in user's invoices, newest first (`GET /api/billing/invoices`).
   * @param {{limit?: number, startingAfter?: string}} [opts]
   * @returns {Promise<{invoices: Invoice[], has_more: boolean}>}
   */
  function listInvoices(opts = {}) {
    const q = new URLSearchParams();
    if (opts.limit) q.set("limit", String(opts.limit));
    if (opts.startingAfter) q.set("starting_after", opts.startingAfter);
    const query = q.toString();
    return call("GET", `/api/billing/invoices${query ? `?${query}` : ""}`, { auth: true });
  }

  /** Opens the Stripe billing portal for the signed-in user. */
  async function openPortal() {
    const { url } = await call("POST", "/api/billing/portal", {
      auth: true,
      body: { return_path: portalReturnPath },
    });
    navigate(url);
    return url;
  }

  /**
   * Buys a credit pack without leaving the page: creates the PaymentIntent on the server
   * (`POST /api/billing/purchases`, a fresh Idempotency-Key), loads Stripe.js from Stripe at
   * run time, mounts the Payment Element and a pay button in `mountEl`, and confirms the
   * PaymentIntent when the buyer clicks. Credits land when Stripe's webhook has been applied
   * (read them with `loadAccount()`); a confirmed payment is not yet a granted one.
   * `data-billing-state` on `mountEl`: `creating`, `ready`, `confirming`, then `succeeded`,
   * `processing`, `failed`, or `unavailable` (Stripe.js could not load).
   * Resolves with the server's purchase once the form is mounted; rejects with a BillingError.
   * @param {string} planId A credit pack.
   * @param {HTMLElement} mountEl
   * @param {{quantity?: number}} [opts]
   * @returns {Promise<Purchase>}
   */
  async function buyWithElements(planId, mountEl, opts = {}) {
    const state = (/** @type {string} */ s) => mountEl.setAttribute("data-billing-state", s);
    const notice = h("p", { class: "billing-notice", role: "status" });
    mountEl.replaceChildren(notice);
    state("creating");
    /** @type {Record<string, unknown>} */
    const body = { plan_id: planId };
    if (opts.quantity && opts.quantity !== 1) body.quantity = opts.quantity;
    /** @type {Purchase} */
    let purchase;
    try {
      purchase = await call("POST", "/api/billing/purchases", {
        auth: true,
        body,
        headers: { "Idempotency-Key": newIdempotencyKey() },
      });
    } catch (e) {
      state("failed");
      notice.textContent = messageOf(e);
      throw e;
    }
    mountEl.setAttribute("data-payment-intent", purchase.payment_intent_id);
    /** @type {any} */
    let stripe;
    try {
      if (!options.publishableKey) throw new Error("no publishable key");
      const Stripe = await loadStripeJs(options.stripeJsUrl || STRIPE_JS_URL);
      stripe = Stripe(options.publishableKey);
    } catch (_) {
      state("unavailable");
      notice.textContent = "The payment form could not be loaded. Check your connection and try again.";
      throw new BillingError(0, "stripe_js_unavailable", notice.textContent);
    }
    const elements = stripe.elements({ clientSecret: purchase.client_secret });
    const form = h("div", { class: "billing-elements" });
    const pay = h("button", { type: "button", class: "billing-pay" },
      `Pay ${fmt.money(purchase.amount, purchase.currency)}`);
    pay.dataset.label = pay.textContent;
    mountEl.replaceChildren(form, pay, notice);
    elements.create("payment").mount(form);
    state("ready");
    pay.addEventListener("click", async () => {
      pay.disabled = true;
      pay.setAttribute("aria-busy", "true");
      state("confirming");
      notice.textContent = "";
      const returnUrl = new URL(options.elementsReturnPath || "/billing/account", location.href).href;
      const result = await stripe.confirmPayment({
        elements,
        confirmParams: { return_url: returnUrl },
        redirect: "if_required",
      });
      if (result.error) {
        state("failed");
        notice.textContent = result.error.message || "The payment did not go through.";
        resetButton(pay);
        return;
      }
      const status = result.paymentIntent && result.paymentIntent.status;
      state(status === "succeeded" ? "succeeded" : "processing");
      notice.textContent = status === "succeeded"
        ? `Paid. ${fmt.number(purchase.credits)} credits arrive in your account in a moment.`
        : "Your payment is processing; the credits arrive when it completes.";
    });
    return purchase;
  }

  /**
   * One card per plan. Available plans get a pay button; the others the manual-invoice copy.
   * @param {HTMLElement} el
   * @param {{only?: string[]}} [opts] Plan ids to show, in this order (default: all).
   */
  async function renderPlans(el, opts = {}) {
    el.setAttribute("aria-busy", "true");
    el.replaceChildren(h("p", { class: "billing-loading" }, "Loading plans…"));
    let status;
    try {
      status = await loadStatus();
    } catch (e) {
      el.replaceChildren(h("p", { class: "billing-error", role: "alert" }, messageOf(e)));
      el.removeAttribute("aria-busy");
      return;
    }
    const ids = opts.only || sortedPlanIds(status.plans);
    const cards = ids.filter((id) => status.plans[id]).map((id) => planCard(id, status.plans[id]));
    el.replaceChildren(...cards);
    el.removeAttribute("aria-busy");
    // Back from Stripe through the back button: the page may come from the bfcache with
    // the button still disabled.
    window.addEventListener("pageshow", (ev) => {
      if (ev.persisted) el.querySelectorAll("button.billing-pay").forEach((b) => resetButton(/** @type {HTMLButtonElement} */ (b)));
    });
  }

  /**
   * @param {string} id
   * @param {PlanStatus} plan
   */
  function planCard(id, plan) {
    const price = fmt.money(plan.amount, plan.currency);
    const per = plan.mode === "subscription" && plan.interval ? ` / ${plan.interval}` : "";
    const card = h(
      "article",
      { class: "billing-plan", "data-plan-id": id, "data-billing-via": plan.available ? plan.via : "manual" },
      h("h3", { class: "billing-plan-name" }, plan.name),
      h("p", { class: "billing-price" }, price, per ? h("span", { class: "billing-interval" }, per) : ""),
    );
    if (plan.available && plan.via !== "manual") {
      const label = plan.mode === "subscription" ? "Subscribe" : `Pay ${price}`;
      // A per-seat plan is bought for a number of seats, 1 to its max_quantity.
      const seats = plan.per_seat
        ? h("input", { type: "number", name: "seats", min: "1", max: String(plan.max_quantity || 100), value: "1", "data-billing-field": "seats_input" })
        : null;
      if (seats) card.append(h("label", { class: "billing-seats" }, "Seats ", seats));
      card.append(...checkoutButton(id, label, {}, () => (seats ? Number.parseInt(seats.value, 10) || 1 : 1)));
    } else {
      card.append(h("p", { class: "billing-manual" }, "Online payment is not available for this plan right now. ", manualAsk()));
    }
    return card;
  }

  /** The manual-invoice copy's call to action: your contact link, or words. */
  function manualAsk() {
    return options.manualInvoiceHref
      ? h("a", { href: options.manualInvoiceHref, class: "billing-manual-link" }, "Ask for an invoice")
      : "Contact us and we will send you an invoice.";
  }

  /**
   * A pay button that starts checkout for one plan and leaves for Stripe, and the line under
   * it that shows a refusal. Disabled until the API answers; a fresh key per click.
   * @param {string} planId
   * @param {string} label
   * @param {Record<string, string>} [attrs]
   * @param {() => number} [quantity]
   * @param {(e: unknown) => boolean} [refused] Takes over a refusal it knows (true), else it is shown.
   * @returns {[HTMLButtonElement, HTMLElement]}
   */
  function checkoutButton(planId, label, attrs = {}, quantity = () => 1, refused = () => false) {
    const error = h("p", { class: "billing-error", role: "alert", hidden: "" });
    const button = h("button", { type: "button", class: "billing-pay", "data-label": label, ...attrs }, label);
    button.addEventListener("click", async () => {
      if (button.disabled) return;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = "Redirecting to checkout…";
      error.hidden = true;
      try {
        await startCheckout(planId, { quantity: quantity() });
      } catch (e) {
        if (refused(e)) return;
        error.textContent = messageOf(e);
        error.hidden = false;
        resetButton(button);
      }
    });
    return [button, error];
  }

  /**
   * Gates `el` on a feature. While the check allows `units` of it, `el` shows its own content;
   * otherwise, in its place, why not and what the check names to unlock it: the plan
   * (`upgrade`) and/or the credit pack (`purchase`), each a button that starts checkout. Until
   * the check answers, and after an error (shown in `el`), the content stays out of the page.
   * `data-billing-gate` on `el`: `checking`, `allowed`, `locked` or `error`. Call it again after
   * a sign-in or a track to check again. Resolves with the check, or null after an error.
   * @param {HTMLElement} el
   * @param {string} featureId
   * @param {{units?: number}} [opts]
   * @returns {Promise<FeatureCheck | null>}
   */
  async function renderGate(el, featureId, opts = {}) {
    if (!gatedContent.has(el)) gatedContent.set(el, Array.from(el.childNodes));
    const content = /** @type {Node[]} */ (gatedContent.get(el));
    const turn = {};
    gateTurns.set(el, turn);
    gates.set(el, { featureId, opts });
    el.dataset.billingFeature = featureId;
    el.dataset.billingGate = "checking";
    el.setAttribute("aria-busy", "true");
    el.replaceChildren(h("p", { class: "billing-loading" }, "Checking your plan…"));
    /** @type {FeatureCheck} */
    let check;
    /** @type {BillingStatus | null} */
    let status = null;
    try {
      [check, status] = await Promise.all([checkFeature(featureId, opts), loadStatus().catch(() => null)]);
    } catch (e) {
      if (gateTurns.get(el) !== turn) return null;
      el.dataset.billingGate = "error";
      el.replaceChildren(h("p", { class: "billing-error", role: "alert" }, messageOf(e)));
      el.removeAttribute("aria-busy");
      gateEvent(el, featureId, null);
      return null;
    }
    if (gateTurns.get(el) !== turn) return check; // a later call renders this element
    if (check.allowed) {
      el.replaceChildren(...content);
      el.dataset.billingGate = "allowed";
    } else {
      el.replaceChildren(gatePanel(el, featureId, opts, check, status));
      el.dataset.billingGate = "locked";
    }
    el.removeAttribute("aria-busy");
    gateEvent(el, featureId, check);
    return check;
  }

  /**
   * Tells the page a gate has answered (a `billing:gate` event that bubbles from `el`, with
   * `detail` `{featureId, state, check}`), so the rest of the page can follow, e.g. after a
   * plan switch opened it.
   * @param {HTMLElement} el
   * @param {string} featureId
   * @param {FeatureCheck | null} check
   */
  function gateEvent(el, featureId, check) {
    el.dispatchEvent(new CustomEvent("billing:gate", { bubbles: true, detail: { featureId, state: el.dataset.billingGate, check } }));
  }

  /**
   * A locked gate: why the feature is not allowed now, and the offers the check names.
   * @param {HTMLElement} el
   * @param {string} featureId
   * @param {{units?: number}} opts
   * @param {FeatureCheck} check
   * @param {BillingStatus | null} status
   */
  function gatePanel(el, featureId, opts, check, status) {
    const units = opts.units || 1;
    const name = featureName(featureId);
    const f = check.feature;
    let reason = `${name}: not included in your plan.`;
    if (f.enabled && f.type === "limit" && f.limit !== null) {
      reason = `${name}: your plan allows ${fmt.number(f.limit)}, and this needs ${fmt.number(units)}.`;
    } else if (f.enabled && f.type === "metered" && f.included !== null) {
      reason = `${name}: ${fmt.number(f.remaining ?? 0)} of ${fmt.number(f.included)} left`;
      if (units > 1) reason += `, and this needs ${fmt.number(units)}`;
      if (f.overage === "credits") reason += ", and your credits do not cover more";
      reason += f.resets_at ? `. More on ${fmt.date(f.resets_at)}.` : ".";
    }
    /** @type {Node[]} */
    const offers = [];
    if (check.upgrade) {
      const plan = status && status.plans[check.upgrade.plan_id];
      const price = plan ? ` (${fmt.money(plan.amount, plan.currency)}${plan.interval ? ` / ${plan.interval}` : ""})` : "";
      const upgrade = check.upgrade;
      // A subscriber is not sent to a second subscription: checkout refuses (409), and the
      // offer becomes a switch of the live one, previewed first.
      const refused = (/** @type {unknown} */ e) => {
        if (!(e instanceof BillingError && e.status === 409 && e.code === "already_subscribed")) return false;
        switchOffer(wrapper, upgrade.plan_id, upgrade.name, () => untilGateOpens(el, featureId, opts));
        return true;
      };
      const wrapper = offer("upgrade", upgrade.plan_id, `Upgrade to ${upgrade.name}${price}`, plan, refused);
      offers.push(wrapper);
    }
    if (check.purchase) {
      const p = check.purchase;
      const plan = status && status.plans[p.plan_id];
      offers.push(offer("purchase", p.plan_id, `Buy ${fmt.number(p.credits)} credits for ${fmt.money(p.amount, p.currency)}`, plan));
    }
    if (!offers.length) offers.push(h("p", { class: "billing-manual" }, "No plan offers more of it online. Contact us."));
    return h("div", { class: "billing-gate" }, h("p", { class: "billing-gate-reason" }, reason), ...offers);
  }

  /**
   * One way to unlock a gate: a checkout button, or the manual-invoice copy when the plan
   * cannot be bought online now.
   * @param {"upgrade" | "purchase"} kind
   * @param {string} planId
   * @param {string} label
   * @param {PlanStatus | null | undefined} plan
   * @param {(e: unknown) => boolean} [refused]
   */
  function offer(kind, planId, label, plan, refused) {
    const attrs = { "data-billing-action": kind, "data-plan-id": planId };
    if (plan && (!plan.available || plan.via === "manual")) {
      return h("p", { class: "billing-manual", ...attrs }, `${label}: online payment is not available right now. `, manualAsk());
    }
    return h("div", { class: "billing-gate-offer" }, ...checkoutButton(planId, label, attrs, undefined, refused));
  }

  /**
   * The upgrade of a subscriber: what switching the live subscription to `planId` costs now
   * (Stripe's invoice preview; nothing changes), then a "Switch to …" button that applies it.
   * @param {HTMLElement} wrapper The offer, replaced by this step.
   * @param {string} planId
   * @param {string} name
   * @param {() => Promise<unknown>} switched Follows the gate until Stripe's update shows.
   */
  async function switchOffer(wrapper, planId, name, switched) {
    const notice = h("p", { class: "billing-notice", role: "status", "data-billing-field": "switch_preview" },
      `You already have a subscription: it can be switched to ${name}. Asking Stripe what that costs…`);
    wrapper.replaceChildren(notice);
    let p;
    try {
      p = await previewChange({ plan_id: planId });
    } catch (e) {
      notice.replaceChildren(messageOf(e));
      return;
    }
    const when = p.next_payment_at ? ` on ${fmt.date(p.next_payment_at)}` : "";
    notice.replaceChildren(`If you switch to ${name}, your next invoice is ${fmt.money(p.amount_due, p.currency)}${when}.`);
    const label = `Switch to ${name}`;
    const go = h("button", { type: "button", class: "billing-pay", "data-billing-action": "switch", "data-plan-id": planId, "data-label": label }, label);
    go.addEventListener("click", async () => {
      if (go.disabled) return;
      go.disabled = true;
      go.setAttribute("aria-busy", "true");
      try {
        await changeSubscription({ plan_id: planId });
      } catch (e) {
        notice.replaceChildren(messageOf(e));
        resetButton(go);
        return;
      }
      go.remove();
      notice.replaceChildren(`Switched to ${name}. Waiting for Stripe to confirm…`);
      await switched();
    });
    wrapper.append(go);
  }

  /**
   * Checks the feature again (a few times, a second or two apart) until it is allowed, then
   * renders the gate open; stops quietly when it never is (the notice says what was asked).
   * @param {HTMLElement} el
   * @param {string} featureId
   * @param {{units?: number}} opts
   */
  async function untilGateOpens(el, featureId, opts) {
    const turn = gateTurns.get(el);
    for (const wait of [500, 1000, 1500, 2000, 3000, 5000]) {
      await sleep(wait);
      if (gateTurns.get(el) !== turn) return; // rendered again meanwhile
      try {
        if (!(await checkFeature(featureId, opts)).allowed) continue;
        // The plan changed: what hasFeature answers and every other gate change with it.
        if (entitlementsOnce) await loadEntitlements({ refresh: true }).catch(() => null);
        for (const [gate, g] of gates) {
          if (gate === el) continue;
          if (gate.isConnected) renderGate(gate, g.featureId, g.opts);
          else gates.delete(gate);
        }
        return renderGate(el, featureId, opts);
      } catch (_) {
        // A failed read is retried by the next round.
      }
    }
  }

  /** @param {string} id */
  function featureName(id) {
    const named = options.featureNames && Object.prototype.hasOwnProperty.call(options.featureNames, id)
      ? options.featureNames[id]
      : "";
    return named || id.charAt(0).toUpperCase() + id.slice(1).replace(/_/g, " ");
  }

  /**
   * The account's features: on/off, a limit, or what is left of an allowance and when it
   * starts again.
   * @param {Record<string, FeatureState>} features
   */
  function featuresTable(features) {
    return h(
      "table",
      { class: "billing-features", "data-billing-field": "features" },
      h("caption", {}, "Features"),
      h("thead", {}, h("tr", {}, h("th", {}, "Feature"), h("th", {}, "You have"), h("th", {}, "Resets"))),
      h(
        "tbody",
        {},
        ...Object.entries(features).map(([id, f]) =>
          h("tr", { "data-feature-id": id, "data-enabled": String(f.enabled) },
            h("td", {}, featureName(id)),
            h("td", { "data-billing-field": "feature_value" }, featureValue(f)),
            h("td", { "data-billing-field": "feature_resets" }, f.type === "metered" && f.enabled ? (f.resets_at ? fmt.date(f.resets_at) : "Never") : "—"))),
      ),
    );
  }

  /** @param {FeatureState} f */
  function featureValue(f) {
    if (f.type === "boolean") return f.enabled ? "On" : "Off";
    if (f.type === "limit") return f.enabled && f.limit !== null ? `Up to ${fmt.number(f.limit)}` : "Not included";
    if (!f.enabled || f.included === null) return "Not included";
    const left = `${fmt.number(f.remaining ?? 0)} of ${fmt.number(f.included)} left`;
    if (f.overage === "credits") return `${left}, then credits`;
    if (f.overage === "stripe_meter") return `${left}, then billed per unit`;
    return left;
  }

  /**
   * The return page's notice: reads `checkout=success|cancel` and `session_id` from the URL,
   * shows a baseline state at once, then follows checkout-status until it is final or about
   * two minutes have passed. Resolves with the last state shown.
   * @param {HTMLElement} el
   * @param {{search?: string}} [opts] The query string to read (default the page's).
   * @returns {Promise<ReturnState>}
   */
  async function renderReturn(el, opts = {}) {
    const params = new URLSearchParams(opts.search ?? window.location.search);
    const sessionId = params.get("session_id") || "";
    const outcome = params.get("checkout") || (sessionId ? "success" : el.dataset.checkout || "");
    el.classList.add("billing-notice");
    el.setAttribute("role", "status");
    el.setAttribute("aria-live", "polite");

    if (outcome === "cancel") {
      showReturn(el, "canceled", sessionId);
      return "canceled";
    }
    if (!sessionId || !/^cs_[A-Za-z0-9_]+$/.test(sessionId)) {
      showReturn(el, "unknown", sessionId);
      return "unknown";
    }
    /** @type {ReturnState} */
    let state = "processing";
    showReturn(el, state, sessionId);
    el.dataset.billingPolling = "on";
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await checkoutStatus(sessionId);
        if (answer && typeof answer.state === "string") state = /** @type {ReturnState} */ (answer.state);
      } catch (e) {
        if (e instanceof BillingError && e.status === 400) {
          state = "unknown";
          showReturn(el, state, sessionId);
          break;
        }
        // Network or 5xx: keep the state we had and try again after the next wait.
      }
      showReturn(el, state, sessionId);
      if (TERMINAL.has(state)) break;
      const wait = delays[Math.min(attempt, delays.length - 1)];
      if (Date.now() - started + wait > budgetMs) {
        showStillProcessing(el, state);
        break;
      }
      await sleep(wait);
    }
    el.dataset.billingPolling = "stopped";
    return state;
  }

  /**
   * @param {HTMLElement} el
   * @param {ReturnState} state
   * @param {string} sessionId
   */
  function showReturn(el, state, sessionId) {
    el.dataset.billingState = state;
    const copy = {
      processing: ["Confirming your payment…", "Stripe is confirming your payment. This page updates by itself; please keep it open for a moment."],
      paid: ["Payment under way", "Stripe has your checkout and the payment is still being confirmed by your bank or payment method. We will add your purchase as soon as it clears."],
      fulfilled: ["Payment confirmed", "Thank you! Your purchase is on your account."],
      failed: ["Payment failed", "The payment did not go through and nothing was added. You can try again with another payment method."],
      expired: ["Checkout expired", "This checkout expired before it was completed. Nothing was charged."],
      unknown: ["We can't find this checkout", sessionId
        ? "We have no record of this checkout yet. If you paid, your account is updated as soon as Stripe confirms it, and we will email you."
        : "This page was opened without a checkout to look up. If you paid, your account is updated as soon as Stripe confirms it."],
      canceled: ["Checkout canceled", "You left checkout before paying. Nothing was charged."],
    }[state] || ["Checking your payment…", ""];
    /** @type {(Node | string)[]} */
    const children = [h("strong", { class: "billing-notice-title" }, copy[0]), h("p", {}, copy[1])];
    if (state === "fulfilled") children.push(h("p", {}, h("a", { href: accountHref }, "See your account")));
    if (state === "failed" || state === "expired" || state === "canceled") {
      children.push(h("p", {}, h("a", { href: pricingHref }, "Back to plans")));
    }
    el.replaceChildren(...children);
  }

  /**
   * @param {HTMLElement} el
   * @param {ReturnState} state
   */
  function showStillProcessing(el, state) {
    el.dataset.billingState = state;
    el.replaceChildren(
      h("strong", { class: "billing-notice-title" }, "Still processing"),
      h("p", {}, "Your payment is taking longer than usual to confirm. You can close this page: we'll email you as soon as it is done, and your account will show it."),
      h("p", {}, h("a", { href: accountHref }, "See your account")),
    );
  }

  /**
   * The signed-in user's billing: tier, credits, subscription, features (what is left and
   * when it resets), purchases, referral code, payment problem, and a "Manage billing" button
   * that opens the Stripe billing portal.
   * @param {HTMLElement} el
   */
  async function renderAccount(el) {
    el.setAttribute("aria-busy", "true");
    el.replaceChildren(h("p", { class: "billing-loading" }, "Loading your account…"));
    let account;
    /** @type {BillingStatus | null} */
    let status = null;
    try {
      [account, status] = await Promise.all([loadAccount(), loadStatus().catch(() => null)]);
    } catch (e) {
      el.replaceChildren(h("p", { class: "billing-error", role: "alert" }, messageOf(e)));
      el.removeAttribute("aria-busy");
      return;
    }
    const planName = (/** @type {string | null | undefined} */ id) =>
      (id && status && status.plans[id] && status.plans[id].name) || id || "";
    const rows = [
      row("tier", "Plan", account.tier === "paid" ? `Paid${account.plan_id ? ` (${planName(account.plan_id)})` : ""}` : "Free"),
      row("balance", "Credits", fmt.number(account.credits.balance)),
      row("free_uses_remaining", "Free uses left", fmt.number(account.credits.free_uses_remaining)),
    ];
    if (account.credit_until) rows.push(row("credit_until", "Paid access until", fmt.date(account.credit_until)));
    const sub = account.subscription;
    if (sub) {
      const ends = sub.cancel_at || (sub.cancel_at_period_end ? sub.current_period_end : null);
      let text = `${planName(sub.plan_id) || "Subscription"}: ${sub.status.replace(/_/g, " ")}`;
      if (sub.quantity && sub.quantity > 1) text += `, ${fmt.number(sub.quantity)} seats`;
      if (sub.status === "trialing" && sub.trial_end) text += `, trial ends ${fmt.date(sub.trial_end)}`;
      else if (ends) text += `, ends ${fmt.date(ends)}`;
      else if (sub.current_period_end) text += `, renews ${fmt.date(sub.current_period_end)}`;
      rows.push(row("subscription", "Subscription", text));
    } else {
      rows.push(row("subscription", "Subscription", "None"));
    }
    rows.push(row("referral", "Your referral code", account.referral.code || "—"));
    if (account.referral.referred_by) rows.push(row("referred_by", "Referred by", account.referral.referred_by));
    rows.push(row("conversions", "Friends who paid", fmt.number(account.referral.conversions)));

    /** @type {(Node | string)[]} */
    const children = [];
    if (account.payment_problem) children.push(paymentProblem(account.payment_problem));
    children.push(h("dl", { class: "billing-account-facts" }, ...rows.flat()));
    if (sub && LIVE_STATUSES.includes(sub.status)) {
      const plan = sub.plan_id && status ? status.plans[sub.plan_id] : null;
      if (plan && plan.per_seat) children.push(seatControls(el, sub, plan));
      children.push(subscriptionActions(el, sub));
    }
    if (account.features && Object.keys(account.features).length) children.push(featuresTable(account.features));
    children.push(purchasesTable(account.purchases, planName));
    const invoices = h("section", { class: "billing-invoices", "data-billing-field": "invoices" });
    children.push(invoices);
    renderInvoices(invoices);

    const portalError = h("p", { class: "billing-error", role: "alert", hidden: "" });
    if (!status || status.portal_enabled) {
      const button = h("button", { type: "button", class: "billing-portal", "data-label": "Manage billing" }, "Manage billing");
      button.addEventListener("click", async () => {
        if (button.disabled) return;
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
        button.textContent = "Opening billing portal…";
        portalError.hidden = true;
        try {
          await openPortal();
        } catch (e) {
          portalError.textContent =
            e instanceof BillingError && e.code === "no_customer"
              ? "There is nothing to manage yet: your billing details appear here after your first purchase."
              : messageOf(e);
          portalError.hidden = false;
          resetButton(button);
        }
      });
      children.push(h("p", { class: "billing-actions" }, button), portalError);
    } else {
      children.push(h("p", { class: "billing-manual" }, "Online billing management is not available right now. Contact us for changes to your billing."));
    }
    el.replaceChildren(...children);
    el.removeAttribute("aria-busy");
    el.dataset.billingUser = account.user_id;
  }

  /**
   * What the customer must do about an unpaid invoice, with the link to Stripe's hosted
   * invoice page: confirm a payment that needs them (3-D Secure), or pay with another method.
   * @param {NonNullable<Account["payment_problem"]>} problem
   */
  function paymentProblem(problem) {
    const action = problem.kind === "action_required";
    const text = action
      ? `Your payment of ${fmt.date(problem.at)} needs your confirmation with your bank. `
      : `Your last payment failed (${fmt.date(problem.at)}). `;
    const label = action ? "Confirm your payment" : "Update your payment method";
    const link = problem.invoice_url
      ? h("a", { href: problem.invoice_url, class: "billing-problem-action", "data-billing-action": action ? "confirm_payment" : "update_payment_method", rel: "noopener" }, label)
      : `${label} under Manage billing to keep your subscription.`;
    return h("p", { class: "billing-problem", role: "alert", "data-billing-field": "payment_problem", "data-kind": problem.kind || "payment_failed" }, text, link);
  }

  /**
   * Cancel at period end, or resume, for a live subscription. The account changes when
   * Stripe's update has been applied: after a click the section says what was asked and the
   * account is read again (bounded) until it shows it.
   * @param {HTMLElement} accountEl
   * @param {Subscription} sub
   */
  function subscriptionActions(accountEl, sub) {
    const ending = Boolean(sub.cancel_at || sub.cancel_at_period_end);
    const section = h("div", { class: "billing-subscription-actions", "data-billing-field": "subscription_actions" });
    const label = ending ? "Resume subscription" : "Cancel at period end";
    const button = h("button", { type: "button", class: "billing-subscription-action", "data-billing-action": ending ? "resume" : "cancel", "data-label": label }, label);
    const notice = h("p", { class: "billing-notice", role: "status", hidden: "" });
    const explain = ending
      ? h("p", { class: "billing-subscription-ending" }, `Your subscription ends on ${fmt.date(/** @type {string} */ (sub.cancel_at || sub.current_period_end))}. Resume it to keep it renewing.`)
      : h("p", {}, "Cancel and keep access until the end of the period you paid for.");
    button.addEventListener("click", async () => {
      if (button.disabled) return;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      notice.hidden = true;
      try {
        const { subscription } = await (ending ? resumeSubscription() : cancelSubscription());
        notice.textContent = ending
          ? "Resumed: your subscription keeps renewing. Waiting for Stripe to confirm…"
          : `Canceled: your subscription ends on ${fmt.date(/** @type {string} */ (subscription.cancel_at || subscription.current_period_end))}. Waiting for Stripe to confirm…`;
        notice.hidden = false;
        button.removeAttribute("aria-busy");
        await untilAccountShows(accountEl, (a) => Boolean(a.subscription && (a.subscription.cancel_at || a.subscription.cancel_at_period_end)) !== ending);
      } catch (e) {
        notice.textContent = messageOf(e);
        notice.hidden = false;
        resetButton(button);
      }
    });
    section.append(explain, h("p", { class: "billing-actions" }, button), notice);
    return section;
  }

  /**
   * Seats of a per-seat subscription: a number, a "Preview" of what the change would cost now
   * (Stripe's invoice preview; nothing changes), and "Change seats", which applies it.
   * @param {HTMLElement} accountEl
   * @param {Subscription} sub
   * @param {PlanStatus} plan
   */
  function seatControls(accountEl, sub, plan) {
    const current = sub.quantity || 1;
    const input = h("input", { type: "number", name: "seats", min: "1", max: String(plan.max_quantity || 100), value: String(current), "data-billing-field": "seats_input" });
    const preview = h("button", { type: "button", "data-billing-action": "preview_seats", "data-label": "Preview" }, "Preview");
    const change = h("button", { type: "button", "data-billing-action": "change_seats", "data-label": "Change seats", disabled: "" }, "Change seats");
    const out = h("p", { class: "billing-notice", role: "status", "data-billing-field": "seats_preview", hidden: "" });
    const seats = () => Number.parseInt(input.value, 10);
    input.addEventListener("input", () => {
      change.disabled = true;
      out.hidden = true;
    });
    preview.addEventListener("click", async () => {
      preview.disabled = true;
      try {
        const p = await previewChange({ quantity: seats() });
        const when = p.next_payment_at ? ` on ${fmt.date(p.next_payment_at)}` : "";
        out.replaceChildren(
          `With ${fmt.number(seats())} seats your next invoice is ${fmt.money(p.amount_due, p.currency || plan.currency)}${when}.`,
          h("ul", {}, ...p.lines.map((l) => h("li", {}, `${l.description || "Line"}: ${fmt.money(l.amount, p.currency || plan.currency)}`))),
        );
        change.disabled = seats() === current;
      } catch (e) {
        out.replaceChildren(messageOf(e));
      }
      out.hidden = false;
      resetButton(preview);
    });
    change.addEventListener("click", async () => {
      if (change.disabled) return;
      change.disabled = true;
      const wanted = seats();
      try {
        await changeSubscription({ quantity: wanted });
        out.replaceChildren(`Changed to ${fmt.number(wanted)} seats. Waiting for Stripe to confirm…`);
        out.hidden = false;
        await untilAccountShows(accountEl, (a) => Boolean(a.subscription && a.subscription.quantity === wanted));
      } catch (e) {
        out.replaceChildren(messageOf(e));
        out.hidden = false;
        change.disabled = false;
      }
    });
    return h("div", { class: "billing-seats", "data-billing-field": "seats" },
      h("label", {}, "Seats ", input), " ", preview, " ", change, out);
  }

  /**
   * Reads the account again (a few times, a second or two apart) until `shows` holds, then
   * renders it; stops quietly when it never does (the notice already says what was asked).
   * @param {HTMLElement} el
   * @param {(a: Account) => boolean} shows
   */
  async function untilAccountShows(el, shows) {
    for (const wait of [500, 1000, 1500, 2000, 3000, 5000]) {
      await sleep(wait);
      try {
        if (shows(await loadAccount())) return renderAccount(el);
      } catch (_) {
        // A failed read is retried by the next round.
      }
    }
  }

  /**
   * The user's invoices with links to Stripe's hosted page and PDF, newest first, ten at a
   * time with a "More invoices" button.
   * @param {HTMLElement} el
   * @param {string} [after]
   */
  async function renderInvoices(el, after) {
    let page;
    try {
      page = await listInvoices({ limit: 10, startingAfter: after });
    } catch (e) {
      el.append(h("p", { class: "billing-error", role: "alert" }, `Invoices could not be loaded: ${messageOf(e)}`));
      return;
    }
    if (!after && !page.invoices.length) {
      el.replaceChildren(h("p", { class: "billing-invoices-empty" }, "No invoices yet."));
      return;
    }
    let tbody = el.querySelector("tbody");
    if (!tbody) {
      tbody = h("tbody", {});
      el.replaceChildren(h("table", { class: "billing-invoice-list" },
        h("caption", {}, "Invoices"),
        h("thead", {}, h("tr", {}, h("th", {}, "Date"), h("th", {}, "Number"), h("th", {}, "Amount"), h("th", {}, "Status"), h("th", {}, "Links"))),
        tbody));
    }
    for (const inv of page.invoices) {
      const links = h("td", {});
      if (inv.hosted_invoice_url) links.append(h("a", { href: inv.hosted_invoice_url, rel: "noopener", "data-billing-link": "hosted_invoice_url" }, "View"));
      if (inv.invoice_pdf) links.append(" ", h("a", { href: inv.invoice_pdf, rel: "noopener", "data-billing-link": "invoice_pdf" }, "PDF"));
      tbody.append(h("tr", { "data-invoice-id": inv.id },
        h("td", {}, inv.created ? fmt.date(inv.created) : "—"),
        h("td", {}, inv.number || "—"),
        h("td", {}, fmt.money(inv.status === "paid" ? inv.amount_paid : inv.amount_due, inv.currency || "usd")),
        h("td", {}, inv.status || "—"),
        links));
    }
    const more = el.querySelector(".billing-invoices-more");
    if (more) more.remove();
    if (page.has_more && page.invoices.length) {
      const last = page.invoices[page.invoices.length - 1].id;
      const button = h("button", { type: "button", class: "billing-invoices-more" }, "More invoices");
      button.addEventListener("click", () => {
        button.disabled = true;
        renderInvoices(el, last);
      });
      el.append(button);
    }
  }

  /**
   * @param {Account["purchases"]} purchases
   * @param {(id: string) => string} planName
   */
  function purchasesTable(purchases, planName) {
    if (!purchases.length) return h("p", { class: "billing-purchases-empty", "data-billing-field": "purchases" }, "No purchases yet.");
    return h(
      "table",
      { class: "billing-purchases", "data-billing-field": "purchases" },
      h("caption", {}, "Purchases"),
      h("thead", {}, h("tr", {}, h("th", {}, "Date"), h("th", {}, "Plan"), h("th", {}, "Amount"), h("th", {}, "Status"))),
      h(
        "tbody",
        {},
        ...purchases.map((p) =>
          h("tr", { "data-session-id": p.session_id },
            h("td", {}, fmt.date(p.at)),
            h("td", {}, planName(p.plan_id)),
            h("td", {}, fmt.money(p.amount, p.currency)),
            h("td", {}, p.status)),
        ),
      ),
    );
  }

  return {
    loadStatus,
    loadAccount,
    loadEntitlements,
    hasFeature,
    checkFeature,
    checkoutStatus,
    startCheckout,
    buyWithElements,
    openPortal,
    cancelSubscription,
    resumeSubscription,
    changeSubscription,
    previewChange,
    listInvoices,
    renderPlans,
    renderReturn,
    renderAccount,
    renderGate,
  };
}

/** Subscriptions first, then one-time plans, each cheapest first. */
function sortedPlanIds(/** @type {Record<string, PlanStatus>} */ plans) {
  return Object.keys(plans).sort((a, b) => {
    const pa = plans[a];
    const pb = plans[b];
    if (pa.mode !== pb.mode) return pa.mode === "subscription" ? -1 : 1;
    return pa.amount - pb.amount || a.localeCompare(b);
  });
}

/**
 * @param {string} field
 * @param {string} label
 * @param {string} value
 */
function row(field, label, value) {
  return [h("dt", {}, label), h("dd", { "data-billing-field": field }, value)];
}

/** @param {unknown} e */
function messageOf(e) {
  return e instanceof BillingError ? e.message : NETWORK_MESSAGE;
}

/** @param {HTMLButtonElement} button */
function resetButton(button) {
  button.disabled = false;
  button.removeAttribute("aria-busy");
  button.textContent = button.dataset.label || button.textContent;
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** @param {string | undefined} locale */
function formatters(locale) {
  return {
    /**
     * Minor units to money, with the currency's own number of decimals (JPY has none).
     * @param {number} amount
     * @param {string} currency
     */
    money(amount, currency) {
      try {
        const f = new Intl.NumberFormat(locale, { style: "currency", currency: currency.toUpperCase() });
        const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
        return f.format(amount / 10 ** digits);
      } catch (_) {
        return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
      }
    },
    /** @param {number} n */
    number(n) {
      return new Intl.NumberFormat(locale).format(n);
    },
    /** @param {string} iso */
    date(iso) {
      const d = new Date(iso);
      return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString(locale, { year: "numeric", month: "short", day: "numeric" });
    },
  };
}

/**
 * A tiny element builder: attributes, then children (strings become text nodes).
 * @param {string} tag
 * @param {Record<string, string>} attrs
 * @param {...(Node | string)} children
 * @returns {any}
 */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== "") el.append(c);
  return el;
}
