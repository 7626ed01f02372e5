//! osm-init: the nat-table rules that send a meshed pod's TCP traffic
//! through its proxy, built as data from the settings ([`rules`]), planned
//! against what the table already holds so a second run changes nothing
//! ([`plan`]), and applied with one `iptables-restore --noflush` per IP
//! family ([`apply`]).

#![forbid(unsafe_code)]

pub mod apply;
pub mod plan;
pub mod rules;
pub mod settings;
