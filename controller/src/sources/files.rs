//! A directory of manifests as the source of cluster state (local mode).
//!
//! Every `.yaml`, `.yml` and `.json` file below the directory is read on
//! each sync; objects that appeared or changed are applied, objects that
//! disappeared are deleted. A bad document or a rejected object is reported
//! by file, kind/name and reason and skipped; it never stops the others.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use osm_api::{
    load::{Loaded, load_str},
    resources::ObjectKey,
    validate,
};

use crate::hub::Hub;

/// What one sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub applied: Vec<String>,
    pub deleted: Vec<String>,
    /// Files, documents and objects that were skipped, and why.
    pub problems: Vec<String>,
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// The manifests last applied from one directory.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    /// What was applied of each object: where it is in its file's parsed
    /// content (shared with `parsed`, not a copy of the object).
    known: BTreeMap<ObjectKey, Located>,
    /// The files seen by the last pass; when none changed, a pass is a
    /// directory listing and nothing more.
    stamps: BTreeMap<PathBuf, Option<Stamp>>,
    /// Problems found by the last full pass, repeated while nothing changes.
    problems: Vec<String>,
    /// Each file's objects as last read, with the stamp they were read at.
    parsed: BTreeMap<PathBuf, (Option<Stamp>, Arc<ParsedFile>)>,
}

/// An object in a file's loaded content (shared, not copied, between
/// passes).
#[derive(Debug, Clone)]
struct Located {
    file: Arc<ParsedFile>,
    index: usize,
}

impl Located {
    fn get(&self) -> &Loaded {
        &self.file.objects[self.index]
    }
}

/// One file's content, loaded.
#[derive(Debug)]
struct ParsedFile {
    objects: Vec<Loaded>,
    errors: Vec<String>,
}

use osm_api::load::manifest_files;

impl FileSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            known: BTreeMap::new(),
            stamps: BTreeMap::new(),
            problems: Vec::new(),
            parsed: BTreeMap::new(),
        }
    }

    /// Every object the directory holds now, by key, and the keys that
    /// come from files changed since the last pass (only those can differ
    /// from what was applied). Unchanged files are not read again.
    /// Duplicates and load errors go to `problems`.
    fn scan(
        &mut self,
        problems: &mut Vec<String>,
    ) -> (BTreeMap<ObjectKey, Located>, BTreeSet<ObjectKey>) {
        let mut objects: BTreeMap<ObjectKey, Located> = BTreeMap::new();
        let mut fresh = BTreeSet::new();
        let mut parsed = BTreeMap::new();
        for (file, stamp) in &self.stamps {
            let cached = self
                .parsed
                .remove(file)
                .filter(|(s, _)| stamp.is_some() && s == stamp);
            let changed = cached.is_none();
            let (_, content) = match cached {
                Some(c) => c,
                None => {
                    let name = file.display().to_string();
                    let content = match std::fs::read_to_string(file) {
                        Ok(text) => {
                            let out = load_str(&name, &text);
                            ParsedFile {
                                objects: out.objects,
                                errors: out.errors.iter().map(ToString::to_string).collect(),
                            }
                        }
                        Err(e) => ParsedFile {
                            objects: Vec::new(),
                            errors: vec![format!("{name}: {e}")],
                        },
                    };
                    (*stamp, Arc::new(content))
                }
            };
            problems.extend(content.errors.iter().cloned());
            for (index, loaded) in content.objects.iter().enumerate() {
                let key = loaded.object.key();
                if let Some(first) = objects.get(&key) {
                    problems.push(format!(
                        "{}: {key} is already defined at {}; the first is used",
                        loaded.origin,
                        first.get().origin
                    ));
                    continue;
                }
                if changed {
                    fresh.insert(key.clone());
                }
                objects.insert(
                    key,
                    Located {
                        file: content.clone(),
                        index,
                    },
                );
            }
            parsed.insert(file.clone(), (*stamp, content));
        }
        self.parsed = parsed;
        (objects, fresh)
    }

    /// The files below the directory with their stamps.
    fn stamps_now(&self) -> Result<BTreeMap<PathBuf, Option<Stamp>>, String> {
        let mut files = Vec::new();
        manifest_files(&self.dir, &mut files)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        Ok(files
            .into_iter()
            .map(|f| {
                let s = stamp(&f);
                (f, s)
            })
            .collect())
    }

    /// Brings the hub in line with the directory.
    pub fn sync(&mut self, hub: &Hub) -> SyncReport {
        let mut report = SyncReport::default();
        match self.stamps_now() {
            Ok(stamps) if stamps == self.stamps && !stamps.is_empty() => {
                report.problems = self.problems.clone();
                return report;
            }
            Ok(stamps) => self.stamps = stamps,
            Err(e) => {
                self.stamps.clear();
                report.problems.push(e);
            }
        }
        let (now, fresh) = self.scan(&mut report.problems);
        let gone: Vec<ObjectKey> = self
            .known
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            hub.delete(&key);
            self.known.remove(&key);
            report.deleted.push(key.to_string());
        }
        for (key, located) in now {
            let loaded = located.get();
            if !fresh.contains(&key) && self.known.contains_key(&key) {
                continue;
            }
            if self
                .known
                .get(&key)
                .is_some_and(|k| k.get().object == loaded.object)
            {
                continue;
            }
            let impact = hub.apply(loaded.object.clone());
            for p in &impact.problems {
                let verdict = if p.severity == validate::Severity::Reject {
                    "rejected"
                } else {
                    "warning"
                };
                report
                    .problems
                    .push(format!("{} ({key}): {verdict}: {p}", loaded.origin));
            }
            if !validate::rejects(&impact.problems) {
                self.known.insert(key.clone(), located.clone());
                report.applied.push(key.to_string());
            }
        }
        self.problems = report.problems.clone();
        report
    }
}

#[cfg(test)]
mod tests;
