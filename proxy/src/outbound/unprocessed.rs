//! Requests a try left unprocessed, which any client-side proxy may send
//! again whatever their method (the mesh's own retry, without a retry
//! policy): no connection was made to the endpoint (refused, unreachable,
//! timed out connecting), the peer refused the HTTP/2 stream, or the
//! server's proxy said its application never received the request (its
//! pod was stopping or its app restarting). Only a peer proxy is believed
//! about the last: an endpoint in the mesh, whose identity the mTLS
//! handshake proved. An idempotent request (GET, HEAD, OPTIONS, TRACE)
//! whose connection was lost before any answer may be sent again too, as
//! RFC 9110 (9.2.2) allows: an app killed mid-request.

use http::{HeaderMap, HeaderName, Method, StatusCode};

use crate::upstream::ForwardError;

/// Set by a server's proxy on an answer to a request it did not pass to
/// its application because it could not reach it.
pub const UNPROCESSED: HeaderName = HeaderName::from_static("x-osm-unprocessed");

/// Removes the marker from an application's own response: only the
/// server's proxy may say the application did not get a request (an app
/// that set it could have a POST sent twice).
pub fn strip_from_app(headers: &mut HeaderMap) {
    headers.remove(UNPROCESSED);
}

/// Methods a client may repeat without changing the outcome, which may be
/// sent again after a lost connection.
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether a try's outcome left the request unprocessed, or lost it in a
/// way an idempotent request may be sent again after (pure).
pub fn unprocessed(
    outcome: Result<(StatusCode, &HeaderMap), &ForwardError>,
    peer_is_mesh_proxy: bool,
    idempotent: bool,
) -> bool {
    match outcome {
        Err(ForwardError::Connect(_) | ForwardError::ConnectTimeout(_)) => true,
        Err(ForwardError::RefusedStream(_)) => true,
        Err(ForwardError::Reset(_)) => idempotent,
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

/// Why the inbound proxy's failure with its application lets the
/// client's proxy send the request elsewhere, if it does (pure): the app
/// never got it, or an idempotent request lost its connection.
pub fn resendable(error: &ForwardError, idempotent: bool) -> Option<&'static str> {
    match error {
        ForwardError::Connect(_)
        | ForwardError::ConnectTimeout(_)
        | ForwardError::RefusedStream(_) => Some("application unreachable"),
        ForwardError::Reset(_) if idempotent => Some("connection lost, idempotent request"),
        _ => None,
    }
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
        let cases: [(Outcome<'_>, bool, bool, bool); 12] = [
            (Err(&connect), true, false, true),
            (Err(&timeout), true, false, true),
            (Err(&refused), false, false, true),
            // Sent, maybe processed: only an idempotent request (or a
            // retry policy) may be sent again.
            (Err(&reset), true, false, false),
            (Err(&reset), true, true, true),
            (Err(&late), true, true, false),
            (Ok((StatusCode::BAD_GATEWAY, &marked)), true, false, true),
            (
                Ok((StatusCode::SERVICE_UNAVAILABLE, &marked)),
                true,
                false,
                true,
            ),
            // Not believed from outside the mesh, nor on another status.
            (Ok((StatusCode::BAD_GATEWAY, &marked)), false, true, false),
            (Ok((StatusCode::OK, &marked)), true, true, false),
            (Ok((StatusCode::BAD_GATEWAY, &plain)), true, true, false),
            (Ok((StatusCode::BAD_GATEWAY, &plain)), true, false, false),
        ];
        for (outcome, mesh, idem, want) in cases {
            assert_eq!(
                unprocessed(outcome, mesh, idem),
                want,
                "{outcome:?} mesh={mesh} idempotent={idem}"
            );
        }
        assert_eq!(resendable(&connect, false), Some("application unreachable"));
        assert_eq!(resendable(&reset, false), None);
        assert!(resendable(&reset, true).is_some());
        assert_eq!(resendable(&late, true), None);
        assert!(
            idempotent(&Method::GET) && !idempotent(&Method::POST) && !idempotent(&Method::PUT)
        );
        let mut from_app = marked.clone();
        strip_from_app(&mut from_app);
        assert!(!from_app.contains_key(UNPROCESSED));
    }
}
