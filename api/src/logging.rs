//! A component's own logs (stderr), with a filter that can be changed at
//! runtime: the proxy's admin endpoint (`/logging?level=debug`) and the
//! controller (MeshConfig `observability.osmLogLevel`) change it.

use std::sync::{Arc, Mutex};

use tracing_subscriber::{EnvFilter, Registry, prelude::*, reload};

/// Why a log filter was not applied (answered 400 by the admin endpoint).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid log filter {filter:?}: {reason}")]
    Invalid { filter: String, reason: String },
    #[error("cannot apply the log filter: {0}")]
    Reload(String),
}

/// Reads and changes the log filter.
pub trait LogFilter: Send + Sync {
    fn current(&self) -> String;
    /// Applies a filter in `RUST_LOG` syntax; says what is wrong otherwise.
    fn set(&self, filter: &str) -> Result<(), FilterError>;
}

struct Reloadable {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
}

impl LogFilter for Reloadable {
    fn current(&self) -> String {
        self.current.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn set(&self, filter: &str) -> Result<(), FilterError> {
        let parsed = EnvFilter::try_new(filter).map_err(|e| FilterError::Invalid {
            filter: filter.to_string(),
            reason: e.to_string(),
        })?;
        self.handle
            .reload(parsed)
            .map_err(|e| FilterError::Reload(e.to_string()))?;
        if let Ok(mut current) = self.current.lock() {
            *current = filter.to_string();
        }
        Ok(())
    }
}

/// Installs the global subscriber with `filter`.
pub fn init(filter: &str) -> Result<Arc<dyn LogFilter>, FilterError> {
    let parsed = EnvFilter::try_new(filter).map_err(|e| FilterError::Invalid {
        filter: filter.to_string(),
        reason: e.to_string(),
    })?;
    let (layer, handle) = reload::Layer::new(parsed);
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init()
        .map_err(|e| FilterError::Reload(e.to_string()))?;
    Ok(Arc::new(Reloadable {
        handle,
        current: Mutex::new(filter.to_string()),
    }))
}
