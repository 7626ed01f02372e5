//! The resilience vocabulary the validator and the proxy share: what
//! validation accepts in a Retry policy, the proxy enforces.

/// The retry conditions (Envoy's names, as OSM's Retry `retryOn` takes
/// them, comma-separated).
pub const RETRY_CONDITIONS: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "refused-stream",
    "retriable-4xx",
    "retriable-status-codes",
];

/// The condition that retries the policy's own status codes.
pub const RETRIABLE_STATUS_CODES: &str = "retriable-status-codes";

/// The names of a `retryOn` value: comma-separated, blanks ignored.
pub fn retry_conditions(retry_on: &str) -> impl Iterator<Item = &str> {
    retry_on.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Why a condition name is not one: the name and every valid one.
pub fn unknown_condition(name: &str) -> String {
    format!(
        "{name:?} is not a retry condition (one of {})",
        RETRY_CONDITIONS.join(", ")
    )
}
