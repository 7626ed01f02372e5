//! Where cluster state comes from: a directory of manifests (local mode),
//! or the Kubernetes API.

pub mod files;
pub mod kubernetes;
pub mod route_status;
