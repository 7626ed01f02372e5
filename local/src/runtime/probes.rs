//! The kubelet's probes, run from the host against the pod's address:
//! httpGet (2xx and 3xx pass), tcpSocket (a connection passes) and exec
//! (exit 0 inside the pod's network namespace passes).

use std::{net::Ipv4Addr, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};

/// Timing of a probe, with Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

fn secs(v: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(v.and_then(|s| u64::try_from(s).ok()).unwrap_or(default))
}

pub fn timing(probe: &Probe) -> Timing {
    Timing {
        initial_delay: secs(probe.initial_delay_seconds, 0),
        period: secs(probe.period_seconds, 10).max(Duration::from_millis(200)),
        timeout: secs(probe.timeout_seconds, 1).max(Duration::from_millis(200)),
        success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
    }
}

fn port(p: &IntOrString, container: &Container) -> Option<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok()),
    }
}

/// One attempt: Ok(()) passes, Err says why not.
/// `exec_in` is what runs an exec probe's command inside the container as
/// its user (an error when the container does not run).
pub async fn attempt(
    probe: &Probe,
    container: &Container,
    pod_ip: Ipv4Addr,
    exec_in: impl FnOnce() -> Result<Vec<String>, String>,
) -> Result<(), String> {
    let timeout = timing(probe).timeout;
    if let Some(get) = &probe.http_get {
        let port = port(&get.port, container).ok_or("httpGet: unknown port")?;
        let ip = match get.host.as_deref() {
            None | Some("") => std::net::IpAddr::V4(pod_ip),
            Some(host) => host.parse().map_err(|_| {
                format!("httpGet.host {host:?}: local mode's probes connect to addresses only")
            })?,
        };
        let addr = std::net::SocketAddr::new(ip, port);
        if get.scheme.as_deref() == Some("HTTPS") {
            // The certificate is the app's business; a TLS port that
            // accepts connections is up.
            return tcp(addr, timeout).await;
        }
        let path = get.path.as_deref().unwrap_or("/");
        // The injector's rewrite of a TCP probe names the port to check in
        // a header (Original-Tcp-Port): headers are part of the probe.
        let headers: Vec<(String, String)> = get
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return match crate::http::request_with_headers(
            addr,
            http::Method::GET,
            path,
            &headers,
            timeout,
        )
        .await
        {
            Ok(a) if (200..400).contains(&a.status) => Ok(()),
            Ok(a) => Err(format!("HTTP probe failed with statuscode: {}", a.status)),
            Err(e) => Err(format!("{e:#}")),
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let port = port(&t.port, container).ok_or("tcpSocket: unknown port")?;
        return tcp((pod_ip, port).into(), timeout).await;
    }
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err("exec probe without a command".into());
        }
        let prefix = exec_in()?;
        let status = tokio::time::timeout(
            timeout,
            tokio::process::Command::new(&prefix[0])
                .args(&prefix[1..])
                .args(&command)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status(),
        )
        .await;
        return match status {
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => Err(format!("exec probe exited with {s}")),
            Ok(Err(e)) => Err(format!("exec probe: {e}")),
            Err(_) => Err("exec probe timed out".into()),
        };
    }
    Err("the probe has no handler".into())
}

async fn tcp(addr: std::net::SocketAddr, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("dial tcp {addr}: {e}")),
        Err(_) => Err(format!("dial tcp {addr}: timed out")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kubernetes_defaults_apply() {
        let probe: Probe = serde_json::from_value(json!({"httpGet": {"port": 80}})).unwrap();
        let t = timing(&probe);
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!(t.failure_threshold, 3);
        assert_eq!(t.success_threshold, 1);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_pass_and_fail_on_real_sockets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf)
                    .await
                    .unwrap();
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                tokio::io::AsyncWriteExt::write_all(&mut s, reply.as_bytes())
                    .await
                    .unwrap();
            }
        });
        let container: Container = serde_json::from_value(
            json!({"name": "c", "ports": [{"name": "web", "containerPort": port}]}),
        )
        .unwrap();
        let probe: Probe =
            serde_json::from_value(json!({"httpGet": {"port": "web", "path": "/ready"}})).unwrap();
        let ip = Ipv4Addr::LOCALHOST;
        assert_eq!(
            attempt(&probe, &container, ip, || Err("no exec".to_string())).await,
            Ok(())
        );
        let err = attempt(&probe, &container, ip, || Err("no exec".to_string()))
            .await
            .unwrap_err();
        assert!(err.contains("503"), "{err}");
        server.await.unwrap();
        let closed: Probe = serde_json::from_value(json!({"tcpSocket": {"port": port}})).unwrap();
        assert!(
            attempt(&closed, &container, ip, || Err("no exec".to_string()))
                .await
                .is_err()
        );
    }

    /// Regression (issue 17's interception bench): the injector rewrites a
    /// TCP probe into `GET /osm-healthcheck` with `Original-Tcp-Port`, and
    /// local mode sent no header, so the proxy answered 400 and the pod
    /// never became ready.
    #[tokio::test]
    async fn http_probes_send_their_headers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = tokio::io::AsyncReadExt::read(&mut s, &mut buf)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            let status = if text.contains("original-tcp-port: 8080")
                && text.contains("host: probe.example")
            {
                "200 OK"
            } else {
                "400 Bad Request"
            };
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            tokio::io::AsyncWriteExt::write_all(&mut s, reply.as_bytes())
                .await
                .unwrap();
        });
        let container: Container = serde_json::from_value(json!({"name": "c"})).unwrap();
        let probe: Probe = serde_json::from_value(json!({"httpGet": {
            "port": port, "path": "/osm-healthcheck", "host": "127.0.0.1",
            "httpHeaders": [
                {"name": "Original-Tcp-Port", "value": "8080"},
                {"name": "Host", "value": "probe.example"}
            ]
        }}))
        .unwrap();
        // The pod address is unreachable: `host` is where the probe goes.
        let pod_ip = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(
            attempt(&probe, &container, pod_ip, || Err("no exec".to_string())).await,
            Ok(())
        );
        server.await.unwrap();

        let named: Probe =
            serde_json::from_value(json!({"httpGet": {"port": port, "host": "db.local"}})).unwrap();
        let err = attempt(&named, &container, pod_ip, || Err("no exec".to_string()))
            .await
            .unwrap_err();
        assert!(err.contains("addresses only"), "{err}");
    }
}
