//! The controller's own log level, following MeshConfig
//! `observability.osmLogLevel` as OSM's did.

use std::sync::{Arc, Mutex};

use osm_api::logging::LogFilter;

use super::Hub;

/// The controller's log filter and the MeshConfig level last applied.
pub(super) struct FollowedLevel {
    filter: Arc<dyn LogFilter>,
    applied: Mutex<Option<String>>,
}

/// MeshConfig `observability.osmLogLevel` as a log filter.
pub fn log_filter_for(osm_level: &str) -> &'static str {
    match osm_level {
        "trace" => "trace",
        "debug" => "debug",
        "warn" => "warn",
        "error" | "fatal" | "panic" => "error",
        "disabled" => "off",
        _ => "info",
    }
}

impl Hub {
    /// Sets `filter` from MeshConfig `observability.osmLogLevel` whenever
    /// that level changes (the `--log-level` flag holds until the
    /// MeshConfig names a level other than OSM's default, info).
    pub fn follow_log_level(&mut self, filter: Arc<dyn LogFilter>) {
        self.log_level = Some(FollowedLevel {
            filter,
            applied: Mutex::new(Some("info".into())),
        });
    }

    pub(super) fn apply_log_level(&self) {
        let Some(FollowedLevel { filter, applied }) = &self.log_level else {
            return;
        };
        let level = self
            .lock()
            .compiler
            .index
            .mesh_config
            .as_ref()
            .map(|m| m.spec.observability.osm_log_level.clone());
        let Some(level) = level else {
            return;
        };
        let mut applied = applied.lock().unwrap_or_else(|e| e.into_inner());
        if applied.as_deref() == Some(level.as_str()) {
            return;
        }
        match filter.set(log_filter_for(&level)) {
            Ok(()) => {
                tracing::info!(%level, "log level set by MeshConfig observability.osmLogLevel")
            }
            Err(e) => tracing::warn!(%level, error = %e, "log level from MeshConfig not applied"),
        }
        *applied = Some(level);
    }
}
