//! Writing files as root into directories a pod can reach, without the pod
//! being able to redirect the write: every directory is opened without
//! following links (`O_NOFOLLOW`), a file is written under a fresh name
//! created exclusively (`O_EXCL`, so nothing planted is reused), owned and
//! moded through its descriptor (`fchown`, `fchmod`), and renamed over the
//! final name (a rename replaces a link, it never follows one). A pod that
//! plants `token.tmp -> /etc/shadow` gets its link replaced, not the host
//! file.

use std::{
    io::Write as _,
    os::fd::{AsFd as _, OwnedFd},
    path::Path,
};

use nix::{
    errno::Errno,
    fcntl::{OFlag, RenameFlags, open, openat, renameat2},
    sys::stat::{Mode, fchmod, mkdirat},
    unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat},
};

/// A directory opened without following links.
#[derive(Debug)]
pub struct SafeDir(OwnedFd);

/// Who owns a written file and its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Whether `name` is one path component a pod may not use to leave its
/// directory: not empty, `.`, `..`, and without `/` or NUL.
pub fn is_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

impl SafeDir {
    /// Opens `path`, which the runtime created (its parents are the
    /// runtime's, not a pod's); the last component must not be a link.
    pub fn open(path: &Path) -> Result<Self, String> {
        open(path, DIR_FLAGS, Mode::empty())
            .map(SafeDir)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Opens (creating it when missing, root-owned 0755) the directory
    /// `name` inside, refusing a link.
    pub fn subdir(&self, name: &str) -> Result<Self, String> {
        if !is_component(name) {
            return Err(format!("{name:?} is not a directory name"));
        }
        match mkdirat(self.0.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(format!("{name}: {e}")),
        }
        openat(self.0.as_fd(), name, DIR_FLAGS, Mode::empty())
            .map(SafeDir)
            .map_err(|e| format!("{name}: {e} (not a plain directory)"))
    }

    /// Walks `relative` (components separated by `/`, none of them `..`),
    /// creating directories; the directory of its last component and
    /// that component.
    pub fn walk<'a>(&self, relative: &'a str) -> Result<(SafeDir, &'a str), String> {
        let mut parts: Vec<&str> = relative.split('/').collect();
        let file = parts.pop().unwrap_or_default();
        if !is_component(file) || parts.iter().any(|p| !is_component(p)) {
            return Err(format!(
                "{relative:?} is not a relative path inside the volume"
            ));
        }
        let mut dir = SafeDir(self.0.try_clone().map_err(|e| e.to_string())?);
        for part in parts {
            dir = dir.subdir(part)?;
        }
        Ok((dir, file))
    }

    /// Writes `bytes` as `name` with `owner`, replacing what is there
    /// (a link included) atomically.
    pub fn write(&self, name: &str, bytes: &[u8], owner: Ownership) -> Result<(), String> {
        if !is_component(name) {
            return Err(format!("{name:?} is not a file name"));
        }
        let tmp = format!(".{name}.{:016x}.tmp", fastrand::u64(..));
        let fd = openat(
            self.0.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| format!("{name}: {e}"))?;
        let written = (|| {
            fchown(
                fd.as_fd(),
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )
            .map_err(|e| format!("chown {name}: {e}"))?;
            fchmod(fd.as_fd(), Mode::from_bits_truncate(owner.mode))
                .map_err(|e| format!("chmod {name}: {e}"))?;
            let mut file = std::fs::File::from(fd);
            file.write_all(bytes).map_err(|e| format!("{name}: {e}"))?;
            renameat2(
                self.0.as_fd(),
                tmp.as_str(),
                self.0.as_fd(),
                name,
                RenameFlags::empty(),
            )
            .map_err(|e| format!("{name}: {e}"))
        })();
        if written.is_err() {
            let _ = unlinkat(self.0.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }

    /// Removes the file `name` (a link is removed, never followed); one
    /// already gone is fine.
    pub fn remove(&self, name: &str) -> Result<(), String> {
        if !is_component(name) {
            return Err(format!("{name:?} is not a file name"));
        }
        match unlinkat(self.0.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(format!("{name}: {e}")),
        }
    }

    /// Sets the directory's own owner and mode (through its descriptor).
    pub fn own(&self, owner: Ownership) -> Result<(), String> {
        fchown(
            self.0.as_fd(),
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )
        .map_err(|e| format!("chown: {e}"))?;
        fchmod(self.0.as_fd(), Mode::from_bits_truncate(owner.mode))
            .map_err(|e| format!("chmod: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;

    fn me(mode: u32) -> Ownership {
        Ownership {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mode,
        }
    }

    #[test]
    fn a_planted_link_is_replaced_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "host secret").unwrap();
        let volume = root.path().join("volume");
        std::fs::create_dir(&volume).unwrap();
        // The pod plants links at the final name and at a guessable
        // temporary name.
        std::os::unix::fs::symlink(&victim, volume.join("token")).unwrap();
        std::os::unix::fs::symlink(&victim, volume.join("token.tmp")).unwrap();
        let dir = SafeDir::open(&volume).unwrap();
        dir.write("token", b"minted", me(0o640)).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host secret");
        let meta = std::fs::symlink_metadata(volume.join("token")).unwrap();
        assert!(
            meta.file_type().is_file(),
            "the link was replaced by a file"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
        assert_eq!(
            std::fs::read_to_string(volume.join("token")).unwrap(),
            "minted"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&volume)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp") && n.starts_with(".token."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn linked_directories_and_escaping_paths_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let volume = root.path().join("volume");
        std::fs::create_dir(&volume).unwrap();
        std::os::unix::fs::symlink(&outside, volume.join("sub")).unwrap();
        let dir = SafeDir::open(&volume).unwrap();
        assert!(
            dir.walk("sub/token").is_err(),
            "a linked directory is not entered"
        );
        for bad in ["../token", "a/../../token", "/etc/shadow", "", "a//b", "."] {
            assert!(dir.walk(bad).is_err(), "{bad:?}");
        }
        let (nested, name) = dir.walk("deep/er/token").unwrap();
        nested.write(name, b"x", me(0o600)).unwrap();
        assert_eq!(
            std::fs::read_to_string(volume.join("deep/er/token")).unwrap(),
            "x"
        );
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing written outside"
        );
        // The volume itself must not be a link either.
        std::os::unix::fs::symlink(&outside, root.path().join("linked-volume")).unwrap();
        assert!(SafeDir::open(&root.path().join("linked-volume")).is_err());
    }
}
