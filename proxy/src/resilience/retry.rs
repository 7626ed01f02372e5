//! Which failed tries are tried again (Envoy's `retry_on` conditions, as
//! OSM's Retry policy names them), and how long to wait before the next.

use std::time::Duration;

use http::StatusCode;
use osm_api::v1;

/// How one try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// The upstream answered with response headers.
    Answered(StatusCode),
    /// No connection (refused, unreachable, TLS failed, connect timeout).
    ConnectFailed,
    /// Connected, then no response: reset, closed, or a protocol error.
    Reset,
    /// HTTP/2 REFUSED_STREAM: the upstream did not process the request.
    RefusedStream,
    /// The per-try timeout passed before the response headers.
    TimedOut,
}

impl Tried {
    /// A failure that counts against the endpoint for outlier detection.
    pub fn is_failure(&self) -> bool {
        match self {
            Tried::Answered(status) => status.is_server_error(),
            _ => true,
        }
    }
}

/// The conditions a policy retries on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Any 5xx, and no response at all (connect failure, reset, timeout).
    pub five_xx: bool,
    /// 502, 503, 504, and no response at all.
    pub gateway_error: bool,
    /// No response after connecting (reset, closed, timeout).
    pub reset: bool,
    pub connect_failure: bool,
    pub refused_stream: bool,
    /// 409 Conflict (Envoy's only retriable 4xx).
    pub retriable_4xx: bool,
    /// The codes in [`RetryRule::codes`].
    pub status_codes: bool,
}

impl Conditions {
    /// Reads condition names; an unknown one is an error naming it.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut c = Conditions::default();
        for name in names {
            let flag = match name.trim() {
                "5xx" => &mut c.five_xx,
                "gateway-error" => &mut c.gateway_error,
                "reset" => &mut c.reset,
                "connect-failure" => &mut c.connect_failure,
                "refused-stream" => &mut c.refused_stream,
                "retriable-4xx" => &mut c.retriable_4xx,
                "retriable-status-codes" => &mut c.status_codes,
                other => return Err(osm_api::resilience::unknown_condition(other)),
            };
            *flag = true;
        }
        Ok(c)
    }
}

/// A service's retry policy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRule {
    pub conditions: Conditions,
    /// For `retriable-status-codes`.
    pub codes: Vec<u16>,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub backoff_base: Duration,
}

/// The backoff base when the policy sets none (OSM's default).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);

impl RetryRule {
    /// From the config; the error says which part is wrong.
    pub fn from_config(policy: &v1::RetryPolicy) -> Result<Self, String> {
        let conditions = Conditions::parse(policy.retry_on.iter().map(String::as_str))?;
        let mut codes = Vec::new();
        for code in &policy.retriable_status_codes {
            match u16::try_from(*code)
                .ok()
                .filter(|c| (100..=599).contains(c))
            {
                Some(c) => codes.push(c),
                None => return Err(format!("{code} is not an HTTP status code")),
            }
        }
        if conditions.status_codes && codes.is_empty() {
            return Err("retriable-status-codes needs retriableStatusCodes".into());
        }
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        Ok(RetryRule {
            conditions,
            codes,
            num_retries: policy.num_retries,
            per_try_timeout: (policy.per_try_timeout_ms > 0).then(|| ms(policy.per_try_timeout_ms)),
            backoff_base: if policy.backoff_base_ms == 0 {
                DEFAULT_BACKOFF_BASE
            } else {
                ms(policy.backoff_base_ms)
            },
        })
    }

    /// Whether a try that ended so is tried again (retries left aside).
    pub fn retries(&self, tried: Tried) -> bool {
        let c = &self.conditions;
        match tried {
            Tried::Answered(status) => {
                let code = status.as_u16();
                (c.five_xx && status.is_server_error())
                    || (c.gateway_error && matches!(code, 502..=504))
                    || (c.retriable_4xx && code == 409)
                    || (c.status_codes && self.codes.contains(&code))
            }
            Tried::ConnectFailed => c.five_xx || c.gateway_error || c.connect_failure,
            Tried::Reset | Tried::TimedOut => c.five_xx || c.gateway_error || c.reset,
            Tried::RefusedStream => c.five_xx || c.gateway_error || c.reset || c.refused_stream,
        }
    }
}

