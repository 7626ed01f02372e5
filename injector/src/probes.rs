//! Health-probe rewriting (OSM's scheme). With every inbound port
//! intercepted, the kubelet's probes would reach the proxy without a mesh
//! certificate and be refused; so they are sent to ports that bypass
//! interception, where the proxy forwards them to the application:
//! httpGet liveness, readiness and startup to 15901, 15902 and 15903
//! (`/osm-<kind>-probe`, over HTTP; the proxy probes the application with
//! the original scheme, HTTPS included, and answers with the status only),
//! tcpSocket probes to `GET /osm-healthcheck` on 15904 with the
//! original port in `Original-Tcp-Port`. exec and gRPC probes stay.

use k8s_openapi::{
    api::core::v1::{Container, HTTPGetAction, HTTPHeader, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::{Value, json};

use osm_api::compat::{
    HEALTHCHECK_PATH as TCP_HEALTHCHECK_PATH, HEALTHCHECK_PORT as TCP_HEALTHCHECK_PORT,
    LIVENESS_PROBE_PORT, ORIGINAL_TCP_PORT_HEADER as ORIGINAL_TCP_PORT, READINESS_PROBE_PORT,
    STARTUP_PROBE_PORT,
};

/// A probe kind and the port its rewritten form uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Liveness, Kind::Readiness, Kind::Startup];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
            Kind::Startup => "startup",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Kind::Liveness => LIVENESS_PROBE_PORT,
            Kind::Readiness => READINESS_PROBE_PORT,
            Kind::Startup => STARTUP_PROBE_PORT,
        }
    }

    fn field(self) -> &'static str {
        match self {
            Kind::Liveness => "livenessProbe",
            Kind::Readiness => "readinessProbe",
            Kind::Startup => "startupProbe",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// One rewritten probe: what the proxy serves and where it forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    pub container_index: usize,
    pub kind: Kind,
    /// The probe as the kubelet will now send it.
    pub probe: Probe,
    /// Where the proxy forwards it (on localhost).
    pub target_port: u16,
    pub target_path: String,
    /// "HTTP", "HTTPS" or "TCP".
    pub scheme: String,
}

fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// Every probe of the application containers that needs rewriting. A
/// probe kind used by several containers gets a path per container after
/// the first (`/osm-liveness-probe/<container>`).
pub fn rewrite(containers: &[Container]) -> Vec<Rewritten> {
    let mut out: Vec<Rewritten> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for kind in Kind::ALL {
            let Some(probe) = kind.of(c) else { continue };
            let mut new = probe.clone();
            if let Some(get) = &probe.http_get {
                let Some(target_port) = resolve_port(&get.port, c) else {
                    continue;
                };
                let scheme = get.scheme.clone().unwrap_or_else(|| "HTTP".into());
                let target_path = get.path.clone().unwrap_or_else(|| "/".into());
                let seen = out
                    .iter()
                    .filter(|r| r.kind == kind && r.scheme != "TCP")
                    .count();
                let path = if seen == 0 {
                    format!("/osm-{}-probe", kind.name())
                } else {
                    format!("/osm-{}-probe/{}", kind.name(), c.name)
                };
                // The kubelet asks the proxy over HTTP; the proxy probes the
                // application with the original scheme (HTTPS included) and
                // answers with the status only.
                new.http_get = Some(HTTPGetAction {
                    path: Some(path),
                    port: IntOrString::Int(i32::from(kind.port())),
                    scheme: if scheme == "HTTPS" {
                        Some("HTTP".into())
                    } else {
                        get.scheme.clone()
                    },
                    ..get.clone()
                });
                out.push(Rewritten {
                    container_index: i,
                    kind,
                    probe: new,
                    target_port,
                    target_path,
                    scheme,
                });
            } else if let Some(tcp) = &probe.tcp_socket {
                let Some(target_port) = resolve_port(&tcp.port, c) else {
                    continue;
                };
                new.tcp_socket = None;
                new.http_get = Some(HTTPGetAction {
                    path: Some(TCP_HEALTHCHECK_PATH.into()),
                    port: IntOrString::Int(i32::from(TCP_HEALTHCHECK_PORT)),
                    http_headers: Some(vec![HTTPHeader {
                        name: ORIGINAL_TCP_PORT.into(),
                        value: target_port.to_string(),
                    }]),
                    ..HTTPGetAction::default()
                });
                out.push(Rewritten {
                    container_index: i,
                    kind,
                    probe: new,
                    target_port,
                    target_path: String::new(),
                    scheme: "TCP".into(),
                });
            }
        }
    }
    out
}

