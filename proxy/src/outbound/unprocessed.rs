//! Requests a try left unprocessed, which any client-side proxy may send
//! again whatever their method (the mesh's own retry, without a retry
//! policy): no connection was made to the endpoint (refused, unreachable,
//! timed out connecting), the peer refused the HTTP/2 stream, or the
//! server's proxy said its application never received the request (its
//! pod was stopping or its app restarting). Only a peer proxy is believed
//! about the last: an endpoint in the mesh, whose identity the mTLS
//! handshake proved.

use http::{HeaderMap, HeaderName, StatusCode};

use crate::upstream::ForwardError;

/// Set by a server's proxy on an answer to a request it did not pass to
/// its application because it could not reach it.
pub const UNPROCESSED: HeaderName = HeaderName::from_static("x-osm-unprocessed");

/// Whether a try's outcome left the request unprocessed (pure).
pub fn unprocessed(
    outcome: Result<(StatusCode, &HeaderMap), &ForwardError>,
    peer_is_mesh_proxy: bool,
) -> bool {
    match outcome {
        Err(ForwardError::Connect(_) | ForwardError::ConnectTimeout(_)) => true,
        Err(ForwardError::RefusedStream(_)) => true,
        Err(_) => false,
        Ok((status, headers)) => {
            peer_is_mesh_proxy
                && matches!(
                    status,
                    StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE
                )
                && headers.contains_key(UNPROCESSED)
        }
    }
}

/// Whether the inbound proxy's failure to reach its application left the
/// request unsent to it (pure).
pub fn app_never_got_it(error: &ForwardError) -> bool {
    matches!(
        error,
        ForwardError::Connect(_) | ForwardError::ConnectTimeout(_) | ForwardError::RefusedStream(_)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn what_may_be_sent_again_whatever_the_method() {
        let marked = {
            let mut h = HeaderMap::new();
            h.insert(UNPROCESSED, "application unreachable".parse().unwrap());
            h
        };
        let plain = HeaderMap::new();
        let connect = ForwardError::Connect("refused".into());
        let timeout = ForwardError::ConnectTimeout("slow".into());
        let refused = ForwardError::RefusedStream("refused".into());
        let reset = ForwardError::Reset("reset".into());
        let late = ForwardError::Timeout(Duration::from_secs(1));
        type Outcome<'a> = Result<(StatusCode, &'a HeaderMap), &'a ForwardError>;
        let cases: [(Outcome<'_>, bool, bool); 10] = [
            (Err(&connect), true, true),
            (Err(&timeout), true, true),
            (Err(&refused), false, true),
            // Sent, maybe processed: only a retry policy may resend.
            (Err(&reset), true, false),
            (Err(&late), true, false),
            (Ok((StatusCode::BAD_GATEWAY, &marked)), true, true),
            (Ok((StatusCode::SERVICE_UNAVAILABLE, &marked)), true, true),
            // Not believed from outside the mesh, nor on another status.
            (Ok((StatusCode::BAD_GATEWAY, &marked)), false, false),
            (Ok((StatusCode::OK, &marked)), true, false),
            (Ok((StatusCode::BAD_GATEWAY, &plain)), true, false),
        ];
        for (outcome, mesh, want) in cases {
            assert_eq!(unprocessed(outcome, mesh), want, "{outcome:?} mesh={mesh}");
        }
        assert!(app_never_got_it(&connect) && !app_never_got_it(&reset));
    }
}
