//! Log set-up with `tracing`: JSON lines (default) or a human format for a terminal, level from
//! config unless `RUST_LOG` is set. What is logged is chosen at each call site; nothing logs
//! credentials, gateway keys, phone numbers, emails or transcripts.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Calling it twice keeps the first.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        "pretty" => builder.compact().try_init(),
        _ => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
