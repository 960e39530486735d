"""The operator console (web/admin/, served at /admin/billing) in a real browser: Debian's
chromium, headless, driven by Playwright, against one local stack with the project's one fake
Stripe (`local-stack fake-stripe`, through infra/fake_stripe.py: prices configured, refunds and
subscriptions answered).

usage: python infra/console_test.py   (make test runs it; needs `cargo build -p local-stack`)

What it sets up through the stack's own webhook, as Stripe would: one paid credit pack of a
user (processed), 22 events the stack does not act on (ignored, for paging), a Payment Link
payment whose reference the stack never signed (unclaimed), and a subscription update that fails because Stripe does not know the subscription yet (failed,
replayable once it does). Each test is a sentence; a screenshot of every screen is saved under
$CARGO_TARGET_DIR/console-screenshots/. Prints `console: N passed, M failed`, exits 1 on any
failure.
"""
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from browser_suite import run_tests
from browser_test import (CHROMIUM, CHROMIUM_ARGS, PLANS, ROOT, TARGET, Stack, Stripe,
                          completed_event)

SHOTS = TARGET / "console-screenshots"
expect = None  # playwright's, imported in main() once the browser is known to be there
SUB_SAMPLE = ROOT / "events" / "stripe" / "customer.subscription.updated.json"
# What the console must never show: the stack's secrets, and anything only a payload holds.
NEVER_SHOWN = ("sk_test_", "whsec_", "jwt-console-", "\"payload\"", "client_secret")


