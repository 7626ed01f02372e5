//! The proxy's side of the config protocol: get a certificate, stream the
//! config, renew the certificate, and survive the controller going away.
//!
//! - Certificate: a key made here, a CSR and the pod's token sent to
//!   `Identity.Certify`; renewed at about two thirds of its life and
//!   swapped in for new connections (established ones are not disturbed).
//! - Config: `Config.Stream` with the pod's name; each batch is applied
//!   atomically (all of it or nothing) and acknowledged, or refused with
//!   the reason (NACK) while the last good config keeps serving.
//! - The controller away: the proxy keeps serving with what it has and
//!   reconnects with jittered exponential backoff.

pub mod backoff;
pub mod certify;
pub mod channel;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use osm_api::{
    protocol::{UpdateError, apply_update},
    v1::{self, config_client::ConfigClient},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use self::{
    backoff::Backoff,
    certify::{Certified, PodRef, certify},
    channel::{ControllerAddr, connect},
};
use crate::state::Shared;

/// How to reach the controller and prove who the proxy is.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    pub controller: ControllerAddr,
    pub pod: PodRef,
    /// The pod's projected ServiceAccount token (audience osm-controller).
    pub token_file: PathBuf,
}

const RECONNECT_BASE: Duration = Duration::from_millis(200);
const RECONNECT_CAP: Duration = Duration::from_secs(5);
const RENEW_RETRY_CAP: Duration = Duration::from_secs(30);

/// Runs until `stop` is cancelled.
pub async fn run(settings: ControlSettings, shared: Arc<Shared>, stop: CancellationToken) {
    let Some(first) = obtain_certificate(&settings, &shared, &stop).await else {
        return;
    };
    tokio::join!(
        renew_forever(&settings, &shared, first, &stop),
        stream_forever(&settings, &shared, &stop),
    );
}