impl Rewritten {
    /// The JSON patch operation replacing the probe.
    pub fn patch(&self) -> Value {
        json!({
            "op": "replace",
            "path": format!("/spec/containers/{}/{}", self.container_index, self.kind.field()),
            "value": self.probe,
        })
    }

    /// What the proxy needs to serve it (in `OSM_PROXY_PROBES`).
    pub fn for_proxy(&self) -> Value {
        let get = self.probe.http_get.as_ref();
        json!({
            "kind": self.kind.name(),
            "port": get.map(|g| match &g.port { IntOrString::Int(n) => *n, IntOrString::String(_) => 0 }),
            "path": get.and_then(|g| g.path.clone()),
            "targetPort": self.target_port,
            "targetPath": self.target_path,
            "scheme": self.scheme,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn containers(v: Value) -> Vec<Container> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn http_https_tcp_exec_and_named_ports() {
        let cs = containers(json!([
            {"name": "app", "ports": [{"name": "web", "containerPort": 8080}],
             "livenessProbe": {"httpGet": {"path": "/healthz", "port": "web"}, "periodSeconds": 3},
             "readinessProbe": {"httpGet": {"path": "/ready", "port": 8443, "scheme": "HTTPS"}},
             "startupProbe": {"tcpSocket": {"port": 5432}}},
            {"name": "side",
             "livenessProbe": {"httpGet": {"path": "/live", "port": 9000}},
             "readinessProbe": {"exec": {"command": ["true"]}}}
        ]));
        let r = rewrite(&cs);
        assert_eq!(r.len(), 4, "exec probes stay");
        let live = &r[0];
        assert_eq!(live.kind, Kind::Liveness);
        let get = live.probe.http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/osm-liveness-probe"));
        assert_eq!(get.port, IntOrString::Int(15901));
        assert_eq!(live.probe.period_seconds, Some(3), "timing is kept");
        assert_eq!(
            (live.target_port, live.target_path.as_str()),
            (8080, "/healthz")
        );

        // HTTPS: the kubelet asks the proxy over HTTP, the proxy probes the
        // application over HTTPS (no raw TCP through the probe port).
        let https = &r[1];
        let get = https.probe.http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/osm-readiness-probe"));
        assert_eq!(get.port, IntOrString::Int(15902));
        assert_eq!(get.scheme.as_deref(), Some("HTTP"));
        assert_eq!(https.scheme, "HTTPS");
        assert_eq!(https.for_proxy()["scheme"], "HTTPS");
        assert_eq!(https.for_proxy()["targetPath"], "/ready");

        let tcp = &r[2];
        assert!(tcp.probe.tcp_socket.is_none());
        let get = tcp.probe.http_get.as_ref().unwrap();
        assert_eq!(get.port, IntOrString::Int(15904));
        assert_eq!(get.http_headers.as_ref().unwrap()[0].value, "5432");

        let second = &r[3];
        assert_eq!(second.container_index, 1);
        assert_eq!(
            second.probe.http_get.as_ref().unwrap().path.as_deref(),
            Some("/osm-liveness-probe/side"),
            "a second container's liveness probe gets its own path"
        );
        assert_eq!(r[0].patch()["path"], "/spec/containers/0/livenessProbe");
        assert_eq!(r[3].for_proxy()["targetPort"], 9000);
    }
}
