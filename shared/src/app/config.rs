//! Configuration, read once per cold start from the environment (`docs/api.md`, "Configuration").
//!
//! Secrets are `SecretString`s: their `Debug` prints `[REDACTED]`, so a config can be logged.

use crate::domain::catalog::{Catalog, CatalogError, DEFAULT_CATALOG};
use secrecy::ExposeSecret;
pub use secrecy::SecretString;

pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_FREE_USES: i64 = 3;
/// How long an intake that crashed after its claim blocks a retry of the same event.
pub const DEFAULT_IN_PROGRESS_SECS: i64 = 60;
/// How long a function keeps the Stripe secrets it read from Secrets Manager (`runtime::secrets`).
pub const DEFAULT_SECRETS_TTL_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not a valid number")]
    NotANumber(&'static str),
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{0} must be true or false")]
    NotABool(&'static str),
    #[error("cannot read the catalog at {path}: {source}")]
    CatalogFile {
        path: String,
        source: std::io::Error,
    },
    #[error("{source}: {0}", source = .1)]
    Catalog(CatalogError, &'static str),
}

/// Which Stripe mode a key belongs to; events of the other mode are not applied (intake
/// answers them so that Stripe retries: `usecases::intake`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    Test,
    Live,
}

impl KeyMode {
    /// The mode of a secret or restricted key, by its prefix (`sk_live_`, `rk_live_`).
    pub fn of(key: &str) -> Self {
        if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
            KeyMode::Live
        } else {
            KeyMode::Test
        }
    }

    pub fn is_live(self) -> bool {
        self == KeyMode::Live
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub stripe_secret_key: Option<SecretString>,
    pub webhook_secrets: Vec<SecretString>,
    /// The secrets that sign and verify Payment Link references
    /// ([`crate::domain::reference`]): `CLIENT_REFERENCE_SECRET` (a field of the Stripe
    /// secret in AWS; comma-separated while rotating), else one derived from the Stripe
    /// secret key ([`derived_reference_secret`]); empty without either.
    pub reference_secrets: Vec<SecretString>,
    pub stripe_api_base: String,
    pub public_base_url: String,
    pub free_uses: i64,
    pub table_name: String,
    pub queue_url: Option<String>,
    pub in_progress_secs: i64,
    /// How long the Stripe secrets read from Secrets Manager are kept before a re-read.
    pub secrets_ttl_secs: i64,
    pub catalog: Catalog,
    /// Stripe Tax (`AUTOMATIC_TAX`, the template's `AutomaticTax`): checkout sessions
    /// compute tax, and PaymentIntent purchases take an address and charge a Tax
    /// Calculation's total.
    pub automatic_tax: bool,
}

/// The reference secret of a stack that names none: HMAC-SHA256 of the Stripe secret key
/// under a fixed label, so every function that holds the key derives the same one. A new
/// key (a rotation) makes references handed out under the old one unclaimed payments,
/// which is why a deployment should set `CLIENT_REFERENCE_SECRET` of its own.
pub fn derived_reference_secret(stripe_key: &SecretString) -> SecretString {
    use hmac::{Hmac, KeyInit, Mac};
    let mut m =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(stripe_key.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
    m.update(b"billing client_reference_id secret v1");
    let bytes = m.finalize().into_bytes();
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// `STRIPE_WEBHOOK_SECRET`'s value: comma-separated during a rotation.
pub fn split_secrets(value: &str) -> Vec<SecretString> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect()
}

/// `STRIPE_PRICE_<ID>` / `STRIPE_LINK_<ID>` from the compact lists `STRIPE_PRICES` /
/// `STRIPE_LINKS` (`plan_id=value,…`), which a deployment sets from one template parameter.
fn from_list(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    let (list, plan) = if let Some(plan) = name.strip_prefix("STRIPE_PRICE_") {
        ("STRIPE_PRICES", plan)
    } else {
        ("STRIPE_LINKS", name.strip_prefix("STRIPE_LINK_")?)
    };
    get(list)?.split(',').find_map(|pair| {
        let (id, value) = pair.split_once('=')?;
        (id.trim().eq_ignore_ascii_case(plan) && !value.trim().is_empty())
            .then(|| value.trim().to_owned())
    })
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds a config from any name → value lookup (the environment, or a test's map).
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or(ConfigError::NotANumber(name)),
            }
        };
        // The catalog a deployment gives (`CATALOG_JSON`, the template's `CatalogJson`),
        // else a file (`CATALOG_PATH`), else the one compiled in. All of it parses, or the
        // cold start fails: no plan of a bad catalog is ever served.
        let (catalog_json, catalog_source) = match (get("CATALOG_JSON"), get("CATALOG_PATH")) {
            (Some(json), _) => (json, "CATALOG_JSON"),
            (None, Some(path)) => (
                std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::CatalogFile { path, source })?,
                "CATALOG_PATH",
            ),
            (None, None) => (DEFAULT_CATALOG.to_owned(), "the compiled-in catalog"),
        };
        let catalog = Catalog::parse(&catalog_json, |name| {
            get(name).or_else(|| from_list(&get, name))
        })
        .map_err(|e| ConfigError::Catalog(e, catalog_source))?;
        // A price list naming a plan the catalog does not have (a renamed plan) would leave
        // that plan unsellable and its subscribers' renewals without a plan: refuse it.
        for list in ["STRIPE_PRICES", "STRIPE_LINKS"] {
            let unknown = get(list).and_then(|v| {
                v.split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(id, _)| id.trim().to_owned())
                    .find(|id| !id.is_empty() && !catalog.names(id))
            });
            if let Some(id) = unknown {
                return Err(ConfigError::Catalog(
                    CatalogError::UnknownInList(list, id),
                    catalog_source,
                ));
            }
        }
        let free_uses = number("FREE_USES", DEFAULT_FREE_USES)?;
        let stripe_secret_key = get("STRIPE_SECRET_KEY").map(SecretString::from);
        let reference_secrets = match get("CLIENT_REFERENCE_SECRET").map(|v| split_secrets(&v)) {
            Some(set) if !set.is_empty() => set,
            _ => stripe_secret_key
                .iter()
                .map(derived_reference_secret)
                .collect(),
        };
        Ok(Self {
            stripe_secret_key,
            reference_secrets,
            webhook_secrets: get("STRIPE_WEBHOOK_SECRET")
                .map(|v| split_secrets(&v))
                .unwrap_or_default(),
            stripe_api_base: get("STRIPE_API_BASE")
                .unwrap_or_else(|| DEFAULT_STRIPE_API_BASE.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            public_base_url: get("PUBLIC_BASE_URL")
                .unwrap_or_else(|| "http://127.0.0.1:3000".to_owned())
                .trim_end_matches('/')
                .to_owned(),
            free_uses,
            table_name: get("BILLING_TABLE").unwrap_or_else(|| "billing".to_owned()),
            queue_url: get("FULFILMENT_QUEUE_URL"),
            in_progress_secs: number("IN_PROGRESS_SECONDS", DEFAULT_IN_PROGRESS_SECS)?,
            secrets_ttl_secs: number("STRIPE_SECRETS_TTL_SECONDS", DEFAULT_SECRETS_TTL_SECS)?,
            catalog: catalog.with_free_uses(free_uses),
            automatic_tax: match get("AUTOMATIC_TAX").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(ConfigError::NotABool("AUTOMATIC_TAX")),
            },
        })
    }

    /// The mode of the configured secret key, if one is configured.
    pub fn key_mode(&self) -> Option<KeyMode> {
        Some(KeyMode::of(
            self.stripe_secret_key.as_ref()?.expose_secret(),
        ))
    }

    pub fn stripe_configured(&self) -> bool {
        self.stripe_secret_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.stripe_api_base, DEFAULT_STRIPE_API_BASE);
        assert_eq!(c.free_uses, 3);
        assert!(c.webhook_secrets.is_empty());
        assert!(!c.stripe_configured());
        assert_eq!(c.key_mode(), None);
    }

    #[test]
    fn webhook_secrets_are_comma_separated_for_rotation() {
        let c = config(&[("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new,")]).unwrap();
        let secrets: Vec<&str> = c
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["whsec_old", "whsec_new"]);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = config(&[
            ("STRIPE_SECRET_KEY", "sk_test_supersecret"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_hidden"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        assert!(
            !printed.contains("supersecret") && !printed.contains("whsec_hidden"),
            "{printed}"
        );
    }

    #[test]
    fn the_key_prefix_decides_the_mode() {
        assert_eq!(
            config(&[("STRIPE_SECRET_KEY", "sk_live_x")])
                .unwrap()
                .key_mode(),
            Some(KeyMode::Live)
        );
        assert_eq!(
            config(&[("STRIPE_SECRET_KEY", "rk_test_x")])
                .unwrap()
                .key_mode(),
            Some(KeyMode::Test)
        );
    }

    #[test]
    fn price_ids_may_come_from_the_compact_list_and_single_variables_win() {
        let c = config(&[
            (
                "STRIPE_PRICES",
                "credits_starter=price_list_1, pro_monthly = price_list_2",
            ),
            ("STRIPE_PRICE_PRO_MONTHLY", "price_single"),
            ("STRIPE_LINKS", "deposit_500=https://buy.stripe.com/x"),
        ])
        .unwrap();
        let plan = |id: &str| {
            c.catalog
                .get(&crate::domain::ids::PlanId::parse(id).unwrap())
                .unwrap()
                .clone()
        };
        assert_eq!(
            plan("credits_starter").price_id.as_deref(),
            Some("price_list_1")
        );
        assert_eq!(
            plan("pro_monthly").price_id.as_deref(),
            Some("price_single")
        );
        assert_eq!(
            plan("deposit_500").payment_link.as_deref(),
            Some("https://buy.stripe.com/x")
        );
        assert_eq!(plan("uses_20").price_id, None);
    }

    #[test]
    fn a_catalog_given_at_deploy_time_replaces_the_compiled_one() {
        let json = r#"{"plans":[{"id":"team","name":"Team","mode":"subscription","amount":9900,"currency":"eur","interval":"month"}]}"#;
        let c = config(&[("CATALOG_JSON", json), ("STRIPE_PRICES", "team=price_team")]).unwrap();
        let ids: Vec<&str> = c.catalog.plans().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["team"]);
        assert_eq!(c.catalog.by_price("price_team").unwrap().currency, "eur");
        // Blank is the template's default: the compiled-in catalog.
        let blank = config(&[("CATALOG_JSON", "  ")]).unwrap();
        assert!(blank.catalog.plans().any(|p| p.id.as_str() == "pro_annual"));
    }

    #[test]
    fn a_bad_deploy_time_catalog_fails_the_cold_start_with_one_clear_message() {
        let good = r#"{"id":"a","name":"A","mode":"payment","amount":100,"currency":"usd"}"#;
        let cases = [
            ("{\"plans\": [", "CATALOG_JSON: the catalog is not valid"),
            (
                &format!(
                    r#"{{"plans":[{good},{{"id":"b","name":"B","mode":"payment","amount":100,"currency":"dollars"}}]}}"#
                ),
                "CATALOG_JSON: plan b: currency must be three lowercase letters",
            ),
            (
                &format!(
                    r#"{{"plans":[{good},{{"id":"c","name":"C","mode":"payment","amount":-5,"currency":"usd"}}]}}"#
                ),
                "CATALOG_JSON: plan c: amount must be positive",
            ),
            (
                &format!(r#"{{"plans":[{good},{good}]}}"#),
                "CATALOG_JSON: the catalog names plan a twice",
            ),
        ];
        for (json, expected) in cases {
            // A good plan before the bad one changes nothing: there is no config at all.
            let err = config(&[("CATALOG_JSON", json)]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn prices_that_would_let_one_plan_decide_for_another_fail_the_cold_start() {
        let cases = [
            // Two plans on one Stripe price: the first in order would take the other's sales.
            (
                vec![
                    ("STRIPE_PRICE_PRO_MONTHLY", "price_same"),
                    ("STRIPE_PRICE_PRO_ANNUAL", "price_same"),
                ],
                "share a Stripe price",
            ),
            // A list naming a plan the catalog lacks (a renamed plan): unsellable, renewals
            // without a plan.
            (
                vec![("STRIPE_PRICES", "pro_monthly=price_1,pro_montly=price_2")],
                "STRIPE_PRICES names pro_montly",
            ),
            (
                vec![("STRIPE_LINKS", "retainer_old=https://buy.stripe.com/x")],
                "STRIPE_LINKS names retainer_old",
            ),
        ];
        for (vars, expected) in cases {
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let fine = config(&[("STRIPE_PRICES", "pro_monthly=price_1, PRO_ANNUAL=price_2")]).unwrap();
        assert_eq!(
            fine.catalog.by_price("price_2").unwrap().id.as_str(),
            "pro_annual"
        );
    }

    #[test]
    fn the_compiled_catalog_fits_a_template_parameter() {
        // CatalogJson holds the catalog as one line, at most 2,500 bytes (its MaxLength:
        // a Lambda function's environment is 4 KB in all; docs/decisions.md, "Catalog at deploy time").
        let value: serde_json::Value = serde_json::from_str(DEFAULT_CATALOG).unwrap();
        let compact = value.to_string();
        assert!(compact.len() <= 2_500, "{} bytes", compact.len());
    }

    #[test]
    fn a_bad_number_is_a_clear_error() {
        assert!(!config(&[]).unwrap().automatic_tax, "tax is off by default");
        assert!(config(&[("AUTOMATIC_TAX", "true")]).unwrap().automatic_tax);
        assert!(config(&[("AUTOMATIC_TAX", "yes")]).is_err());
        let err = config(&[("FREE_USES", "three")]).unwrap_err();
        assert_eq!(err.to_string(), "FREE_USES is not a valid number");
        assert!(config(&[("FREE_USES", "-1")]).is_err());
    }
}
