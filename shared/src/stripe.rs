//! Serde types for the Stripe objects the project reads: only the fields it uses, every
//! unknown field ignored, every nullable field optional. Proven against Stripe's official
//! fixtures (`tests/stripe_fixtures.rs`).

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

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl Event {
    /// The event's object as `T`.
    pub fn object<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data.object)
    }

    /// The key that orders this event among its account's events: the Stripe customer when
    /// the object names one, else our user id, else the event itself.
    pub fn ordering_key(&self) -> String {
        let o = &self.data.object;
        let customer = match o.get("customer") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(m)) => {
                m.get("id").and_then(|v| v.as_str()).map(str::to_owned)
            }
            _ => None,
        };
        let user = o
            .get("metadata")
            .and_then(|m| m.get("user_id"))
            .or_else(|| o.get("client_reference_id"))
            .and_then(|v| v.as_str())
            .map(|u| format!("user:{u}"));
        customer
            .or(user)
            .unwrap_or_else(|| format!("event:{}", self.id))
    }
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
        self.metadata
            .as_ref()?
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub price: Option<Price>,
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
    pub items: List<SubscriptionItem>,
}

impl Subscription {
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .as_ref()?
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    /// Since API version 2025-03-31 the period lives on the items; the latest end wins.
    pub fn current_period_end(&self) -> Option<i64> {
        self.items
            .data
            .iter()
            .filter_map(|i| i.current_period_end)
            .max()
    }
    pub fn price_ids(&self) -> impl Iterator<Item = &str> {
        self.items
            .data
            .iter()
            .filter_map(|i| i.price.as_ref().map(|p| p.id.as_str()))
    }
}