/// Certifies until it works (or the proxy stops); installs the result.
async fn obtain_certificate(
    settings: &ControlSettings,
    shared: &Shared,
    stop: &CancellationToken,
) -> Option<SystemTime> {
    let mut backoff = Backoff::new(RECONNECT_BASE, RENEW_RETRY_CAP);
    loop {
        let outcome = tokio::select! {
            r = certify(&settings.controller, &settings.pod, &settings.token_file) => r,
            _ = stop.cancelled() => return None,
        };
        match outcome.and_then(|c| install(shared, c)) {
            Ok(renew_at) => return Some(renew_at),
            Err(reason) => tracing::warn!(%reason, "no certificate yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.cancelled() => return None,
        }
    }
}

/// Swaps the new certificate in; returns when to renew it.
fn install(shared: &Shared, certified: Certified) -> Result<SystemTime, certify::CertifyError> {
    let renew_at = certified.renew_at();
    shared
        .set_credentials(certified.credentials)
        .map_err(|e| certify::CertifyError::Response(e.to_string()))?;
    tracing::info!(
        valid_for = ?certified.not_after.duration_since(SystemTime::now()).unwrap_or_default(),
        "certificate installed"
    );
    Ok(renew_at)
}

async fn renew_forever(
    settings: &ControlSettings,
    shared: &Shared,
    mut renew_at: SystemTime,
    stop: &CancellationToken,
) {
    loop {
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        match obtain_certificate(settings, shared, stop).await {
            Some(next) => renew_at = next,
            None => return,
        }
    }
}

async fn stream_forever(settings: &ControlSettings, shared: &Shared, stop: &CancellationToken) {
    let mut config = v1::ProxyConfig::default();
    let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_CAP);
    loop {
        match stream_once(settings, shared, &mut config, &mut backoff, stop).await {
            Ok(()) => return,
            Err(reason) => {
                tracing::warn!(%reason, "config stream interrupted; serving the last config and reconnecting")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Why a config stream ended; the proxy reconnects after any of these.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("no certificate")]
    NoCertificate,
    #[error(transparent)]
    Connect(#[from] channel::ConnectError),
    #[error("stream closed")]
    Closed,
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("the controller ended the stream")]
    Ended,
}

/// Why a batch was refused (sent back to the controller as the NACK).
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error(transparent)]
    Update(#[from] UpdateError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// One stream, until it fails (Err) or the proxy stops (Ok).
async fn stream_once(
    settings: &ControlSettings,
    shared: &Shared,
    config: &mut v1::ProxyConfig,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> Result<(), StreamError> {
    let credentials = shared.credentials().ok_or(StreamError::NoCertificate)?;
    let channel = connect(&settings.controller, Some(&credentials)).await?;
    let hello = v1::ProxyInfo {
        pod_name: settings.pod.name.clone(),
        pod_namespace: settings.pod.namespace.clone(),
        service_account: settings.pod.service_account.clone(),
        ..Default::default()
    };
    let (replies, outgoing) = mpsc::channel(8);
    replies
        .send(hello.clone())
        .await
        .map_err(|_| StreamError::Closed)?;
    let mut updates = ConfigClient::new(channel)
        .stream(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    let mut acked = String::new();
    loop {
        let message = tokio::select! {
            m = updates.message() => m,
            _ = stop.cancelled() => return Ok(()),
        };
        let update = message?.ok_or(StreamError::Ended)?;
        backoff.reset();
        let reply = match apply(shared, config, &update) {
            Ok(()) => {
                acked = update.version.clone();
                tracing::debug!(version = %update.version, full = update.full, "config applied");
                v1::ProxyInfo {
                    acked_version: acked.clone(),
                    ..hello.clone()
                }
            }
            Err(reason) => {
                shared.record_rejected_config();
                tracing::warn!(version = %update.version, %reason, "config refused; the last good config stays");
                v1::ProxyInfo {
                    acked_version: acked.clone(),
                    nack_reason: reason.to_string(),
                    ..hello.clone()
                }
            }
        };
        replies.send(reply).await.map_err(|_| StreamError::Closed)?;
    }
}

/// Applies one batch to the running config, all or nothing.
fn apply(
    shared: &Shared,
    config: &mut v1::ProxyConfig,
    update: &v1::ConfigUpdate,
) -> Result<(), BatchError> {
    let next = apply_update(config, update)?;
    shared.apply_config(next.clone())?;
    *config = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{access_log::AccessLog, metrics::Metrics};

    fn shared() -> Shared {
        let metrics = Metrics::new(&Default::default());
        let dropped = metrics.counter("dropped", vec![]);
        Shared::new(metrics, AccessLog::disabled(dropped), None)
    }

    fn inbound(port: u32) -> v1::Resource {
        v1::Resource {
            kind: Some(v1::resource::Kind::Inbound(v1::InboundPort {
                port,
                ..Default::default()
            })),
        }
    }

    fn batch(version: &str, full: bool, upserts: Vec<v1::Resource>) -> v1::ConfigUpdate {
        v1::ConfigUpdate {
            version: version.into(),
            full,
            upserts,
            removals: vec![],
        }
    }

    #[test]
    fn a_batch_applies_whole_or_not_at_all() {
        let shared = shared();
        let mut config = v1::ProxyConfig::default();
        apply(&shared, &mut config, &batch("1", true, vec![inbound(8080)])).unwrap();
        assert_eq!(shared.config().inbound.len(), 1);
        let before = shared.config().version;

        // One good and one bad resource: refused, nothing of it applied.
        let refused = apply(
            &shared,
            &mut config,
            &batch("2", false, vec![inbound(9090), inbound(0)]),
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains("port"), "{refused}");
        assert_eq!(shared.config().version, before, "the running config stays");
        assert_eq!(config.inbound.len(), 1, "and so does the proxy's copy");

        // An empty resource is refused too.
        let empty = apply(
            &shared,
            &mut config,
            &batch("3", false, vec![v1::Resource { kind: None }]),
        )
        .unwrap_err()
        .to_string();
        assert!(empty.contains("upserts[0]"), "{empty}");

        // The next good delta applies on top of the last good config.
        apply(
            &shared,
            &mut config,
            &batch("4", false, vec![inbound(9090)]),
        )
        .unwrap();
        let mut ports: Vec<u16> = shared.config().inbound.keys().copied().collect();
        ports.sort();
        assert_eq!(ports, [8080, 9090]);
    }
}
