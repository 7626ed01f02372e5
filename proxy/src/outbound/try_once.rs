//! One try of a request to one endpoint, held to a timeout; shared by the
//! attempts of a request and by mirrored copies.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use http::{Request, Response};
use hyper_util::client::legacy::connect::capture_connection;

use crate::{
    http_util::UpstreamBody,
    upstream::{
        Affinity, ConnectionUses, EndpointHandle, ForwardError, ResponseBody, Wire, forward,
    },
};

/// One try, held to the per-try timeout: on a connection the downstream
/// connection keeps (`affinity`) when the endpoint counts none of its
/// connections, else through the endpoint's pool. With a limit of requests
/// per connection, the connection that reaches it is retired from the
/// pool.
pub async fn try_once(
    endpoint: &EndpointHandle,
    affinity: Option<&Arc<Affinity>>,
    mut request: Request<UpstreamBody>,
    per_try_timeout: Option<Duration>,
    per_connection: Option<u32>,
) -> Result<Response<ResponseBody>, ForwardError> {
    let _in_flight = endpoint.load().start();
    let wire = crate::http1_over_h2::wire_for(&request);
    let kept = affinity.filter(|_| wire == Wire::Http1 && endpoint.breaker.load().is_none());
    // Only the pool's connections are retired by use count (a kept one is
    // never used where a breaker counts).
    let captured = per_connection
        .filter(|_| kept.is_none())
        .map(|_| capture_connection(&mut request));
    let sent = async {
        match kept {
            Some(affinity) => {
                let connector = || endpoint.connector(Wire::Http1);
                affinity.send(endpoint.parked(), connector, request).await
            }
            None => forward(endpoint.http_client(wire), request, endpoint.addr()).await,
        }
    };
    let result = match per_try_timeout {
        Some(limit) => tokio::time::timeout(limit, sent)
            .await
            .unwrap_or(Err(ForwardError::Timeout(limit))),
        None => sent.await,
    };
    if let (Ok(response), Some(limit), Some(captured)) = (&result, per_connection, captured)
        && let Some(uses) = response.extensions().get::<ConnectionUses>()
        && uses.0.fetch_add(1, Ordering::AcqRel) + 1 >= limit
        && let Some(connection) = captured.connection_metadata().as_ref()
    {
        connection.poison();
    }
    result
}
