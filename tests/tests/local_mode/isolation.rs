//! A container is isolated as a kubelet's is (issue 19, item 2): its own
//! hostname, an unprivileged user unless it asks for root, the host's
//! root filesystem read-only, a private /tmp, its volumes at their mount
//! paths and nothing of the state directory (the mesh's CA key and token
//! key, other pods' volumes).

use osm_tests::local::LocalMesh;

/// `pod` (in `default`) runs `sleep` with a configMap at /etc/settings.
pub fn a_container_is_isolated_like_a_kubelets(mesh: &LocalMesh, pod: &str) {
    let sh = |script: &str| mesh.exec("default", pod, &["sh", "-c", script]);
    let (code, out, err) = sh("id -u; hostname");
    assert_eq!((code, out.as_str()), (0, "65532\nreader\n"), "{err}");

    let state = mesh.state_dir().display().to_string();
    for secret in [
        "controller/private.key",
        "controller/token.key",
        "controller/ca-state.json",
    ] {
        let path = format!("{state}/{secret}");
        assert!(
            mesh.state_dir().join(secret).exists(),
            "{path} should exist on the host"
        );
        let (code, out, _) = sh(&format!("cat {path} || ls -d {state}"));
        assert_ne!(code, 0, "a pod reads {path}: {out}");
    }
    // Another pod's volume: not there, by the state directory or otherwise.
    let (code, out, _) = sh(&format!("ls {state}/pods/bookbuyer"));
    assert_ne!(code, 0, "{out}");

    // The host's root read-only; a private /tmp, gone with the pod.
    let (code, _, err) = sh("touch /usr/local/osm-isolation-probe");
    assert!(code != 0 && err.contains("Read-only file system"), "{err}");
    let marker = format!("osm-isolation-{}", std::process::id());
    let (code, out, err) = sh(&format!(
        "echo private > /tmp/{marker} && cat /tmp/{marker}"
    ));
    assert_eq!((code, out.as_str()), (0, "private\n"), "{err}");
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "the pod's /tmp is the host's"
    );
    // Its configMap at its mount path, read-only.
    let (code, _, err) = sh("echo x > /etc/settings/mode");
    assert!(code != 0, "a configMap volume is writable: {err}");
}
