//! Which purchase a PaymentIntent paid for: how refunds and disputes, which carry only
//! the charge's PaymentIntent, find the purchase and the account.

use super::item;
use crate::domain::ids::{PaymentIntentId, SessionId, UserId};
use crate::store::{ItemExt, Key, StoreError, Table, Write};

pub fn key(pi: &PaymentIntentId) -> Key {
    Key::new(format!("PAYMENT_INTENT#{pi}"), "PAYMENT_INTENT")
}

pub fn link(pi: &PaymentIntentId, user: &UserId, session: &SessionId) -> Write {
    Write::Put {
        key: key(pi),
        item: item([
            ("user_id", user.to_string().into()),
            ("session_id", session.to_string().into()),
        ]),
        cond: None,
    }
}

/// The account and checkout `pi` paid for, if it is one of ours.
pub async fn purchase_of(
    table: &dyn Table,
    pi: &PaymentIntentId,
) -> Result<Option<(UserId, SessionId)>, StoreError> {
    let link = table.get(&key(pi)).await?;
    Ok(link.as_ref().and_then(|l| {
        Some((
            UserId::parse(l.str("user_id")?).ok()?,
            SessionId::parse(l.str("session_id")?).ok()?,
        ))
    }))
}
