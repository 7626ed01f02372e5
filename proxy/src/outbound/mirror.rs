//! Route mirrors (`RequestMirror`): a copy of a share of a rule's requests
//! goes to another endpoint set, fire and forget. The copy is sent from
//! its own task and its answer dropped; the request itself never waits for
//! it. A request whose body could not be kept (streamed, or larger than
//! [`super::attempts::MAX_REPLAY_BYTES`]) is not copied, and counted so.

use std::time::Duration;

use http::Request;

use super::try_once::try_once;
use crate::{config::Mirror, http_util::UpstreamBody, routing::choose_endpoint, state::Shared};

/// How long a copy may take before it is abandoned.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a request is in the mirrored share.
pub fn sampled(per_million: u32, random: u32) -> bool {
    random % 1_000_000 < per_million
}

/// Sends copies of a request to the mirrors whose share it falls in;
/// `copy` makes one (None: the body could not be kept).
pub fn send_copies(
    shared: &Shared,
    mirrors: &[Mirror],
    copy: Option<impl Fn() -> Request<UpstreamBody>>,
) {
    for mirror in mirrors {
        if !sampled(mirror.per_million, fastrand::u32(..)) {
            continue;
        }
        let set = &mirror.endpoints.key;
        let Some(copy) = copy.as_ref() else {
            shared.metrics.record_mirror(set, "skipped");
            continue;
        };
        let Some(endpoint) = choose_endpoint(&mirror.endpoints).cloned() else {
            shared.metrics.record_mirror(set, "no_endpoint");
            continue;
        };
        let request = copy();
        let (answered, failed) = (
            shared.metrics.mirror_counter(set, "answered"),
            shared.metrics.mirror_counter(set, "failed"),
        );
        let set = set.clone();
        tokio::spawn(async move {
            match try_once(&endpoint, None, request, Some(MIRROR_TIMEOUT), None).await {
                Ok(_) => answered.increment(1),
                Err(error) => {
                    failed.increment(1);
                    tracing::debug!(%set, endpoint = %endpoint.addr(), %error, "mirrored request failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_mirrored_follows_the_fraction() {
        assert!(sampled(1_000_000, u32::MAX));
        assert!(!sampled(0, 0));
        let hits = (0..100_000u32)
            .filter(|i| sampled(250_000, i.wrapping_mul(2_654_435_761)))
            .count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
    }
}