class Suite:
    def __init__(self, ctx, stack, stripe):
        self.ctx, self.stack, self.stripe = ctx, stack, stripe
        self.user = f"con_{secrets.token_hex(4)}"
        self.customer = f"cus_console_{secrets.token_hex(4)}"
        self.session = f"cs_test_console_{secrets.token_hex(4)}"
        self.sub = f"sub_console_{secrets.token_hex(4)}"
        self.ops = stack.token("ops_console", admin=True)
        self.seen = {}
        self.failed_event = None
        self.seed()

    # -- the history the screens show, sent through the webhook --

    def deliver(self, event):
        status, _, body = self.stack.send_webhook(event)
        assert status == 200, (status, body)
        return json.loads(body)

    def seed(self):
        bought = completed_event(self.stripe, self.session, self.user, "credits_starter", self.customer)
        self.bought_event = bought["id"]
        self.deliver(bought)
        for i in range(22):
            self.deliver(self.stripe.event("plan.created", {"id": f"plan_{i}", "object": "plan"},
                                           id=f"evt_console_ign_{i:02d}_{secrets.token_hex(3)}"))
        # A Payment Link checkout whose reference the stack never signed: paid, granted to no one.
        forged = completed_event(self.stripe, f"cs_test_console_link_{secrets.token_hex(4)}", "someone_else", "credits_starter",
                                 f"cus_console_payer_{secrets.token_hex(4)}")
        forged["data"]["object"].update(payment_link=f"plink_console_{secrets.token_hex(4)}",
                                        client_reference_id="s1_forgedforgedforgedforgedXX", metadata={})
        self.unclaimed_event = forged["id"]
        self.unclaimed_session = forged["data"]["object"]["id"]
        self.deliver(forged)
        sub = json.loads(SUB_SAMPLE.read_text())
        obj = sub["data"]["object"]
        obj.update(id=self.sub, customer=self.customer, metadata={"user_id": self.user, "plan_id": "pro_monthly"})
        for item in obj["items"]["data"]:
            item["price"]["id"] = "price_console_pro_monthly"
        sub.update(id=f"evt_console_sub_{secrets.token_hex(6)}", created=int(time.time()))
        self.sub_object = obj
        self.failed_event = sub["id"]
        self.deliver(sub)
        self.wait_for_state(self.bought_event, "processed")
        self.wait_for_state(self.failed_event, "failed")
        self.wait_for_state(self.unclaimed_event, "unclaimed")

    def wait_for_state(self, event_id, state):
        deadline = time.time() + 60
        while time.time() < deadline:
            status, _, body = self.stack.request("GET", f"/api/billing/admin/events?state={state}&limit=200",
                                                 {"Authorization": f"Bearer {self.ops}"})
            if status == 200 and any(e["id"] == event_id for e in json.loads(body)["events"]):
                return
            time.sleep(0.3)
        raise AssertionError(f"{event_id} never listed {state}")

    # -- helpers --

    def open(self, token):
        page = self.ctx.new_page()
        page.set_default_timeout(20000)
        page.goto(self.stack.base + "/admin/billing")
        page.fill(".token-box input[name=token]", token)
        page.click(".token-box button[type=submit]")
        return page

    def screen(self, page, name):
        page.click(f".console-nav button[data-screen={name}]")

    def shot(self, page, name):
        text = page.inner_text("body")
        leaked = [s for s in NEVER_SHOWN if s in text]
        assert not leaked, f"the console showed {leaked}"
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        return f"{name}.png"

    # -- the tests --

    def a_non_operator_token_is_refused_and_the_console_says_so(self):
        page = self.open(self.stack.token(self.user))
        page.wait_for_selector(".console-banner[data-console-state=forbidden]")
        banner = page.inner_text(".console-banner")
        assert "403" in banner and "billing:admin" in banner, banner
        assert page.locator("table.events tbody tr[data-event-id]").count() == 0
        self.seen["non-operator"] = f"{banner!r}, no event row; {self.shot(page, '01-non-operator-refused')}"
        page.close()

    def the_events_screen_lists_events_by_state_and_pages_to_older_ones(self):
        page = self.open(self.ops)
        page.wait_for_selector("table.events tbody tr[data-event-id]")
        page.select_option("select[name=state]", "processed")
        page.wait_for_selector(f"tr[data-event-id='{self.bought_event}'][data-state=processed]")
        page.select_option("select[name=state]", "ignored")
        expect(page.locator("table.events tbody tr[data-event-id]")).to_have_count(20)
        assert page.locator("tr[data-state=ignored]").count() == 20
        assert page.locator("tr[data-state=processed]").count() == 0, "filtered by state"
        self.shot(page, "02-events-ignored-first-page")
        page.click("button.more")
        expect(page.locator("table.events tbody tr[data-event-id]")).to_have_count(22)
        assert page.is_hidden("button.more"), "no older page after the last"
        self.seen["events"] = f"20 ignored, then 22 after 'Older events'; {self.shot(page, '03-events-ignored-paged')}"
        page.close()

    def an_events_error_shows_and_replay_answers_once_the_cause_is_fixed(self):
        page = self.open(self.ops)
        self.screen(page, "dead-letters")
        row = f"tr[data-event-id='{self.failed_event}'][data-state=failed]"
        page.wait_for_selector(row)
        error = page.inner_text(f"{row} td:nth-child(5)")
        assert error, "the list shows the error"
        page.click(f"{row} button.link")
        page.wait_for_selector(".event-detail dd.error")
        full_error = page.inner_text(".event-detail dd.error")
        # Worded so that no "<digits> failed" appears: make test sums those from every line.
        self.seen["dead letters"] = f"state failed, error {full_error[:90]!r} ({self.failed_event}); {self.shot(page, '04-dead-letter-error')}"
        # The cause: Stripe did not know the subscription. Now it does; replay applies it.
        self.stripe.put_subscription(self.sub_object)
        page.click(".event-detail button.replay")
        page.wait_for_selector(".event-detail pre.answer[data-status='200']")
        answer = page.inner_text(".event-detail pre.answer")
        assert "processed" in answer, answer
        self.seen["replay"] = f"{answer.splitlines()[0]} …{answer.split(chr(10))[1:3]}; {self.shot(page, '05-replayed')}"
        page.close()

    def unclaimed_payments_list_the_payment_granted_to_no_one_with_why(self):
        page = self.open(self.ops)
        self.screen(page, "unclaimed")
        row = f"tr[data-event-id='{self.unclaimed_event}'][data-state=unclaimed]"
        page.wait_for_selector(row)
        assert page.locator("table.events tbody tr[data-event-id]").count() == 1
        page.click(f"{row} button.link")
        why = page.inner_text(".event-detail dd.error")
        assert self.unclaimed_session in why and "grant" in why, why
        self.seen["unclaimed"] = f"{self.unclaimed_event}: {why[:100]!r}; {self.shot(page, '05b-unclaimed')}"
        page.close()

    def reconcile_shows_stripes_answer(self):
        page = self.open(self.ops)
        self.screen(page, "reconcile")
        page.click("form.reconcile button[type=submit]")
        page.wait_for_selector("pre.answer[data-status='200']")
        answer = page.inner_text("pre.answer")
        assert '"fetched"' in answer and '"ingested"' in answer, answer
        self.seen["reconcile"] = f"{' '.join(answer.split())[:80]}; {self.shot(page, '06-reconcile')}"
        page.close()

    def the_user_search_finds_a_user_by_id_customer_or_session_and_shows_their_billing(self):
        page = self.open(self.ops)
        for query in (self.customer, self.session, self.user):
            self.screen(page, "user")
            page.fill("form.user-search input[name=q]", query)
            page.click("form.user-search button[type=submit]")
            page.wait_for_selector(f".user-view[data-user-id='{self.user}']")
        text = page.inner_text(".user-view")
        assert self.customer in text and self.session in text and "1000" in text, text[:400]
        assert self.bought_event in text and self.failed_event in text, "the events that changed the account"
        paid = page.inner_text(".list.purchases tbody tr td.amount")
        assert paid == "$10.00", f"the purchase's amount is not shown as money: {paid!r}"
        self.seen["user"] = (f"found by {self.customer}, {self.session} and {self.user}; purchase amount {paid!r}; "
                             f"{self.shot(page, '07-user-view')}")
        self.screen(page, "user")
        page.fill("form.user-search input[name=q]", "nobody_at_all")
        page.click("form.user-search button[type=submit]")
        page.wait_for_selector("pre.answer[data-status='404']")
        assert "unknown_user" in page.inner_text("pre.answer")
        page.close()

    def a_grant_asks_for_a_reason_and_a_confirmation_then_shows_the_answer(self):
        page = self.open(self.ops)
        self.screen(page, "grant")
        page.fill("form.grant input[name=user_id]", self.user)
        page.fill("form.grant input[name=credits]", "250")
        page.click("form.grant button[type=submit]")
        page.wait_for_selector("pre.answer[data-status=refused]")
        assert "reason is required" in page.inner_text("pre.answer")
        page.fill("form.grant input[name=reason]", "ticket 981: paid, got nothing")
        page.click("form.grant button[type=submit]")
        question = page.inner_text(".confirm p")
        assert "250 credits" in question and self.user in question, question
        self.shot(page, "08-grant-confirm")
        page.click(".confirm button.confirm-no")
        assert page.is_hidden(".confirm") and self.balance() == 1000, "cancel grants nothing"
        page.click("form.grant button[type=submit]")
        page.click(".confirm button.confirm-yes")
        page.wait_for_selector("pre.answer[data-status='200']")
        assert '"credits": 250' in page.inner_text("pre.answer")
        assert self.balance() == 1250
        self.seen["grant"] = f"refused without a reason, cancel granted nothing, confirmed 250 → balance 1250; {self.shot(page, '09-grant-answer')}"
        page.close()

    def a_refund_from_the_users_purchase_confirms_then_goes_through_stripe(self):
        page = self.open(self.ops)
        self.screen(page, "user")
        page.fill("form.user-search input[name=q]", self.user)
        page.click("form.user-search button[type=submit]")
        page.click(".list.purchases tbody tr button")
        assert page.input_value("form.refund input[name=session_id]") == self.session
        page.fill("form.refund input[name=amount]", "400")
        page.fill("form.refund input[name=reason]", "partial refund agreed on the phone")
        page.click("form.refund button[type=submit]")
        question = page.inner_text(".confirm p")
        assert self.session in question and "$4.00 (400 minor units)" in question, question
        self.shot(page, "10a-refund-confirm")
        assert not self.stripe.refund_calls, "nothing sent before the confirmation"
        page.click(".confirm button.confirm-yes")
        page.wait_for_selector("pre.answer[data-status='200']")
        answer = page.inner_text("pre.answer")
        assert '"amount": 400' in answer and '"remaining": 600' in answer, answer
        assert len(self.stripe.refund_calls) == 1
        answer_shot = self.shot(page, "10-refund-answer")
        self.screen(page, "user")
        page.fill("form.user-search input[name=q]", self.user)
        page.click("form.user-search button[type=submit]")
        page.wait_for_selector(".list.refunds tbody tr td.amount")
        refunded = page.inner_text(".list.refunds tbody tr td.amount")
        assert refunded == "$4.00", f"the refund's amount is not shown as money: {refunded!r}"
        self.seen["refund"] = (f"confirm {question!r}; one POST /v1/refunds after 'Yes', answer "
                               f"{' '.join(answer.split())[:70]}; the refunds list shows {refunded!r}; {answer_shot}, "
                               f"{self.shot(page, '11-user-view-refunded')}")
        page.close()

    def balance(self):
        status, _, body = self.stack.request("GET", f"/api/billing/admin/users/{self.user}",
                                             {"Authorization": f"Bearer {self.ops}"})
        assert status == 200, body
        return json.loads(body)["account"]["credits"]["balance"]


