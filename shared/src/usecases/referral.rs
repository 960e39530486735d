//! Referrals: every account has a code; a new user may claim someone's code before paying;
//! on the referred user's first subscription invoice with money paid (`amount_paid` > 0:
//! never a $0 trial or 100%-off invoice, a status alone, a credit pack or a one-time
//! purchase), both get `credit_until` extended by 45 days from the later of now and its
//! current value, once, in the same transaction as that invoice's fulfilment
//! (`docs/money-rules.md`). The reward is recorded on that invoice's payment
//! (its ledger, and the invoice's marker), so a full refund or dispute of that charge takes
//! it back from both sides in any order of events (`usecases::fulfil::refund`).

use crate::app::Services;
use crate::domain::ids::UserId;
use crate::store::records::profile::{self, ProfileChange};
use crate::store::records::referral_code;
use crate::store::{StoreError, Write};
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
        let found = profile::load(services.table.as_ref(), user).await?;
        if let Some(code) = found.and_then(|p| p.referral_code) {
            return Ok(code);
        }
        let code = new_code();
        let now = services.clock.now();
        let writes = vec![
            referral_code::taken(&code, user),
            ProfileChange::new(user, now).referral_code(&code).write(),
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
    let table = services.table.as_ref();
    let owner = referral_code::owner(table, &code)
        .await?
        .ok_or(ReferralError::UnknownCode)?;
    if &owner == user {
        return Err(ReferralError::SelfReferral);
    }
    let mine = profile::load(table, user).await?.unwrap_or_default();
    if mine.referred_by.is_some() {
        return Err(ReferralError::AlreadyReferred);
    }
    if mine.first_paid_at.is_some() {
        return Err(ReferralError::AlreadyPaid);
    }
    let now = services.clock.now();
    let change = ProfileChange::new(user, now).referred(&code, &owner);
    match table.apply(change.write()).await {
        Ok(()) => Ok(ClaimOutcome { referred_by: code }),
        // Raced with another claim or a first payment: say which, from a fresh read.
        Err(StoreError::ConditionFailed) => {
            let now = profile::load(table, user).await?.unwrap_or_default();
            if now.referred_by.is_some() {
                Err(ReferralError::AlreadyReferred)
            } else {
                Err(ReferralError::AlreadyPaid)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// What a first payment adds to its fulfilment transaction: the stamp that closes
/// referral claims, and the referral's reward, if any. The default adds nothing.
#[derive(Debug, Default)]
pub struct Reward {
    first_payment: bool,
    /// The buyer's new `credit_until`, and the value it replaces, when the buyer was
    /// referred and not yet rewarded.
    buyer: Option<(DateTime<Utc>, Option<String>)>,
    /// The referrer's extension, when the referrer still exists.
    referrer: Option<Write>,
    referrer_user: Option<UserId>,
}

impl Reward {
    /// A payment that earns no reward but closes referral claims (money paid for a pack or
    /// a one-time purchase).
    pub fn first_payment_only() -> Self {
        Self {
            first_payment: true,
            ..Self::default()
        }
    }

    /// The reward this payment earns, recorded on its ledger so a full refund or a
    /// dispute can take it back: `Some(referrer)` when the buyer is rewarded now.
    pub fn earned(&self) -> Option<Option<UserId>> {
        self.buyer.as_ref().map(|_| self.referrer_user.clone())
    }

    /// A reward earned by a payment already taken back in full when it is applied (a refund
    /// or dispute delivered before its invoice): the stamps that make it once per account,
    /// and no days for either side (a won dispute gives them, as for any reward taken back).
    pub fn applied_then_taken_back(
        self,
        buyer: ProfileChange,
        now: DateTime<Utc>,
        source: Option<&str>,
    ) -> ProfileChange {
        let mut change = buyer;
        if self.first_payment {
            change = change.first_payment(now);
        }
        if self.buyer.is_some() {
            change = change.referral_rewarded(now, source);
        }
        change
    }

    /// Adds the reward to the buyer's profile change; returns the referrer's write too.
    /// `source` names a subscription that earned it (see [`subscription_source`]).
    pub fn applied_to(
        self,
        buyer: ProfileChange,
        now: DateTime<Utc>,
        source: Option<&str>,
    ) -> (ProfileChange, Option<Write>) {
        let mut change = buyer;
        if self.first_payment {
            change = change.first_payment(now);
        }
        if let Some((until, read)) = self.buyer {
            change = change
                .referral_rewarded(now, source)
                .extend_credit_until(until, read.as_deref());
        }
        (change, self.referrer)
    }
}

/// What a subscription's reward was recorded as on the buyer before rewards followed the
/// first paid invoice: that subscription's first invoice, fully refunded or disputed, takes
/// the reward back (`fulfil::refund`, for rewards earned then).
pub fn subscription_source(subscription: &str) -> String {
    format!("subscription:{subscription}")
}

/// What a reward is recorded as on the buyer: the invoice whose money earned it (the
/// reward itself rides on that invoice's payment, see the module's doc).
pub fn invoice_source(invoice: &str) -> String {
    format!("invoice:{invoice}")
}

fn extended(current: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let base = current.filter(|t| *t > now).unwrap_or(now);
    base + Duration::days(REWARD_DAYS)
}

/// Plans the reward of `buyer`'s first payment from fresh reads. The conditions pin what
/// was read, so a concurrent change makes the fulfilment plan again rather than lose days.
pub async fn reward(services: &Services, buyer: &UserId) -> Result<Reward, StoreError> {
    let now = services.clock.now();
    let table = services.table.as_ref();
    let stamp_only = Reward {
        first_payment: true,
        ..Reward::default()
    };
    let Some(p) = profile::load(table, buyer).await? else {
        return Ok(stamp_only);
    };
    if p.referral_rewarded_at.is_some() || p.referred_by.is_none() {
        return Ok(stamp_only);
    }
    let mut reward = Reward {
        first_payment: true,
        buyer: Some((extended(p.credit_until_time(), now), p.credit_until.clone())),
        referrer: None,
        referrer_user: None,
    };
    let referrer = p
        .referrer_user_id
        .as_deref()
        .and_then(|u| UserId::parse(u).ok());
    if let Some(referrer) = referrer.filter(|r| r != buyer) {
        // A deleted or missing referrer does not block the buyer's own reward.
        if let Some(r) = profile::load(table, &referrer).await? {
            let change = ProfileChange::existing(&referrer)
                .extend_credit_until(
                    extended(r.credit_until_time(), now),
                    r.credit_until.as_deref(),
                )
                .referral_conversion();
            reward.referrer = Some(change.write());
            reward.referrer_user = Some(referrer);
        }
    }
    Ok(reward)
}

/// `credit_until` moved back by the reward's days (or never mind when it is unset).
fn shortened(current: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    Some(current? - Duration::days(REWARD_DAYS))
}

/// Takes back (`take`) or gives back the reward of a payment that is fully taken back, or
/// no longer is (a won dispute): the buyer's `credit_until` (added to `buyer`, the buyer's
/// change of the same transaction) and the referrer's, each pinned to the value read.
pub async fn taken_back(
    services: &Services,
    referrer: Option<&UserId>,
    buyer: ProfileChange,
    buyer_id: &UserId,
    take: bool,
) -> Result<(ProfileChange, Option<Write>), StoreError> {
    let now = services.clock.now();
    let table = services.table.as_ref();
    let moved = |current: Option<DateTime<Utc>>| match take {
        true => shortened(current),
        false => Some(extended(current, now)),
    };
    let mut buyer = buyer;
    let mine = profile::load(table, buyer_id).await?.unwrap_or_default();
    if let Some(until) = moved(mine.credit_until_time()) {
        buyer = buyer.extend_credit_until(until, mine.credit_until.as_deref());
    }
    let Some(referrer) = referrer.filter(|r| *r != buyer_id) else {
        return Ok((buyer, None));
    };
    let Some(theirs) = profile::load(table, referrer).await? else {
        return Ok((buyer, None));
    };
    let mut change = ProfileChange::existing(referrer).referral_conversion_counted(!take);
    if let Some(until) = moved(theirs.credit_until_time()) {
        change = change.extend_credit_until(until, theirs.credit_until.as_deref());
    }
    Ok((buyer, Some(change.write())))
}
