//! osm-local: the whole mesh on one Linux machine, as a single-node
//! Kubernetes. Each pod is a network namespace on a bridge, containers are
//! processes, and the controller, injector, osm-init and osm-proxy are the
//! real binaries.
//!
//! The parts, as a cluster's:
//! - [`apiserver`] and [`store`]: the API server (objects on disk, VIPs,
//!   the mutating webhook called through [`admission`]);
//! - [`runtime`]: the kubelet (pods, containers, probes, restarts, tokens),
//!   kube-proxy and DNS ([`runtime::services`]) and the Deployment
//!   controller ([`runtime::deployments`]);
//! - [`daemon`] runs them with the control plane; [`lifecycle`] starts and
//!   stops it all (`up`, `down`, `status`); [`state`] is where it lives;
//! - [`manifests`] reads and checks what `apply -f` is given; [`pods`]
//!   serves `logs` and `exec`; [`demo`] is the bookstore.
//!
//! The `osm local` commands (arguments, output) are in the CLI crate.

#![forbid(unsafe_code)]

pub mod addons;
pub mod admission;
pub mod apiserver;
pub mod daemon;
pub mod demo;
pub mod expectations;
/// Small HTTP requests (shared with the controller).
pub use osm_serve::fetch as http;
pub mod lifecycle;
pub mod manifests;
pub mod mesh_test;
pub mod names;
pub mod neighbours;
pub mod netns_http;
pub mod pods;
pub mod process_record;
pub mod prometheus;
pub mod route_status;
pub mod runtime;
pub mod sandbox;
pub mod shim;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod table;
pub mod traffic_metrics;
pub mod unenforced;

use anyhow::Context as _;

use self::{
    admission::Injector,
    apiserver::ApiServer,
    state::{INJECTOR_SERVER_NAME, StateDir},
    store::Store,
};

/// The API server of the local mesh whose state is in `state`.
pub fn api_server(state: &StateDir) -> anyhow::Result<ApiServer> {
    let instance = state.require_instance()?;
    let trust = std::fs::read(state.injector_ca()).context("the injector's CA")?;
    Ok(ApiServer {
        store: Store::new(state.api(), state.api_lock()),
        injector: Injector::new(instance.injector(), INJECTOR_SERVER_NAME, &trust)?,
        instance,
    })
}
