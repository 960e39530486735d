//! The hosted pages the server's URLs lead to. As `make dev`'s stand-in every page says so
//! (its label, in a banner and in the title).

use super::State;
use super::checkout::BOUGHT;
use wiremock::ResponseTemplate;

impl State {
    /// The hosted checkout page: what is bought, for how much; "Pay" and "Cancel". For a
    /// test, "Pay" is a link to the session's `success_url` (the test sends the webhook);
    /// as the stand-in, a button that pays ([`State::pay`]). A session no longer open says
    /// what it is instead.
    pub(super) fn checkout_page(&self, id: &str) -> ResponseTemplate {
        let Some(session) = self.sessions.lock().unwrap().get(id).cloned() else {
            return self.page_with_status(
                404,
                "No such checkout",
                "<p>There is no such session here.</p>",
            );
        };
        let text = |name: &str| session[name].as_str().unwrap_or_default().to_owned();
        let bought = &session[BOUGHT];
        let price = bought["price"].as_str().unwrap_or_default();
        let name = self
            .plans
            .get(price)
            .map_or(price, |plan| plan.name.as_str());
        let amount = match session["amount_total"].as_i64() {
            Some(minor) if self.plans.contains_key(price) => {
                money(minor, &text("currency").to_uppercase())
            }
            _ => String::new(),
        };
        let state = text("status");
        let success = text("success_url").replace("{CHECKOUT_SESSION_ID}", id);
        let action = match (state.as_str(), &self.options.stand_in) {
            ("open", Some(_)) => format!(
                "<form method=post action='/c/pay/{id}'><button id=pay type=submit>Pay {amount}</button></form>"
            ),
            ("open", None) => format!("<p><a id=pay href='{}'>Pay</a></p>", escape(&success)),
            _ => format!("<p id=state>This checkout is {}.</p>", escape(&state)),
        };
        let label = match &self.options.stand_in {
            Some(stand_in) => format!(
                "<p class=label id=label><strong>{}</strong>: nothing is charged and no card is \
                 asked for. With a <code>sk_test_…</code> key, <code>make dev</code> uses \
                 Stripe's test mode instead.</p>",
                escape(&stand_in.label)
            ),
            None => String::new(),
        };
        let title = match self.options.stand_in {
            Some(_) => "Checkout",
            None => "Fake Stripe Checkout",
        };
        self.page(
            title,
            &format!(
                "{label}<p><span id=item>{} × {}</span> <strong id=amount>{amount}</strong></p>\
                 <p><small>Session <code id=session>{}</code>, price <code>{}</code></small></p>\
                 {action}<p><a id=cancel href='{}'>Cancel and go back</a></p>",
                escape(name),
                bought["quantity"],
                escape(id),
                escape(price),
                escape(&text("cancel_url")),
            ),
        )
    }

    /// The billing portal page of a portal session: its customer and a way back.
    pub(super) fn portal_page(&self, id: &str) -> ResponseTemplate {
        let (customer, back) = self
            .portals
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default();
        let note = match &self.options.stand_in {
            Some(stand_in) => format!(
                "<p class=label><strong>{}</strong>: the stand-in has nothing to manage; \
                 Stripe's test mode shows the real portal.</p>",
                escape(&stand_in.label)
            ),
            None => String::new(),
        };
        self.page(
            "Billing portal",
            &format!(
                "{note}<p>Customer <code>{}</code></p><p><a id=return href='{}'>Return</a></p>",
                escape(&customer),
                escape(&back)
            ),
        )
    }

    /// A Payment Link's page: the link and the query it was opened with.
    pub(super) fn payment_link_page(&self, path: &str, query: Option<&str>) -> ResponseTemplate {
        self.page(
            "Payment Link",
            &format!(
                "<p>Link <code>{}</code></p><p>Query <code>{}</code></p>",
                escape(path),
                escape(query.unwrap_or(""))
            ),
        )
    }

    pub(super) fn home(&self) -> ResponseTemplate {
        let what = match self.options.stand_in {
            Some(_) => "This stands in for Stripe while no Stripe key is configured.",
            None => "A fake Stripe for the tests.",
        };
        self.page("Stripe", &format!("<p>{what}</p>"))
    }

    pub(super) fn page(&self, title: &str, body: &str) -> ResponseTemplate {
        self.page_with_status(200, title, body)
    }

    /// A page; as the stand-in, titled and bannered with its label.
    pub(super) fn page_with_status(
        &self,
        status: u16,
        title: &str,
        body: &str,
    ) -> ResponseTemplate {
        let html = match &self.options.stand_in {
            Some(stand_in) => {
                let label = escape(&stand_in.label);
                format!(
                    "<!doctype html><meta charset=utf-8><title>{title} ({label})</title>\
                     <body style='font-family:sans-serif;margin:3rem;max-width:40rem'>\
                     <p style='background:#fff3cd;border:1px solid #e0c060;padding:.5rem 1rem' \
                     id=banner>Stripe, {label}</p><h1>{title}</h1>{body}</body>"
                )
            }
            None => format!(
                "<!doctype html><meta charset=utf-8><title>{title}</title>\
                 <body style='font-family:sans-serif;margin:3rem'><h1>{title}</h1>{body}</body>"
            ),
        };
        ResponseTemplate::new(status).set_body_raw(html.into_bytes(), "text/html; charset=utf-8")
    }
}

/// An amount in minor units as a price tag: `$10.00`, `10.00 EUR`.
fn money(minor: i64, currency: &str) -> String {
    match currency {
        "USD" => format!("${}.{:02}", minor / 100, minor % 100),
        _ => format!("{}.{:02} {currency}", minor / 100, minor % 100),
    }
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
        .replace('"', "&quot;")
}
