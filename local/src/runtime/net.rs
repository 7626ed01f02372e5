//! The host side of local mode: the bridge pods hang off, forwarding,
//! the instance's iptables chains and their jumps, and each pod's network
//! namespace with its veth pair. Everything is named after the instance so
//! teardown finds it.

use std::{net::Ipv4Addr, path::Path, process::Stdio};

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use crate::state::{Instance, StateDir};

/// Runs a command; its stdout, or an error with its stderr.
pub async fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !out.status.success() {
        anyhow::bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Feeds `input` to `iptables-restore --noflush`.
pub async fn iptables_restore(input: &str) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run iptables-restore (is iptables installed?)")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        anyhow::bail!(
            "iptables-restore failed: {}\n--- input ---\n{input}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The instance's chains that exist in a table now.
pub async fn existing_chains(instance: &Instance, table: &str) -> anyhow::Result<Vec<String>> {
    let prefix = format!(":{}", instance.chain(""));
    Ok(run("iptables-save", &["-t", table])
        .await?
        .lines()
        .filter_map(|l| l.strip_prefix(':').filter(|_| l.starts_with(&prefix)))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// Where the instance's chains are jumped to from the built-in ones.
fn jumps(instance: &Instance) -> [(&'static str, &'static str, String); 5] {
    [
        ("nat", "PREROUTING", instance.chain("SERVICES")),
        ("nat", "OUTPUT", instance.chain("SERVICES")),
        ("nat", "POSTROUTING", instance.chain("POSTROUTING")),
        ("filter", "FORWARD", instance.chain("FORWARD")),
        ("filter", "INPUT", instance.chain("INPUT")),
    ]
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Bridge, forwarding, and the jumps to the instance's chains (which
/// `rules` fills; empty: left as they are). Safe to run again.
pub async fn setup_host(instance: &Instance, state: &StateDir, rules: &str) -> anyhow::Result<()> {
    let bridge = instance.bridge();
    if run("ip", &["link", "show", &bridge]).await.is_err() {
        run("ip", &["link", "add", &bridge, "type", "bridge"]).await?;
    }
    let cidr = format!("{}/{}", instance.gateway(), instance.pod_cidr.prefix_len());
    run("ip", &["addr", "replace", &cidr, "dev", &bridge]).await?;
    run("ip", &["link", "set", &bridge, "up"]).await?;

    let saved = state.run().join("ip_forward.before");
    if !saved.exists() {
        let before = std::fs::read_to_string(IP_FORWARD).context("cannot read ip_forward")?;
        std::fs::write(&saved, before.trim())?;
    }
    std::fs::write(IP_FORWARD, "1").context("cannot enable IPv4 forwarding")?;

    // No rules: the chains an earlier daemon filled stay as they are.
    if !rules.is_empty() {
        iptables_restore(rules).await?;
    }
    for (table, builtin, chain) in jumps(instance) {
        let check = run("iptables", &["-t", table, "-C", builtin, "-j", &chain]).await;
        if check.is_err() {
            run("iptables", &["-t", table, "-I", builtin, "1", "-j", &chain]).await?;
        }
    }
    Ok(())
}

/// Removes what `setup_host` made; what is already gone is skipped.
pub async fn teardown_host(instance: &Instance, state: &StateDir) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, builtin, chain) in jumps(instance) {
        while run("iptables", &["-t", table, "-D", builtin, "-j", &chain])
            .await
            .is_ok()
        {}
    }
    for table in ["nat", "filter"] {
        match existing_chains(instance, table).await {
            Ok(chains) => {
                for chain in &chains {
                    let _ = run("iptables", &["-t", table, "-F", chain]).await;
                }
                for chain in &chains {
                    if let Err(e) = run("iptables", &["-t", table, "-X", chain]).await {
                        problems.push(format!("{e:#}"));
                    }
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    for netns in list_netns(instance) {
        if let Err(e) = delete_netns(&netns).await {
            problems.push(format!("{e:#}"));
        }
    }
    let bridge = instance.bridge();
    if run("ip", &["link", "show", &bridge]).await.is_ok()
        && let Err(e) = run("ip", &["link", "del", &bridge]).await
    {
        problems.push(format!("{e:#}"));
    }
    let saved = state.run().join("ip_forward.before");
    if let Ok(before) = std::fs::read_to_string(&saved) {
        if let Err(e) = std::fs::write(IP_FORWARD, before.trim()) {
            problems.push(format!("cannot restore ip_forward: {e}"));
        }
        let _ = std::fs::remove_file(saved);
    }
    problems
}

/// The instance's network namespaces that exist now.
pub fn list_netns(instance: &Instance) -> Vec<String> {
    let prefix = instance.netns_prefix();
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// A pod's network: its namespace, a veth pair with the pod end as eth0,
/// its address, loopback, and the default route through the gateway.
pub async fn create_pod_network(
    instance: &Instance,
    netns: &str,
    veth: &str,
    ip: Ipv4Addr,
) -> anyhow::Result<()> {
    // A namespace left by an earlier run of the same pod goes first.
    if Path::new("/run/netns").join(netns).exists() {
        delete_netns(netns).await?;
    }
    let _ = run("ip", &["link", "del", veth]).await;
    run("ip", &["netns", "add", netns]).await?;
    run(
        "ip",
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
        ],
    )
    .await?;
    run(
        "ip",
        &["link", "set", veth, "master", &instance.bridge(), "up"],
    )
    .await?;
    let cidr = format!("{ip}/{}", instance.pod_cidr.prefix_len());
    let gateway = instance.gateway().to_string();
    run("ip", &["-n", netns, "addr", "add", &cidr, "dev", "eth0"]).await?;
    run("ip", &["-n", netns, "link", "set", "eth0", "up"]).await?;
    run("ip", &["-n", netns, "link", "set", "lo", "up"]).await?;
    run(
        "ip",
        &["-n", netns, "route", "add", "default", "via", &gateway],
    )
    .await?;
    Ok(())
}

/// Deletes a network namespace (its veth goes with it) and its
/// `/etc/netns` directory.
pub async fn delete_netns(netns: &str) -> anyhow::Result<()> {
    if Path::new("/run/netns").join(netns).exists() {
        run("ip", &["netns", "del", netns]).await?;
    }
    let etc = Path::new("/etc/netns").join(netns);
    if etc.exists() {
        std::fs::remove_dir_all(&etc)
            .with_context(|| format!("cannot remove {}", etc.display()))?;
    }
    Ok(())
}

/// Writes a pod's hosts file in place: `ip netns exec` bind-mounts it
/// into the pod's processes, so replacing the file would leave them
/// reading the old one.
pub fn write_hosts(netns: &str, content: &str) -> anyhow::Result<()> {
    let dir = Path::new("/etc/netns").join(netns);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("hosts");
    overwrite_in_place(&path, content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `content` over the file and then cuts what is left of the old
/// one, never truncating first: a process reading it meanwhile sees every
/// byte the old and new contents share. The hosts file's first lines (the
/// pod, the control plane) do not change, so a proxy resolving the
/// controller during a rewrite never finds the file empty and falls back
/// to DNS (whose resolver may take 5 s to fail from a pod).
fn overwrite_in_place(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all(content)?;
    file.set_len(content.len() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rewrite_in_place_leaves_exactly_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        for content in [
            "127.0.0.1 localhost\n10.0.0.1 gw a b c d\n",
            "127.0.0.1 localhost\n",
            "",
        ] {
            super::overwrite_in_place(&path, content.as_bytes()).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
        super::overwrite_in_place(&path, b"longer than before\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "longer than before\n"
        );
    }
}
