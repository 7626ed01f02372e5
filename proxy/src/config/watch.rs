//! Reloading a static config file when it changes.
//!
//! The file is polled (which also follows Kubernetes ConfigMap symlink
//! swaps). A new version is parsed and validated whole; if anything is
//! wrong the error is logged with the field and the running config stays.

use std::{
    hash::{DefaultHasher, Hasher},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::state::Shared;

/// The file as it was last read: where [`watch_file`] starts from, so the
/// file is not read again only to learn what was applied.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    stamp: Option<FileStamp>,
    fingerprint: u64,
}

/// Reads, parses and applies the file once.
pub fn load_and_apply(path: &std::path::Path, shared: &Shared) -> anyhow::Result<Seen> {
    let stamp = FileStamp::of(path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let fingerprint = fingerprint(&text);
    apply_text(path, text, shared)?;
    Ok(Seen { stamp, fingerprint })
}

fn apply_text(path: &std::path::Path, text: String, shared: &Shared) -> anyhow::Result<u64> {
    let file = super::parse_file(&path.display().to_string(), &text)?;
    // Freed before the build: a big config's text is megabytes the heap
    // would otherwise grow by for good.
    drop(text);
    shared
        .apply_file(file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What tells a file changed without reading it: which file the path
/// names now (a ConfigMap's symlink swap names another), its size and
/// its modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(path: &std::path::Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            modified: meta.modified().ok(),
        })
    }

    fn recently_modified(&self) -> bool {
        self.modified
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age < std::time::Duration::from_secs(2))
    }
}

fn fingerprint(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(text.as_bytes());
    h.finish()
}

/// [`fingerprint`] of what `path` holds, read through a small buffer: a
/// big config is megabytes, and reading it whole at every poll only to
/// learn that it did not change left the heap that much bigger for good
/// (glibc serves a freed block of that size from the heap next time).
fn fingerprint_file(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut h = DefaultHasher::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => h.write(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Polls `path` every `interval` and applies each new content.
pub async fn watch_file(
    path: PathBuf,
    seen: Seen,
    shared: Arc<Shared>,
    interval: Duration,
    drain: CancellationToken,
) {
    let Seen {
        mut stamp,
        fingerprint: mut last,
    } = seen;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = drain.cancelled() => return,
        }
        // Read only when the file (or the one its symlink names) changed:
        // a big config is megabytes to read and hash every interval. A
        // file modified in the last seconds is read anyway: two writes of
        // the same size within one tick of the file system's clock leave
        // the same stamp.
        let now = FileStamp::of(&path);
        if now.is_some_and(|n| !n.recently_modified()) && now == stamp {
            continue;
        }
        stamp = now;
        let file = path.clone();
        let unchanged = tokio::task::spawn_blocking(move || fingerprint_file(&file))
            .await
            .is_ok_and(|print| print.is_ok_and(|print| print == last));
        if unchanged {
            continue;
        }
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the config file; keeping the running config");
                continue;
            }
        };
        // Of what is applied (the file may have changed again since).
        last = fingerprint(&text);
        match apply_text(&path, text, &shared) {
            Ok(version) => tracing::info!(path = %path.display(), version, "config reloaded"),
            Err(e) => {
                shared.record_rejected_config();
                tracing::error!(error = %e, "config refused; keeping the running config");
            }
        }
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
