//! `local-stack stripe-events`: prints the Stripe sample events of `events/stripe/` as the one
//! event builder builds them ([`billing_testing::samples`]), a JSON list of `{"file", "event"}`;
//! `infra/make_sample_events.py` writes them and the samples that wrap one.

use std::process::ExitCode;

/// The samples as one JSON document.
pub fn document() -> serde_json::Value {
    billing_testing::samples::stripe_samples()
        .into_iter()
        .map(|(file, event)| serde_json::json!({ "file": file, "event": event }))
        .collect()
}

pub fn run() -> ExitCode {
    println!("{}", document());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use std::collections::BTreeMap;

    #[test]
    fn the_samples_in_events_stripe_are_what_the_one_event_builder_builds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/stripe");
        let on_disk: BTreeMap<String, Value> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, serde_json::from_str(&text).unwrap())
            })
            .collect();
        let built: BTreeMap<String, Value> = billing_testing::samples::stripe_samples()
            .into_iter()
            .map(|(file, event)| (file.to_owned(), event))
            .collect();
        assert_eq!(
            on_disk.keys().collect::<Vec<_>>(),
            built.keys().collect::<Vec<_>>(),
            "events/stripe/ holds exactly the built samples (run python3 infra/make_sample_events.py)"
        );
        for (file, event) in &built {
            assert_eq!(
                &on_disk[file], event,
                "events/stripe/{file} is not what the builder builds (run python3 infra/make_sample_events.py)"
            );
        }
    }
}
