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

/// A container over its memory limit is killed by the kernel and shows
/// `OOMKilled`; `get pods -o wide` says its limits are enforced.
pub fn a_memory_limit_is_enforced(mesh: &LocalMesh) {
    mesh.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hog, namespace: default}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: hog\n    image: sh\n    command: [sh, -c, 'head -c 268435456 /dev/zero | tail -n 1 > /dev/null']\n    resources: {limits: {memory: 32Mi, cpu: 500m}}\n",
    );
    let row = osm_tests::local::wait_for(
        "hog to be OOMKilled",
        std::time::Duration::from_secs(30),
        || {
            let table = mesh.ok(&["local", "get", "pods", "-n", "default", "-o", "wide"]);
            table
                .lines()
                .find(|l| l.starts_with("hog ") && l.contains("OOMKilled"))
                .map(str::to_string)
        },
    );
    assert!(
        row.trim_end().ends_with("enforced") && !row.contains("not enforced"),
        "{row}"
    );
    let pod = mesh
        .pods("default")
        .into_iter()
        .find(|p| p["metadata"]["name"] == "hog")
        .expect("hog");
    let last = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (last["reason"].as_str(), last["exitCode"].as_i64()),
        (Some("OOMKilled"), Some(137)),
        "{pod}"
    );
    mesh.delete("apiVersion: v1\nkind: Pod\nmetadata: {name: hog, namespace: default}\n");
}

/// hostPath volumes: refused until `up --allow-host-path`, then mounted
/// at their path; never over the state directory.
pub fn host_paths_need_the_flag(mesh: &LocalMesh) {
    let shared = tempfile::tempdir().expect("a directory to share");
    std::fs::write(shared.path().join("note"), "from the host").expect("the note");
    // Readable by the pod's unprivileged user.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755))
        .expect("the shared directory's mode");
    let pod = |name: &str, path: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers:\n  - {{name: c, image: sleep, command: [sleep, '3600'], volumeMounts: [{{name: h, mountPath: /host}}]}}\n  volumes: [{{name: h, hostPath: {{path: {path}, type: Directory}}}}]\n"
        )
    };
    let shared_path = shared.path().display().to_string();
    let message = |name: &str| {
        mesh.pods("default")
            .into_iter()
            .find(|p| p["metadata"]["name"] == name)
            .and_then(|p| p["status"]["message"].as_str().map(str::to_string))
    };
    mesh.apply(&pod("hostpath", &shared_path));
    let refused = osm_tests::local::wait_for(
        "hostPath refused",
        std::time::Duration::from_secs(30),
        || message("hostpath"),
    );
    assert!(refused.contains("--allow-host-path"), "{refused}");
    mesh.delete("apiVersion: v1\nkind: Pod\nmetadata: {name: hostpath, namespace: default}\n");

    let out = mesh.ok(&["local", "up", "--allow-host-path"]);
    assert!(out.contains("hostPath volumes are allowed"), "{out}");
    mesh.apply(&pod("hostpath2", &shared_path));
    let read = osm_tests::local::wait_for(
        "the host's file in the pod",
        std::time::Duration::from_secs(30),
        || {
            let (code, out, _) = mesh.exec("default", "hostpath2", &["cat", "/host/note"]);
            (code == 0).then_some(out)
        },
    );
    assert_eq!(read, "from the host");
    let state = mesh.state_dir().display().to_string();
    mesh.apply(&pod("hostpath3", &state));
    let refused = osm_tests::local::wait_for(
        "the state directory refused",
        std::time::Duration::from_secs(30),
        || message("hostpath3"),
    );
    assert!(refused.contains("state directory"), "{refused}");
    mesh.delete(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hostpath2, namespace: default}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: hostpath3, namespace: default}\n",
    );
}
