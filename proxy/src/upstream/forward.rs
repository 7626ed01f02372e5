//! Forwarding one HTTP request through a pooled client: the URI made
//! absolute, hop-by-hop headers stripped, upgrades spliced, and failures
//! classified into one error type mapped to a status in one place.

use std::{error::Error as StdError, net::SocketAddr};

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::{ConnectError, HttpClient, ResponseBody};
use crate::{
    http_util::{UpstreamBody, absolute_uri, authority, is_upgrade, strip_hop_by_hop},
    resilience::{breaker::Overflow, retry::Tried},
};

/// Why a request could not be forwarded; mapped to a status and to how
/// the try ended ([`Tried`], for retries and outlier detection) in one
/// place.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the request has no valid authority")]
    BadAuthority,
    /// No connection: refused, unreachable, TLS or identity failure.
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    ConnectTimeout(String),
    /// The upstream's circuit breaker holds no more connections.
    #[error("{message}")]
    Overflow { message: String, overflow: Overflow },
    /// Connected, then no response: reset, closed, or a protocol error.
    #[error("{0}")]
    Reset(String),
    /// HTTP/2 REFUSED_STREAM: the upstream did not process the request.
    #[error("{0}")]
    RefusedStream(String),
    /// No response headers within the per-try timeout.
    #[error("no response within {0:?}")]
    Timeout(std::time::Duration),
}

impl ForwardError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadAuthority => StatusCode::BAD_REQUEST,
            Self::Connect(_) | Self::Reset(_) | Self::RefusedStream(_) => StatusCode::BAD_GATEWAY,
            Self::Overflow { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::ConnectTimeout(_) | Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The access log's response flag (Envoy's codes).
    pub fn response_flag(&self) -> &'static str {
        match self {
            Self::BadAuthority => "DPE",
            Self::Connect(_) | Self::ConnectTimeout(_) => "UF",
            Self::Overflow { .. } => "UO",
            Self::Reset(_) => "UC",
            Self::RefusedStream(_) => "UR",
            Self::Timeout(_) => "UT",
        }
    }

    /// How the try ended; None for what is neither retried nor held
    /// against the endpoint (a bad request, the proxy's own limits).
    pub fn tried(&self) -> Option<Tried> {
        match self {
            Self::BadAuthority | Self::Overflow { .. } => None,
            Self::Connect(_) | Self::ConnectTimeout(_) => Some(Tried::ConnectFailed),
            Self::Reset(_) => Some(Tried::Reset),
            Self::RefusedStream(_) => Some(Tried::RefusedStream),
            Self::Timeout(_) => Some(Tried::TimedOut),
        }
    }
}

impl From<&ConnectError> for ForwardError {
    fn from(connect: &ConnectError) -> Self {
        let message = connect.to_string();
        match connect {
            ConnectError::Timeout { .. } => ForwardError::ConnectTimeout(message),
            ConnectError::Overflow { overflow, .. } => ForwardError::Overflow {
                message,
                overflow: *overflow,
            },
            _ => ForwardError::Connect(message),
        }
    }
}

/// What a failed exchange was: a connection that could not be made (its
/// error somewhere in the chain), a stream the upstream refused, or a
/// reset; the message says the whole chain.
pub(super) fn failed(e: &(dyn StdError + 'static)) -> ForwardError {
    let mut source = Some(e);
    let mut refused = false;
    while let Some(err) = source {
        if let Some(connect) = err.downcast_ref::<ConnectError>() {
            return connect.into();
        }
        refused |= err
            .downcast_ref::<h2::Error>()
            .is_some_and(|h2| h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        source = err.source();
    }
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    let message = format!("upstream request failed: {message}");
    if refused {
        ForwardError::RefusedStream(message)
    } else {
        ForwardError::Reset(message)
    }
}

/// Sends `req` through `client` and returns the upstream's response. An
/// HTTP/1 upgrade (WebSocket) is spliced once both sides have switched.
/// The request is sent at most once.
pub async fn forward(
    client: &HttpClient,
    mut req: Request<UpstreamBody>,
    fallback_authority: SocketAddr,
) -> Result<Response<ResponseBody>, ForwardError> {
    let upgrade = is_upgrade(&req);
    let uri = absolute_uri(req.uri(), authority(&req), fallback_authority)
        .ok_or(ForwardError::BadAuthority)?;
    *req.uri_mut() = uri;
    strip_hop_by_hop(req.headers_mut(), upgrade);
    let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut response = client.request(req).await.map_err(|e| failed(&e))?;
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(response.headers_mut(), switching);
    if let (true, Some(downstream)) = (switching, downstream) {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    let mut down = TokioIo::new(down);
                    let mut up = TokioIo::new(up);
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
    }
    Ok(response.map(ResponseBody::from))
}
