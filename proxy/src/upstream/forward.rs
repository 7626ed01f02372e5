//! Forwarding one HTTP request through a pooled client: the URI made
//! absolute, hop-by-hop headers stripped, upgrades spliced, and failures
//! classified into one error type mapped to a status in one place.

use std::{error::Error as StdError, net::SocketAddr};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{ConnectError, HttpClient};
use crate::http_util::{absolute_uri, authority, is_upgrade, strip_hop_by_hop};

/// Why a request could not be forwarded; mapped to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the request has no valid authority")]
    BadAuthority,
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Timeout(String),
}

impl ForwardError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadAuthority => StatusCode::BAD_REQUEST,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> ForwardError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(connect) = err.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Timeout { .. } => ForwardError::Timeout(connect.to_string()),
                other => ForwardError::Upstream(other.to_string()),
            };
        }
        source = err.source();
    }
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    ForwardError::Upstream(format!("upstream request failed: {message}"))
}

/// Sends `req` through `client` and returns the upstream's response. An
/// HTTP/1 upgrade (WebSocket) is spliced once both sides have switched.
/// The request is sent at most once.
pub async fn forward(
    client: &HttpClient,
    mut req: Request<Incoming>,
    fallback_authority: SocketAddr,
) -> Result<Response<Incoming>, ForwardError> {
    let upgrade = is_upgrade(&req);
    let uri = absolute_uri(req.uri(), authority(&req), fallback_authority)
        .ok_or(ForwardError::BadAuthority)?;
    *req.uri_mut() = uri;
    strip_hop_by_hop(req.headers_mut(), upgrade);
    let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut response = client.request(req).await.map_err(classify)?;
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
    Ok(response)
}
