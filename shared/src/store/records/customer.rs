//! Which account a Stripe customer belongs to: how events that carry only a customer
//! (subscriptions, invoices) find their user.

use super::item;
use crate::domain::ids::{CustomerId, UserId};
use crate::store::{ItemExt, Key, StoreError, Table, Write};

pub fn key(customer: &CustomerId) -> Key {
    Key::new(format!("CUSTOMER#{customer}"), "CUSTOMER")
}

pub fn link(customer: &CustomerId, user: &UserId) -> Write {
    Write::Put {
        key: key(customer),
        item: item([("user_id", user.to_string().into())]),
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
