//! Each function's environment, as `template.yaml` gives it: the variables of
//! `Globals.Function.Environment` and of the function's own `Environment`, nothing else.
//! The local stack builds every function from exactly those (docs/api.md: "the local stack gives
//! each function exactly the environment that template.yaml gives it"), so a variable
//! missing from a function in the template is missing locally too.
//!
//! Values come from the local configuration. Two template variables stand for several
//! local ones: `STRIPE_SECRET_ARN` (a Secrets Manager secret holding `STRIPE_SECRET_KEY`,
//! `STRIPE_WEBHOOK_SECRET` and `CLIENT_REFERENCE_SECRET`, read at cold start) and `STRIPE_PRICES` / `STRIPE_LINKS`
//! (which the single `STRIPE_PRICE_<ID>` / `STRIPE_LINK_<ID>` variables complete).

use crate::provision::{ProvisionError, parse, resources_of};
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn variables(environment: Option<&Value>) -> BTreeSet<String> {
    environment
        .map(untag)
        .and_then(|e| e.get("Variables"))
        .map(untag)
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every function's variable names, by its binary (`Metadata.BuildProperties.Binary`).
pub fn declared(template: &str) -> Result<BTreeMap<String, BTreeSet<String>>, ProvisionError> {
    let doc = parse(template)?;
    let globals = variables(
        doc.get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment")),
    );
    let resources = doc.get("Resources").and_then(Value::as_mapping);
    let mut out = BTreeMap::new();
    for (logical, props) in resources_of(&doc, "AWS::Serverless::Function") {
        let binary = resources
            .and_then(|r| r.get(logical.as_str()))
            .and_then(|r| r.get("Metadata"))
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| ProvisionError::Template(format!("{logical} names no Binary")))?;
        let mut names = globals.clone();
        names.extend(variables(props.get("Environment")));
        out.insert(binary.to_owned(), names);
    }
    Ok(out)
}

/// The template variable a local variable stands in for.
fn template_name(local: &str) -> &str {
    match local {
        "STRIPE_SECRET_KEY" | "STRIPE_WEBHOOK_SECRET" | "CLIENT_REFERENCE_SECRET" => {
            "STRIPE_SECRET_ARN"
        }
        n if n.starts_with("STRIPE_PRICE_") => "STRIPE_PRICES",
        n if n.starts_with("STRIPE_LINK_") => "STRIPE_LINKS",
        n => n,
    }
}

/// The local variables a function whose template declares `names` sees.
pub fn for_function(
    names: &BTreeSet<String>,
    local: &HashMap<String, String>,
) -> HashMap<String, String> {
    local
        .iter()
        .filter(|(name, _)| names.contains(template_name(name)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_sees_the_globals_its_own_variables_and_what_its_secret_holds() {
        let declared = declared(crate::provision::TEMPLATE).unwrap();
        let local = HashMap::from([
            ("STRIPE_SECRET_KEY".to_owned(), "sk_test_x".to_owned()),
            (
                "STRIPE_PRICE_CREDITS_STARTER".to_owned(),
                "price_x".to_owned(),
            ),
            ("FULFILMENT_QUEUE_URL".to_owned(), "http://q".to_owned()),
            ("NOT_IN_THE_TEMPLATE".to_owned(), "x".to_owned()),
        ]);
        let account = for_function(&declared["account"], &local);
        assert!(
            account.contains_key("STRIPE_PRICE_CREDITS_STARTER"),
            "the catalog is global"
        );
        assert!(
            !account.contains_key("STRIPE_SECRET_KEY"),
            "account has no Stripe secret"
        );
        assert!(!account.contains_key("FULFILMENT_QUEUE_URL"));
        let webhook = for_function(&declared["webhook"], &local);
        assert!(webhook.contains_key("STRIPE_SECRET_KEY"));
        assert!(webhook.contains_key("FULFILMENT_QUEUE_URL"));
        assert!(
            declared
                .values()
                .all(|names| !names.contains("NOT_IN_THE_TEMPLATE"))
        );
        assert!(!webhook.contains_key("NOT_IN_THE_TEMPLATE"));
    }
}
