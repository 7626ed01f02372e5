//! The Gateway API mesh conformance scenarios (conformance/tests/mesh/ of
//! the gateway-api repository), rebuilt as local-mode end-to-end tests:
//! real proxies, real interception in network namespaces, the upstream
//! layout (demo/manifests/gamma/echo.yaml) answered by osm-echo, each
//! scenario's route applied, judged as the upstream test judges it
//! (eventually consistent responses; weights by counts), then deleted.
//! Needs root, iproute2 and iptables, like every local-mode test.

use std::time::Duration;

use osm_tests::local::{LocalMesh, poll_until, ready, wait_for};
use serde_json::Value;

const NS: &str = "gateway-conformance-mesh";
const CONSUMER: &str = "gateway-conformance-mesh-consumer";
const PATIENCE: Duration = Duration::from_secs(60);

/// One answer as `httpget -i` prints it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The Service whose pod answered (osm-echo's `service`).
    fn backend(&self) -> &str {
        self.body["service"].as_str().unwrap_or("")
    }

    /// A request header as the backend received it (first value).
    fn seen(&self, name: &str) -> Option<&str> {
        self.body["headers"][name.to_ascii_lowercase()][0].as_str()
    }
}

fn parse(stdout: &str) -> Option<Answer> {
    let mut lines = stdout.split('\n');
    let status = lines.next()?.trim().parse().ok()?;
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(": ")?;
        headers.push((n.to_string(), v.to_string()));
    }
    let body = lines.collect::<Vec<_>>().join("\n");
    Some(Answer {
        status,
        headers,
        body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
    })
}

struct Gamma {
    mesh: LocalMesh,
}

impl Gamma {
    fn client(&self, namespace: &str) -> String {
        self.mesh.pods_of(namespace, "client")[0].clone()
    }

    /// One request from the client of `namespace` (`httpget -i ARGS`).
    fn request(&self, namespace: &str, args: &[&str]) -> Option<Answer> {
        let mut command = vec!["httpget", "-i"];
        command.extend_from_slice(args);
        let (code, stdout, _) = self.mesh.exec(namespace, &self.client(namespace), &command);
        if code == 7 {
            return None; // nothing answered
        }
        parse(&stdout)
    }

    /// Requests until one passes `check` (routes reach proxies eventually).
    fn expect(
        &self,
        scenario: &str,
        namespace: &str,
        args: &[&str],
        check: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let mut last = None;
        let found = poll_until(PATIENCE, || {
            let answer = self.request(namespace, args)?;
            if check(&answer) {
                return Some(answer);
            }
            last = Some(answer);
            None
        });
        found.unwrap_or_else(|| {
            panic!("{scenario}: {args:?} from {namespace}: last answer {last:#?}")
        })
    }

    /// Requests until `count` in a row are answered by `backend` (a
    /// single answer could come from it by chance before the route is in
    /// place).
    fn expect_backend(&self, scenario: &str, args: &[&str], backend: &str) {
        let mut last = None;
        let done = poll_until(PATIENCE, || {
            let tally = self.tally(NS, args, 8);
            if tally.get(backend) == Some(&8) {
                return Some(());
            }
            last = Some(tally);
            None
        });
        assert!(
            done.is_some(),
            "{scenario}: {args:?} not all answered by {backend}: {last:?}"
        );
    }

    /// The backends of `count` requests (`httpget --count`), by Service.
    fn tally(
        &self,
        namespace: &str,
        args: &[&str],
        count: u32,
    ) -> std::collections::BTreeMap<String, u32> {
        let count = count.to_string();
        let mut command = vec!["httpget", "--count", count.as_str()];
        command.extend_from_slice(args);
        let (_, stdout, stderr) = self.mesh.exec(namespace, &self.client(namespace), &command);
        let mut tally = std::collections::BTreeMap::new();
        for line in stdout.lines() {
            let (status, body) = line.split_once(' ').unwrap_or((line, ""));
            let backend = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|b| b["service"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("status {status}"));
            *tally.entry(backend).or_insert(0) += 1;
        }
        assert!(!tally.is_empty(), "no answers: {stderr}");
        tally
    }

    fn route(&self, yaml: &str) -> Route<'_> {
        self.mesh.apply(yaml);
        Route {
            gamma: self,
            yaml: yaml.to_string(),
        }
    }
}

/// A route applied for one scenario, deleted when it ends.
struct Route<'a> {
    gamma: &'a Gamma,
    yaml: String,
}

impl Drop for Route<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.gamma.mesh.delete(&self.yaml);
        }
    }
}

fn http_route(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}"
    )
}

#[test]
fn the_gateway_api_mesh_conformance_scenarios_in_local_mode() {
    let gamma = Gamma {
        mesh: LocalMesh::up("osmg", "10.225.0.0/16", "10.226.0.0/16"),
    };
    gamma.mesh.apply_file("demo/manifests/gamma/echo.yaml");
    for (ns, deployment) in [
        (NS, "echo-v1"),
        (NS, "echo-v2"),
        (NS, "client"),
        (CONSUMER, "client"),
    ] {
        wait_for(&format!("{ns}/{deployment} ready"), PATIENCE, || {
            gamma.mesh.pod_of(ns, deployment).filter(ready)
        });
    }
    scenarios::basic_and_frontends(&gamma);
    scenarios::ports_and_consumers(&gamma);
    scenarios::matching(&gamma);
    scenarios::weights(&gamma);
    filters::header_modifiers(&gamma);
    filters::mirror(&gamma);
    filters::rewrites(&gamma);
    filters::redirects(&gamma);
    filters::grpc(&gamma);
    filters::timeouts_and_status(&gamma);
}

mod filters;
mod scenarios;
