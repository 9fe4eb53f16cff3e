//! `init_with` installs the process-wide subscriber once, and says so when asked again (a test
//! binary of its own: the global subscriber outlives any one test).

#![allow(clippy::unwrap_used, missing_docs)]

use ami_telemetry::{TelemetryConfig, TelemetryError, current_context, init_with};

#[test]
fn the_global_subscriber_is_installed_once() {
    let config = TelemetryConfig::new("ami-telemetry-test").with_fmt(false);
    let guard = init_with(&config).unwrap();
    assert!(!guard.is_exporting());
    assert!(tracing::dispatcher::has_been_set());
    assert_eq!(tracing::info_span!("x").in_scope(current_context), None);
    assert!(matches!(
        init_with(&config),
        Err(TelemetryError::AlreadyInstalled)
    ));
}
