//! Serde types for the Stripe objects the project reads: only the fields it uses, every
//! unknown field ignored, every nullable field optional. Proven against Stripe's official
//! fixtures (`shared/tests/core/stripe_fixtures.rs`).

use serde::Deserialize;
use std::collections::HashMap;

/// A field Stripe sends either as an id or, when expanded, as the object with that id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

pub type Metadata = HashMap<String, String>;

/// A metadata value; an empty one reads as missing (posting an empty value is how Stripe
/// unsets a key).
pub(super) fn meta_value<'m>(metadata: Option<&'m Metadata>, key: &str) -> Option<&'m str> {
    metadata?
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The longest message group id SQS accepts.
pub const MAX_GROUP_ID: usize = 128;

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    /// The API version the object is rendered in (the endpoint's, or the account's default).
    #[serde(default)]
    pub api_version: Option<String>,
    pub data: EventData,
    /// The object's routing fields, read from `data.object` on first use.
    #[serde(skip)]
    refs: std::sync::OnceLock<ObjectRefs>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    /// The object as Stripe sent it: validated JSON, parsed into its type only where it is
    /// acted on (`Event::object`), so the intake never builds what it does not read.
    pub object: Box<serde_json::value::RawValue>,
}

/// The few fields of an event's object that order and label the event. Any of them may be
/// absent or of an unexpected type (then it is ignored), and so may the object itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ObjectRefs {
    id: Option<serde_json::Value>,
    customer: Option<serde_json::Value>,
    metadata: Option<serde_json::Value>,
    client_reference_id: Option<serde_json::Value>,
}

impl ObjectRefs {
    /// The object's own id, when it is a string.
    pub fn id(&self) -> Option<&str> {
        self.id.as_ref().and_then(|v| v.as_str())
    }

    /// The Stripe customer the object names, as an id or an expanded object.
    pub fn customer(&self) -> Option<&str> {
        match self.customer.as_ref()? {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Object(m) => m.get("id").and_then(|v| v.as_str()),
            _ => None,
        }
    }

    /// Our user id: `metadata.user_id`, else `client_reference_id`.
    pub fn user(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("user_id"))
            .or(self.client_reference_id.as_ref())
            .and_then(|v| v.as_str())
    }
}

impl Event {
    /// The event's object as `T`.
    pub fn object<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.object.get())
    }

    /// The object's routing fields (parsed once; an object that is not a JSON object has none).
    pub fn refs(&self) -> &ObjectRefs {
        self.refs.get_or_init(|| {
            let raw = self.data.object.get();
            match raw.starts_with('{') {
                true => serde_json::from_str(raw).unwrap_or_default(),
                false => ObjectRefs::default(),
            }
        })
    }

    /// The key that orders this event among its account's events: the Stripe customer when
    /// the object names one, else our user id, else the event itself.
    /// SQS takes at most 128 characters: a longer key is replaced by its SHA-256, which
    /// keeps one account's events in one group.
    pub fn ordering_key(&self) -> String {
        let refs = self.refs();
        let key = match (refs.customer(), refs.user()) {
            (Some(customer), _) => customer.to_owned(),
            (None, Some(user)) => format!("user:{user}"),
            (None, None) => format!("event:{}", self.id),
        };
        bounded_group(key)
    }
}

/// The ordering group of the events of an account that name no Stripe customer.
pub fn user_group(user: &str) -> String {
    bounded_group(format!("user:{user}"))
}

/// A group id as SQS takes it: at most 128 characters (a longer key becomes its SHA-256).
fn bounded_group(key: String) -> String {
    if key.len() <= MAX_GROUP_ID {
        return key;
    }
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerDetails {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    #[serde(default)]
    pub payment_link: Option<Expandable>,
}

impl CheckoutSession {
    pub fn meta(&self, key: &str) -> Option<&str> {
        meta_value(self.metadata.as_ref(), key)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    /// `si_…`: what a price switch names (`items[0][id]`).
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub price: Option<Price>,
    /// Seats, for a per-seat price.
    #[serde(default)]
    pub quantity: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: Expandable,
    pub status: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    #[serde(default)]
    pub trial_end: Option<i64>,
    /// A scheduled end (flexible billing's "cancel at period end" sets only this).
    #[serde(default)]
    pub cancel_at: Option<i64>,
    /// Before API 2025-03-31 the period was the subscription's own.
    #[serde(default)]
    pub current_period_end: Option<i64>,
    pub items: List<SubscriptionItem>,
}

impl Subscription {
    pub fn meta(&self, key: &str) -> Option<&str> {
        meta_value(self.metadata.as_ref(), key)
    }
    /// On the items since API 2025-03-31 (the latest end wins), on the subscription before.
    pub fn period_end(&self) -> Option<i64> {
        self.items
            .data
            .iter()
            .filter_map(|i| i.current_period_end)
            .max()
            .or(self.current_period_end)
    }
    /// The seats of the subscription: its first item's quantity (one price per subscription
    /// is what this project sells), 1 when Stripe shows none.
    pub fn quantity(&self) -> i64 {
        self.items.data.iter().find_map(|i| i.quantity).unwrap_or(1)
    }
    pub fn price_ids(&self) -> impl Iterator<Item = &str> {
        self.items
            .data
            .iter()
            .filter_map(|i| i.price.as_ref().map(|p| p.id.as_str()))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    /// Cumulative: every `charge.refunded` carries the total refunded so far.
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Before API 2025-03-31 a charge named the invoice it paid.
    #[serde(default)]
    pub invoice: Option<Expandable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    /// `warning_*` for an inquiry (no money withdrawn); `won`, `lost` once closed.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// A PaymentIntent: ours (created by `POST /api/billing/purchases`) carries `user_id`,
/// `plan_id` and `quantity` in its metadata; Checkout's carries `user_id` and `plan_id`.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

impl PaymentIntent {
    pub fn meta(&self, key: &str) -> Option<&str> {
        meta_value(self.metadata.as_ref(), key)
    }
}

/// A refund as `POST /v1/refunds` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub status: Option<String>,
}

/// Stripe's active entitlement summary for a customer (`entitlements.active_entitlement_summary`):
/// the features attached to the Products the customer holds now.
#[derive(Debug, Clone, Deserialize)]
pub struct ActiveEntitlementSummary {
    pub customer: String,
    pub entitlements: List<ActiveEntitlement>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActiveEntitlement {
    pub lookup_key: String,
}
