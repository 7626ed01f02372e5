//! Where cluster state comes from: a directory of manifests (local mode);
//! the Kubernetes API comes next.

pub mod files;
