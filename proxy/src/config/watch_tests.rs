use super::*;

#[test]
fn a_stamp_changes_with_the_content_or_the_file_a_symlink_names() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, link) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("config.json"),
    );
    std::fs::write(&a, "{}").unwrap();
    std::fs::write(&b, "{}").unwrap();
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let first = FileStamp::of(&link).unwrap();
    assert_eq!(FileStamp::of(&link), Some(first), "untouched: the same");
    assert!(first.recently_modified(), "just written: read anyway");

    // A ConfigMap update: the link is swapped to another file.
    let swapped = dir.path().join("swap");
    std::os::unix::fs::symlink(&b, &swapped).unwrap();
    std::fs::rename(&swapped, &link).unwrap();
    let second = FileStamp::of(&link).unwrap();
    assert_ne!(second, first);

    // Rewritten in place with another size.
    std::fs::write(&b, "{\"version\": 2}").unwrap();
    assert_ne!(FileStamp::of(&link).unwrap(), second);

    std::fs::remove_file(&b).unwrap();
    assert_eq!(FileStamp::of(&link), None, "a dangling link has no stamp");

    let old = FileStamp {
        modified: Some(std::time::SystemTime::now() - std::time::Duration::from_secs(60)),
        ..first
    };
    assert!(!old.recently_modified());
}

#[test]
fn a_file_read_in_pieces_has_the_fingerprint_of_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    // Longer than the read buffer, and not a multiple of it.
    let text: String = (0..30_000).map(|i| format!("{i},")).collect();
    assert!(text.len() > 100 * 1024);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(fingerprint_file(&path).unwrap(), fingerprint(&text));
    std::fs::write(&path, format!("{text}1")).unwrap();
    assert_ne!(fingerprint_file(&path).unwrap(), fingerprint(&text));
    assert!(fingerprint_file(&dir.path().join("absent")).is_err());
}