/// The wait before retry number `retry` (0 for the first): full jitter
/// over an exponential bound, `base * 2^retry`, capped at ten times the
/// base. `random` is uniform in `[0, 1)`.
pub fn backoff(base: Duration, retry: u32, random: f64) -> Duration {
    let bound = base
        .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .min(base.saturating_mul(10));
    bound.mul_f64(random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(on: &[&str], codes: &[u32]) -> RetryRule {
        RetryRule::from_config(&v1::RetryPolicy {
            retry_on: on.iter().map(|s| s.to_string()).collect(),
            num_retries: 3,
            retriable_status_codes: codes.to_vec(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn each_condition_retries_what_envoy_retries() {
        let s = |c: u16| Tried::Answered(StatusCode::from_u16(c).unwrap());
        use Tried::*;
        // (conditions, tried, retried)
        let cases: &[(&[&str], Tried, bool)] = &[
            (&["5xx"], s(500), true),
            (&["5xx"], s(503), true),
            (&["5xx"], s(404), false),
            (&["5xx"], s(200), false),
            (&["5xx"], ConnectFailed, true),
            (&["5xx"], Reset, true),
            (&["5xx"], TimedOut, true),
            (&["gateway-error"], s(500), false),
            (&["gateway-error"], s(502), true),
            (&["gateway-error"], s(504), true),
            (&["gateway-error"], ConnectFailed, true),
            (&["reset"], s(503), false),
            (&["reset"], Reset, true),
            (&["reset"], ConnectFailed, false),
            (&["connect-failure"], ConnectFailed, true),
            (&["connect-failure"], Reset, false),
            (&["connect-failure"], s(503), false),
            (&["refused-stream"], RefusedStream, true),
            (&["refused-stream"], Reset, false),
            (&["retriable-4xx"], s(409), true),
            (&["retriable-4xx"], s(429), false),
            (&["retriable-status-codes"], s(429), true),
            (&["retriable-status-codes"], s(503), false),
            (&["connect-failure", "retriable-4xx"], s(409), true),
        ];
        for (on, tried, retried) in cases {
            assert_eq!(
                rule(on, &[429]).retries(*tried),
                *retried,
                "{on:?} {tried:?}"
            );
        }
    }

    #[test]
    fn every_condition_validation_accepts_is_enforced() {
        for name in osm_api::resilience::RETRY_CONDITIONS {
            let c = Conditions::parse([*name]).unwrap();
            assert_ne!(c, Conditions::default(), "{name}");
        }
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let err = |on: &[&str], codes: &[u32]| {
            RetryRule::from_config(&v1::RetryPolicy {
                retry_on: on.iter().map(|s| s.to_string()).collect(),
                retriable_status_codes: codes.to_vec(),
                ..Default::default()
            })
            .unwrap_err()
        };
        assert_eq!(
            err(&["5xx", "sometimes"], &[]),
            "\"sometimes\" is not a retry condition (one of 5xx, gateway-error, reset, \
             connect-failure, refused-stream, retriable-4xx, retriable-status-codes)"
        );
        assert_eq!(
            err(&["retriable-status-codes"], &[]),
            "retriable-status-codes needs retriableStatusCodes"
        );
        assert_eq!(err(&["5xx"], &[700]), "700 is not an HTTP status code");
        let defaults = rule(&["5xx"], &[]);
        assert_eq!(defaults.backoff_base, DEFAULT_BACKOFF_BASE);
        assert_eq!(defaults.per_try_timeout, None);
    }

    #[test]
    fn backoff_is_jittered_exponential_capped_at_ten_times_the_base() {
        let base = Duration::from_millis(100);
        let ms = |retry, random| backoff(base, retry, random).as_millis();
        assert_eq!(ms(0, 0.0), 0);
        assert_eq!(ms(0, 0.5), 50);
        assert_eq!(ms(1, 0.5), 100);
        assert_eq!(ms(2, 0.5), 200);
        assert_eq!(ms(3, 0.999_999), 799);
        assert_eq!(ms(4, 1.0), 1000, "capped at 10x");
        assert_eq!(ms(40, 1.0), 1000, "no overflow");
    }
}
