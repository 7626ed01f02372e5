//! Writes Gateway API routes' status on a cluster: every few seconds the
//! status of each route for its Service parents is computed from the index
//! (pure, [`osm_api::compile::gateway::status`]); a route whose status
//! differs from what was last written is read, merged (other controllers'
//! entries kept) and patched through the `status` subresource. A failed
//! write is retried at the next round.

use std::{collections::HashMap, sync::Arc, time::Duration};

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use osm_api::compile::gateway::status::{ParentStatus, merge_status};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, RouteStatus};

/// How often statuses are recomputed.
const ROUND: Duration = Duration::from_secs(2);

type RouteKey = (&'static str, String, String);

/// The API resource of a route kind, as the controller watches it.
fn resource(kind: &str) -> Option<ApiResource> {
    let watched = osm_api::kinds::WATCHED_KINDS
        .iter()
        .find(|w| w.kind == kind)?;
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(watched.group, watched.version, watched.kind),
        watched.plural,
    ))
}

/// Writes one route's status; Ok(true) when it changed.
async fn write(client: &Client, route: &RouteStatus) -> Result<bool, kube::Error> {
    let Some(resource) = resource(route.kind) else {
        return Ok(false);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &route.namespace, &resource);
    let current = api.get_status(&route.name).await?;
    let existing = current.data.get("status").cloned().unwrap_or_default();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let merged = merge_status(&existing, &route.parents, route.generation, &now);
    if merged == existing {
        return Ok(false);
    }
    api.patch_status(
        &route.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": merged})),
    )
    .await?;
    Ok(true)
}

/// Keeps routes' status written until `stop`.
pub async fn run(client: Client, hub: Arc<Hub>, stop: CancellationToken) {
    let mut written: HashMap<RouteKey, (i64, Vec<ParentStatus>)> = HashMap::new();
    let mut round = tokio::time::interval(ROUND);
    round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = round.tick() => {}
        }
        let routes = hub.route_statuses();
        let present: std::collections::HashSet<RouteKey> = routes
            .iter()
            .map(|r| (r.kind, r.namespace.clone(), r.name.clone()))
            .collect();
        written.retain(|key, _| present.contains(key));
        for route in routes {
            let key = (route.kind, route.namespace.clone(), route.name.clone());
            let state = (route.generation, route.parents.clone());
            if written.get(&key) == Some(&state) {
                continue;
            }
            match write(&client, &route).await {
                Ok(changed) => {
                    if changed {
                        tracing::info!(route = %format!("{} {}/{}", route.kind, route.namespace, route.name), "route status written");
                    }
                    written.insert(key, state);
                }
                Err(error) => tracing::warn!(
                    route = %format!("{} {}/{}", route.kind, route.namespace, route.name),
                    %error,
                    "route status not written; retrying"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use osm_api::compile::{Compiler, Index, MeshOptions};
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        kubernetes::fake::FakeApi, metrics::Metrics,
        sources::kubernetes::version_tests::chart_crds, test_fixtures::CLUSTER,
    };

    const GROUP: &str = "gateway.networking.k8s.io";

    fn route_status(fake: &FakeApi) -> Value {
        fake.get(GROUP, "httproutes", "shop", "store-split")
            .map(|r| r["status"].clone())
            .unwrap_or_default()
    }

    fn ours(status: &Value) -> Option<&Value> {
        status["parents"]
            .as_array()?
            .iter()
            .find(|p| p["controllerName"] == osm_api::compile::gateway::status::CONTROLLER_NAME)
    }

    fn resolved(status: &Value) -> Option<String> {
        let c = ours(status)?["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "ResolvedRefs")?;
        Some(format!(
            "{}:{}",
            c["status"].as_str()?,
            c["reason"].as_str()?
        ))
    }

    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn route_status_is_written_kept_for_other_controllers_and_follows_the_cluster() {
        let fake = FakeApi::new();
        for crd in chart_crds() {
            fake.install_crd(&crd).unwrap();
        }
        for doc in CLUSTER.split("\n---\n") {
            fake.put(serde_yaml_ng::from_str(doc).unwrap());
        }
        let gateway_entry = json!({"parentRef": {"name": "edge"}, "controllerName": "example.com/gateway",
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        fake.put(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "store-split", "namespace": "shop", "generation": 1},
            "spec": {
                "parentRefs": [{"group": "", "kind": "Service", "name": "store"}, {"name": "edge"}],
                "rules": [{"backendRefs": [{"name": "store-v2", "port": 80}]}],
            },
            "status": {"parents": [gateway_entry.clone()]},
        }));
        let hub = Arc::new(Hub::new(
            Compiler::new(Index::new(MeshOptions::default())),
            None,
        ));
        let stop = CancellationToken::new();
        tokio::spawn(crate::sources::kubernetes::run(
            fake.client(),
            hub.clone(),
            Arc::new(Metrics::new()),
            Arc::new(AtomicBool::new(false)),
            stop.clone(),
        ));
        tokio::spawn(run(fake.client(), hub, stop.clone()));

        until("the missing backend is reported", || {
            resolved(&route_status(&fake)).as_deref() == Some("False:BackendNotFound")
        })
        .await;
        let status = route_status(&fake);
        assert_eq!(
            status["parents"][0], gateway_entry,
            "the gateway's entry is kept"
        );
        let first = ours(&status).unwrap().clone();
        assert_eq!(first["parentRef"]["name"], "store");
        let accepted = &first["conditions"][0];
        assert_eq!(
            (accepted["type"].as_str(), accepted["status"].as_str()),
            (Some("Accepted"), Some("True"))
        );

        // The backend appears: the status follows.
        fake.put(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "store-v2", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.0.2", "selector": {"app": "store"}, "ports": [{"port": 80}]}}));
        until("the backend resolves", || {
            resolved(&route_status(&fake)).as_deref() == Some("True:ResolvedRefs")
        })
        .await;
        let status = route_status(&fake);
        assert_eq!(status["parents"][0], gateway_entry);
        assert_eq!(
            ours(&status).unwrap()["conditions"][0]["lastTransitionTime"],
            accepted["lastTransitionTime"],
            "Accepted did not change: its transition time stays"
        );
        let patches = fake
            .patches()
            .into_iter()
            .filter(|(path, _, _)| path.contains("/httproutes/store-split/status"))
            .count();
        assert_eq!(patches, 2, "one write per change");
        stop.cancel();
    }
}
