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
pub mod early_renewal;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use osm_api::{codec::LeanCodec, protocol::UpdateError, v1};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use self::{
    backoff::Backoff,
    certify::{Certified, PodRef, certify},
    channel::{ControllerAddr, connect},
};
use crate::{
    config::{batch::Batch, store::ConfigStore},
    state::Shared,
};

/// How to reach the controller and prove who the proxy is.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    pub controller: ControllerAddr,
    pub pod: PodRef,
    /// The pod's projected ServiceAccount token (audience osm-controller).
    pub token_file: PathBuf,
}

pub const RECONNECT_BASE: Duration = Duration::from_millis(200);
/// Low, so a restarted controller has every proxy back within a second
/// (with full jitter, half a second on average): until then a proxy keeps
/// its last endpoints, and a rollout in the meantime would remove pods it
/// still sends to. Attempts at a controller that is down are refused
/// connections, cheap for both ends.
pub const RECONNECT_CAP: Duration = Duration::from_secs(1);
/// Renewals retry slower: the certificate in use is still valid.
const RENEW_RETRY_CAP: Duration = Duration::from_secs(30);

/// Runs until `stop` is cancelled.
pub async fn run(settings: ControlSettings, shared: Arc<Shared>, stop: CancellationToken) {
    // A proxy without its first certificate serves nothing: it retries as
    // often as it reconnects.
    let Some(first) = obtain_certificate(&settings, &shared, RECONNECT_CAP, &stop).await else {
        return;
    };
    tokio::join!(
        renew_forever(&settings, &shared, first, &stop),
        stream_forever(&settings, &shared, &stop),
    );
}

