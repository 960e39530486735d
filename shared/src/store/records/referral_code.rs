//! A referral code and the account that owns it; unique by a conditional put.

use super::item;
use crate::domain::ids::UserId;
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};

/// `code` was already checked by the referral use case.
pub fn key(code: &str) -> Key {
    Key::new(format!("REFERRAL#{code}"), "REFERRAL")
}

/// Takes `code` for `owner`; fails if another account holds it.
pub fn taken(code: &str, owner: &UserId) -> Write {
    Write::Put {
        key: key(code),
        item: item([("user_id", owner.to_string().into())]),
        cond: Some(Cond::ItemNotExists),
    }
}

pub async fn owner(table: &dyn Table, code: &str) -> Result<Option<UserId>, StoreError> {
    let item = table.get(&key(code)).await?;
    Ok(item
        .as_ref()
        .and_then(|o| o.str("user_id"))
        .and_then(|u| UserId::parse(u).ok()))
}
