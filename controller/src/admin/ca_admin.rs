//! The CA's admin endpoints: `/debug/ca` (what `osm ca status` prints) and
//! `POST /ca/rotate` (what `osm ca rotate` calls), both for loopback
//! clients only (`kubectl port-forward` is one).

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::AdminState;
use crate::ca::{
    authority::RotateError,
    ledger::{self, RootId},
};

/// The rotation's phase, what it waits for, and the roots of the bundle
/// proxies are sent (the first issues) and those live certificates chain
/// to, with counts.
pub fn report(state: &AdminState) -> serde_json::Value {
    let current = state.authority.current();
    json!({
        "phase": current.stored.phase.name(),
        "waitingFor": state.authority.waiting_for(),
        "issuer": state.issuer_health.report(),
        "roots": roots(state),
    })
}

pub fn roots(state: &AdminState) -> Vec<ledger::RootReport> {
    let bundle = state.hub.trust_bundle().unwrap_or_default();
    ledger::report(&bundle, &state.ledger.live_by_root())
}

/// Starts a root rotation: 202 with the new root, 409 when one is in
/// progress or this CA cannot rotate.
pub async fn rotate(state: &AdminState) -> Response<Full<Bytes>> {
    let (status, body) = match state.authority.rotate().await {
        Ok(root) => (
            StatusCode::ACCEPTED,
            json!({
                "phase": state.authority.current().stored.phase.name(),
                "newRoot": RootId::of_pem(&root),
            }),
        ),
        Err(e @ (RotateError::InProgress(_) | RotateError::NoStore)) => {
            (StatusCode::CONFLICT, json!({"error": e.to_string()}))
        }
        Err(e @ RotateError::Ca(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": e.to_string()}),
        ),
    };
    osm_serve::json_reply(status, body.to_string())
}
