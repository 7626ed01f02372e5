//! Giving the heap's free pages back to the system after a whole build.

/// Gives the heap's free pages back to the system. A whole build frees
/// as much as it keeps (the config as parsed, the maps it packs), in
/// blocks between the ones it keeps, which glibc only returns on request:
/// without this, packing the maps grew the resident memory it saved.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap under its lock; it
    // takes no pointer and frees nothing in use.
    #[allow(unsafe_code)]
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
