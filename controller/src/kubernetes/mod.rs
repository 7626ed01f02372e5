//! The controller's own calls to the Kubernetes API: checking proxies'
//! tokens with TokenReview, and keeping the CA in a Secret. (Watching
//! cluster state is in [`crate::sources::kubernetes`].)

pub mod bootstrap;
pub mod ca_secret;
pub mod token_review;

#[cfg(any(test, feature = "test-support"))]
pub mod fake;
