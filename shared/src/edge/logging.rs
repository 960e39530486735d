//! Logs: JSON lines for CloudWatch, and the span that ties every line about one event
//! together.

use crate::stripe::Event;

/// JSON logs for CloudWatch; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .without_time()
        .try_init();
}

/// The span every log line about one event carries: its id and type, and the user and
/// checkout session it concerns (from our metadata, when the object has it).
pub fn event_span(event: &Event) -> tracing::Span {
    let refs = event.refs();
    let user = refs.user().unwrap_or("");
    let session = refs.id().filter(|id| id.starts_with("cs_")).unwrap_or("");
    tracing::info_span!("event", event_id = %event.id, event_type = %event.kind, user = %user, session = %session)
}