/// Certifies until it works (or the proxy stops), retrying within
/// `retry_cap`; installs the result.
async fn obtain_certificate(
    settings: &ControlSettings,
    shared: &Shared,
    retry_cap: Duration,
    stop: &CancellationToken,
) -> Option<SystemTime> {
    let mut backoff = Backoff::new(RECONNECT_BASE, retry_cap);
    loop {
        let controller = controller_addr(settings, shared);
        let outcome = tokio::select! {
            r = certify(&controller, &settings.pod, &settings.token_file) => r,
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

/// The controller's address, trusting the injected CA and the bundle the
/// controller sent last.
fn controller_addr(settings: &ControlSettings, shared: &Shared) -> ControllerAddr {
    settings
        .controller
        .also_trusting(&shared.config().trust_bundle)
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
    let mut updates = shared.config_updates();
    // The bundle of the last early renewal: one try per bundle.
    let mut acted_on: Option<Vec<rustls::pki_types::CertificateDer<'static>>> = None;
    loop {
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                let bundle = shared.config().trust_bundle.clone();
                let early = shared.credentials().is_some_and(|c| {
                    early_renewal::renew_now(&c.chain, &bundle, acted_on.as_deref())
                });
                if !early {
                    continue;
                }
                tracing::info!("the mesh issues from another root now: renewing the certificate early");
                acted_on = Some(bundle);
            }
            _ = stop.cancelled() => return,
        }
        match obtain_certificate(settings, shared, RENEW_RETRY_CAP, stop).await {
            Some(next) => renew_at = next,
            None => return,
        }
    }
}

async fn stream_forever(settings: &ControlSettings, shared: &Shared, stop: &CancellationToken) {
    // Shared with the snapshot it was built into (one copy in memory).
    let mut config = ConfigStore::default();
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
    config: &mut ConfigStore,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> Result<(), StreamError> {
    let credentials = shared.credentials().ok_or(StreamError::NoCertificate)?;
    let channel = connect(&controller_addr(settings, shared), Some(&credentials)).await?;
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
    let mut updates = open_stream(channel, ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    let mut acked = String::new();
    // Refusals in a row: each NACK after the first waits (both ends follow
    // `nack_backoff`, so a batch that can never apply is no busy loop).
    let mut nacks = 0u32;
    loop {
        let message = tokio::select! {
            m = updates.message() => m,
            _ = stop.cancelled() => return Ok(()),
        };
        let update = message?.ok_or(StreamError::Ended)?;
        backoff.reset();
        let (version, full) = (update.version.clone(), update.full);
        let reply = match apply(shared, config, update) {
            Ok(rejected) => {
                nacks = 0;
                acked = version.clone();
                tracing::debug!(%version, full, "config applied");
                for reason in &rejected {
                    tracing::warn!(%version, %reason, "resource enforced fail-closed");
                }
                v1::ProxyInfo {
                    acked_version: acked.clone(),
                    rejected_resources: rejected.iter().map(ToString::to_string).collect(),
                    ..hello.clone()
                }
            }
            Err(reason) => {
                shared.record_rejected_config();
                nacks = nacks.saturating_add(1);
                tracing::warn!(%version, %reason, consecutive = nacks, "config refused; the last good config stays");
                tokio::select! {
                    () = tokio::time::sleep(osm_api::protocol::nack_backoff(nacks)) => {}
                    () = stop.cancelled() => return Ok(()),
                }
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

/// `Config.Stream`, as the generated client opens it, but reading each
/// batch as a [`Batch`]: its upserts stay encoded until the store keeps
/// them.
async fn open_stream(
    channel: tonic::transport::Channel,
    outgoing: ReceiverStream<v1::ProxyInfo>,
) -> Result<tonic::Response<tonic::Streaming<Batch>>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
    let path = http::uri::PathAndQuery::from_static("/osm.v1.Config/Stream");
    let mut request = tonic::Request::new(outgoing);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new("osm.v1.Config", "Stream"));
    grpc.streaming(request, path, LeanCodec::<v1::ProxyInfo, Batch>::default())
        .await
}

/// Applies one batch to the running config. A batch that cannot be read
/// (or whose mesh settings or trust bundle are bad) changes nothing; a
/// resource that cannot be built is enforced fail-closed and returned, so
/// one bad resource never holds back the others.
fn apply(
    shared: &Shared,
    config: &mut ConfigStore,
    update: Batch,
) -> Result<Vec<crate::config::ConfigError>, BatchError> {
    let (next, changed) = config.apply(update)?;
    let (_, rejected) = shared.apply_batch(config, next.clone(), &changed)?;
    *config = next;
    Ok(rejected)
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

    fn batch(version: &str, full: bool, upserts: Vec<v1::Resource>) -> Batch {
        v1::ConfigUpdate {
            version: version.into(),
            full,
            upserts,
            removals: vec![],
        }
        .into()
    }

    fn authorized(port: u32, source: &str) -> v1::Resource {
        v1::Resource {
            kind: Some(v1::resource::Kind::Inbound(v1::InboundPort {
                port,
                authorizations: vec![v1::Authorization {
                    name: format!("ns/allow-{port}"),
                    sources: vec![source.into()],
                    traffic: Some(v1::authorization::Traffic::All(v1::AllTraffic {})),
                }],
                ..Default::default()
            })),
        }
    }

    #[test]
    fn unreadable_batches_change_nothing() {
        let shared = shared();
        let mut config = ConfigStore::default();
        apply(&shared, &mut config, batch("1", true, vec![inbound(8080)])).unwrap();
        let before = shared.config().version;
        // A resource without a kind: the batch cannot be read at all.
        let empty = apply(
            &shared,
            &mut config,
            batch("2", false, vec![v1::Resource { kind: None }]),
        )
        .unwrap_err()
        .to_string();
        assert!(empty.contains("upserts[0]"), "{empty}");
        assert_eq!(shared.config().version, before, "the running config stays");
        assert_eq!(
            crate::config::store::ConfigSource::inbound_ports(&config).count(),
            1,
            "and so does the proxy's copy"
        );
    }

    /// Regression (one tenant froze every proxy): a resource the proxy
    /// cannot build made it refuse the whole batch, for ever. Now the rest
    /// applies and the bad resource is enforced fail-closed and reported.
    #[test]
    fn a_bad_resource_is_enforced_fail_closed_and_the_rest_applies() {
        let shared = shared();
        let mut config = ConfigStore::default();
        let buyer = "spiffe://cluster.local/ns/shop/sa/buyer";
        apply(
            &shared,
            &mut config,
            batch("1", true, vec![authorized(8080, buyer)]),
        )
        .unwrap();
        let bad_source = authorized(8080, "not a spiffe id");
        let rejected = apply(
            &shared,
            &mut config,
            batch("2", false, vec![bad_source, inbound(9090), inbound(0)]),
        )
        .unwrap();
        let reasons: Vec<String> = rejected.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("authorizations[0].sources[0]")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("0 is not a port")),
            "{reasons:?}"
        );
        let snapshot = shared.config();
        // The good resource applied.
        assert!(snapshot.inbound.contains_key(&9090));
        // The bad port denies everyone, including whom it allowed before,
        // and in permissive mode too.
        let port = snapshot.inbound.get(&8080).expect("kept, closed");
        let id: crate::identity::SpiffeId = buyer.parse().unwrap();
        for permissive in [false, true] {
            assert!(matches!(
                crate::policy::authorize_tcp(permissive, 8080, Some(port), &id),
                crate::policy::Decision::Deny(crate::policy::DenyReason::BrokenPolicy { .. })
            ));
        }
        assert!(!port.admits_plaintext("10.0.0.1".parse().unwrap()));
        assert!(
            shared
                .metrics
                .render()
                .contains("osm_config_resources_rejected 2"),
            "{}",
            shared.metrics.render()
        );
        // Fixed by the next batch: the port admits its source again.
        let rejected = apply(
            &shared,
            &mut config,
            batch("3", false, vec![authorized(8080, buyer)]),
        )
        .unwrap();
        // The unreadable port 0 stays in the proxy's copy until removed.
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        let snapshot = shared.config();
        assert!(matches!(
            crate::policy::authorize_tcp(false, 8080, snapshot.inbound.get(&8080), &id),
            crate::policy::Decision::Allow(_)
        ));
    }
}
