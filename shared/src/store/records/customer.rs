//! Which account a Stripe customer belongs to: how events that carry only a customer
//! (subscriptions, invoices) find their user.

use crate::domain::ids::{CustomerId, UserId};
use crate::store::{ItemExt, Key, Op, StoreError, Table, Write};

pub fn key(customer: &CustomerId) -> Key {
    Key::new(format!("CUSTOMER#{customer}"), "CUSTOMER")
}

/// Links the customer to its account once: a customer already linked to another account
/// stays with it (a session naming someone else never takes their customer over).
pub fn link(customer: &CustomerId, user: &UserId) -> Write {
    Write::Update {
        key: key(customer),
        ops: vec![Op::set_if_missing("user_id", user.to_string())],
        cond: None,
    }
}

/// The account `customer` is linked to, if any.
pub async fn user_of(
    table: &dyn Table,
    customer: &CustomerId,
) -> Result<Option<UserId>, StoreError> {
    let link = table.get(&key(customer)).await?;
    Ok(link
        .as_ref()
        .and_then(|i| i.str("user_id"))
        .and_then(|u| UserId::parse(u).ok()))
}
