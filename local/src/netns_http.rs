//! A GET to `127.0.0.1:<port>` inside a pod's network namespace: how the
//! demo and the tests read an app's counters without going through the
//! pod's proxy (loopback is never intercepted), as a port-forward would.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::Context as _;
use nix::sched::{CloneFlags, setns};

/// (status, body) of `GET path` on the pod's loopback.
pub fn get(netns: &str, port: u16, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let netns = netns.to_string();
    let path = path.to_string();
    // setns moves only the calling thread: a thread of its own enters the
    // pod's namespace and ends with the request.
    std::thread::spawn(move || -> anyhow::Result<(u16, String)> {
        let file = std::fs::File::open(format!("/run/netns/{netns}"))
            .with_context(|| format!("no network namespace {netns}"))?;
        setns(&file, CloneFlags::CLONE_NEWNET)
            .context("cannot enter the pod's network namespace")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("nothing answers on port {port} in {netns}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("not an HTTP response")?;
        Ok((status, body.to_string()))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the request thread panicked"))?
}
