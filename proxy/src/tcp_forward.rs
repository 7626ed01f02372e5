//! Splicing an opaque TCP connection to its upstream, with metrics and an
//! access-log line.

use std::sync::Arc;

use metrics::Label;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{
    state::Shared,
    telemetry::{
        access_log::{TcpEntry, Timestamp},
        metrics as names,
    },
};

/// Who is on each side, for metrics and the log.
#[derive(Debug)]
pub struct TcpLabels<'a> {
    pub direction: &'static str,
    pub downstream: std::net::SocketAddr,
    pub upstream: std::net::SocketAddr,
    pub service: Option<&'a str>,
    pub source_identity: Option<&'a str>,
}

/// Copies bytes both ways until both sides close.
pub async fn splice<D, U>(shared: &Arc<Shared>, downstream: D, upstream: U, labels: TcpLabels<'_>)
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    splice_until(shared, downstream, upstream, labels, std::future::pending()).await;
}

/// Copies bytes both ways until both sides close, or `stop` completes
/// (with the reason), which closes both.
pub async fn splice_until<D, U>(
    shared: &Arc<Shared>,
    mut downstream: D,
    mut upstream: U,
    labels: TcpLabels<'_>,
    stop: impl std::future::Future<Output = String>,
) where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let started = tokio::time::Instant::now();
    let spliced_at = Timestamp::now();
    let direction = vec![Label::new("direction", labels.direction)];
    let m = &shared.metrics;
    m.counter(names::TCP_CONNECTIONS_TOTAL, direction.clone())
        .increment(1);
    let open = m.gauge(names::TCP_CONNECTIONS_OPEN, direction.clone());
    open.increment(1.0);
    let result = tokio::select! {
        r = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => r,
        reason = stop => Err(std::io::Error::other(reason)),
    };
    open.decrement(1.0);
    let (sent, received, error) = match result {
        Ok((to_upstream, to_downstream)) => (to_upstream, to_downstream, None),
        Err(e) => (0, 0, Some(e.to_string())),
    };
    let with_flow = |flow: &'static str| {
        let mut l = direction.clone();
        l.push(Label::new("flow", flow));
        l
    };
    m.counter(names::TCP_BYTES_TOTAL, with_flow("sent"))
        .increment(sent);
    m.counter(names::TCP_BYTES_TOTAL, with_flow("received"))
        .increment(received);
    shared.access_log.log(&TcpEntry {
        response_flags: if error.is_some() && sent == 0 && received == 0 {
            "UF"
        } else {
            "-"
        },
        timestamp: spliced_at,
        direction: labels.direction,
        protocol: "tcp",
        downstream: labels.downstream.to_string(),
        upstream_service: labels.service,
        upstream_host: Some(labels.upstream.to_string()),
        source_identity: labels.source_identity,
        bytes_sent: sent,
        bytes_received: received,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        error,
    });
}
