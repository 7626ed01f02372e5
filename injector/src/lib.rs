//! osm-injector: decides whether a pod joins the mesh ([`decide`]) and
//! writes the JSON patch that adds the init step, the proxy, the token it
//! proves itself with, and the rewritten probes ([`mutate`]). Pure: the
//! admission server around it only moves bytes.

#![forbid(unsafe_code)]

pub mod admission;
pub mod decide;
pub mod lookup;
pub mod mutate;
pub mod probes;
pub mod reload;
pub mod server;

pub use decide::{Decision, InjectError, decide};
pub use mutate::{InjectorSettings, mutate};
