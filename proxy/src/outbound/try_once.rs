//! One try of a request to one endpoint, held to a timeout; shared by the
//! attempts of a request and by mirrored copies.

use std::{sync::atomic::Ordering, time::Duration};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::capture_connection;

use crate::{
    http_util::UpstreamBody,
    upstream::{ConnectionUses, EndpointHandle, ForwardError, forward},
};

/// One try, held to the per-try timeout. With a limit of requests per
/// connection, the connection that reaches it is retired from the pool.
pub async fn try_once(
    endpoint: &EndpointHandle,
    mut request: Request<UpstreamBody>,
    per_try_timeout: Option<Duration>,
    per_connection: Option<u32>,
) -> Result<Response<Incoming>, ForwardError> {
    let _in_flight = endpoint.load().start();
    let client = endpoint.http_client(crate::http1_over_h2::wire_for(&request));
    let captured = per_connection.map(|_| capture_connection(&mut request));
    let sent = forward(client, request, endpoint.addr());
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
