//! Referrals: every account has a code; a new user may claim someone's code before paying;
//! on the referred user's first paid checkout or first active subscription, both get
//! `credit_until` extended by 45 days from the later of now and its current value, once,
//! in the same transaction as the fulfilment that triggered it.

use crate::clock::rfc3339;
use crate::ids::UserId;
use crate::keys;
use crate::runtime::Services;
use crate::store::{Cond, Item, ItemExt, Op, StoreError, Write};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub const REWARD_DAYS: i64 = 45;
/// No 0/O, 1/I/L: read aloud and typed without mistakes. 31^10 ≈ 8×10^14 codes.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const CODE_LEN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    #[error("the body is not valid: {0}")]
    InvalidRequest(String),
    #[error("you cannot refer yourself")]
    SelfReferral,
    #[error("no account has this referral code")]
    UnknownCode,
    #[error("this account was already referred")]
    AlreadyReferred,
    #[error("referral codes can only be claimed before the first payment")]
    AlreadyPaid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimOutcome {
    pub referred_by: String,
}

fn new_code() -> String {
    // uuid v4 is 122 bits from the OS's random source; ten symbols use 50 of them.
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(CODE_LEN)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn normalise(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The account's referral code, created (unique, by a conditional put) on first need.
pub async fn ensure_code(services: &Services, user: &UserId) -> Result<String, StoreError> {
    for _ in 0..5 {
        let profile = services.table.get(&keys::profile(user)).await?;
        if let Some(code) = profile.as_ref().and_then(|p| p.str("referral_code")) {
            return Ok(code.to_owned());
        }
        let code = new_code();
        let mut owner = Item::new();
        owner.insert("user_id".into(), user.to_string().into());
        let writes = vec![
            Write::Put {
                key: keys::referral(&code),
                item: owner,
                cond: Some(Cond::ItemNotExists),
            },
            Write::Update {
                key: keys::profile(user),
                ops: vec![
                    Op::set("referral_code", code.clone()),
                    Op::set_if_missing("created_at", rfc3339(services.clock.now())),
                ],
                cond: Some(Cond::missing("referral_code")),
            },
        ];
        match services.table.transact(writes).await {
            Ok(()) => return Ok(code),
            // A code collision, or a concurrent first read: read again.
            Err(StoreError::TransactionConditionFailed(_) | StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// `POST /api/billing/referral`.
pub async fn claim(
    services: &Services,
    user: &UserId,
    req: ClaimRequest,
) -> Result<ClaimOutcome, ReferralError> {
    let code = normalise(&req.code).ok_or(ReferralError::UnknownCode)?;
    let owner = services.table.get(&keys::referral(&code)).await?;
    let owner = owner
        .as_ref()
        .and_then(|o| o.str("user_id"))
        .and_then(|u| UserId::parse(u).ok())
        .ok_or(ReferralError::UnknownCode)?;
    if &owner == user {
        return Err(ReferralError::SelfReferral);
    }
    let profile = services.table.get(&keys::profile(user)).await?;
    if profile
        .as_ref()
        .and_then(|p| p.str("referred_by"))
        .is_some()
    {
        return Err(ReferralError::AlreadyReferred);
    }
    if profile
        .as_ref()
        .and_then(|p| p.str("first_paid_at"))
        .is_some()
    {
        return Err(ReferralError::AlreadyPaid);
    }
    let ops = vec![
        Op::set("referred_by", code.clone()),
        Op::set("referrer_user_id", owner.to_string()),
        Op::set_if_missing("created_at", rfc3339(services.clock.now())),
    ];
    let cond = Cond::And(vec![
        Cond::missing("referred_by"),
        Cond::missing("first_paid_at"),
    ]);
    match services
        .table
        .update(&keys::profile(user), ops, Some(cond))
        .await
    {
        Ok(_) => Ok(ClaimOutcome { referred_by: code }),
        // Raced with another claim or a first payment: say which, from a fresh read.
        Err(StoreError::ConditionFailed) => {
            let now = services.table.get(&keys::profile(user)).await?;
            if now.as_ref().and_then(|p| p.str("referred_by")).is_some() {
                Err(ReferralError::AlreadyReferred)
            } else {
                Err(ReferralError::AlreadyPaid)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// What a first payment adds to its fulfilment transaction for the referral, if any.
#[derive(Debug, Default)]
pub struct Reward {
    /// Ops for the buyer's profile update, and the condition that makes them apply once.
    pub buyer_ops: Vec<Op>,
    pub buyer_cond: Option<Cond>,
    /// The referrer's extension, when the referrer still exists.
    pub referrer: Option<Write>,
}

fn extended(current: Option<&str>, now: DateTime<Utc>) -> String {
    let base = current
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| *t > now)
        .unwrap_or(now);
    rfc3339(base + Duration::days(REWARD_DAYS))
}

fn pin(attr: &str, read: Option<&str>) -> Cond {
    match read {
        Some(v) => Cond::eq(attr, v.to_owned()),
        None => Cond::missing(attr),
    }
}

/// Plans the reward of `buyer`'s first payment from fresh reads. The conditions pin what
/// was read, so a concurrent change makes the fulfilment plan again rather than lose days.
pub async fn reward(services: &Services, buyer: &UserId) -> Result<Reward, StoreError> {
    let now = services.clock.now();
    let mut reward = Reward {
        buyer_ops: vec![Op::set_if_missing("first_paid_at", rfc3339(now))],
        ..Reward::default()
    };
    let profile = services.table.get(&keys::profile(buyer)).await?;
    let Some(p) = profile else { return Ok(reward) };
    let referrer = p
        .str("referrer_user_id")
        .and_then(|u| UserId::parse(u).ok());
    if p.str("referral_rewarded_at").is_some() || p.str("referred_by").is_none() {
        return Ok(reward);
    }
    let current = p.str("credit_until");
    reward
        .buyer_ops
        .push(Op::set("referral_rewarded_at", rfc3339(now)));
    reward
        .buyer_ops
        .push(Op::set("credit_until", extended(current, now)));
    reward.buyer_cond = Some(Cond::And(vec![
        Cond::missing("referral_rewarded_at"),
        pin("credit_until", current),
    ]));
    if let Some(referrer) = referrer.filter(|r| r != buyer) {
        // A deleted or missing referrer does not block the buyer's own reward.
        if let Some(r) = services.table.get(&keys::profile(&referrer)).await? {
            let theirs = r.str("credit_until");
            reward.referrer = Some(Write::Update {
                key: keys::profile(&referrer),
                ops: vec![
                    Op::set("credit_until", extended(theirs, now)),
                    Op::add("conversions", 1),
                ],
                cond: Some(Cond::And(vec![
                    Cond::ItemExists,
                    pin("credit_until", theirs),
                ])),
            });
        }
    }
    Ok(reward)
}