def main():
    if not (TARGET / "debug" / "local-stack").exists() or not os.access(CHROMIUM, os.X_OK):
        print("FAIL local-stack or chromium is missing (cargo build -p local-stack; infra/bootstrap.sh browser)")
        print("console: 0 passed, 1 failed")
        return 1
    from playwright.sync_api import sync_playwright
    global expect
    from playwright.sync_api import expect

    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="billing-console-"))
    stripe = Stripe("infra/console_test.py", "console")
    stack = None
    results = []
    playwright = ctx = None
    try:
        stack = Stack("console", work, {
            "STRIPE_WEBHOOK_SECRET": f"whsec_console{secrets.token_hex(12)}",
            "LOCAL_JWT_SECRET": f"jwt-console-{secrets.token_hex(12)}",
            "STRIPE_SECRET_KEY": f"sk_test_console{secrets.token_hex(12)}", "STRIPE_API_BASE": stripe.base,
            "STRIPE_PRICES": ",".join(f"{p}=price_console_{p}" for p in PLANS), "PUBLIC_BASE_URL": "{base}"})
        if not stack.ready():
            raise RuntimeError(f"the local stack did not start:\n{stack.log.read_text()[-2000:]}")
        playwright = sync_playwright().start()
        ctx = playwright.chromium.launch_persistent_context(
            str(work / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
        suite = Suite(ctx, stack, stripe)
        tests = [m for m, f in Suite.__dict__.items() if callable(f) and m[0].islower() and m not in
                 ("deliver", "seed", "wait_for_state", "open", "screen", "shot", "balance")]
        run_tests(suite, tests, ctx, SHOTS, results)
    except Exception as e:  # noqa: BLE001
        results.append(False)
        print(f"FAIL the console suite could not run: {type(e).__name__}: {e}")
        if os.environ.get("BROWSER_VERBOSE"):
            traceback.print_exc()
    finally:
        if ctx:
            ctx.close()
        if playwright:
            playwright.stop()
        if stack:
            stack.stop()
        results.append(stripe.stop_and_check())
    passed = sum(results)
    if passed == len(results):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"     (stack log kept in {work})")
    print(f"     (screenshots in {SHOTS})")
    print(f"console: {passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
