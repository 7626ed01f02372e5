//! A pod's status as the runtime tracks it, and as Kubernetes writes it
//! (`status` of the stored Pod), which `osm local get pods` reads back.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

/// What a container is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting { reason: String, message: String },
    Running { since: String },
    Terminated { exit_code: i32, reason: String },
}

impl Default for State {
    fn default() -> Self {
        State::Waiting {
            reason: "PodInitializing".into(),
            message: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub state: State,
    pub ready: bool,
    pub started: bool,
    pub restarts: u32,
    /// A restartable init container (native sidecar).
    pub sidecar: bool,
    /// How its previous run ended (kubectl's Last State).
    pub last_state: Option<State>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodStatus {
    pub phase: String,
    pub message: Option<String>,
    pub pod_ip: Option<Ipv4Addr>,
    pub started_at: String,
    pub init: Vec<ContainerStatus>,
    pub containers: Vec<ContainerStatus>,
    /// What happened to it (written as Event objects).
    pub events: super::events::EventLog,
}

impl PodStatus {
    /// Ready: every app container and every sidecar ready.
    pub fn ready(&self) -> bool {
        !self.containers.is_empty()
            && self.containers.iter().all(|c| c.ready)
            && self.init.iter().filter(|c| c.sidecar).all(|c| c.ready)
    }

    fn initialized(&self) -> bool {
        self.init.iter().all(|c| {
            if c.sidecar {
                c.started
            } else {
                matches!(c.state, State::Terminated { exit_code: 0, .. })
            }
        })
    }

    pub fn to_json(&self, host_ip: Ipv4Addr) -> Value {
        let bool_status = |b: bool| if b { "True" } else { "False" };
        let mut status = json!({
            "phase": self.phase,
            "hostIP": host_ip.to_string(),
            "startTime": self.started_at,
            "conditions": [
                {"type": "Initialized", "status": bool_status(self.initialized())},
                {"type": "Ready", "status": bool_status(self.ready())},
                {"type": "ContainersReady", "status": bool_status(self.containers.iter().all(|c| c.ready))},
            ],
            "initContainerStatuses": self.init.iter().map(container_json).collect::<Vec<_>>(),
            "containerStatuses": self.containers.iter().map(container_json).collect::<Vec<_>>(),
        });
        if let Some(ip) = self.pod_ip {
            status["podIP"] = json!(ip.to_string());
            status["podIPs"] = json!([{"ip": ip.to_string()}]);
        }
        if let Some(m) = &self.message {
            status["message"] = json!(m);
        }
        status
    }
}

fn state_json(state: &State) -> Value {
    match state {
        State::Waiting { reason, message } => {
            json!({"waiting": {"reason": reason, "message": message}})
        }
        State::Running { since } => json!({"running": {"startedAt": since}}),
        State::Terminated { exit_code, reason } => {
            json!({"terminated": {"exitCode": exit_code, "reason": reason}})
        }
    }
}

/// A state as `state_json` wrote it (a daemon reading back what an
/// earlier one wrote).
fn state_from_json(value: &Value) -> Option<State> {
    let text = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if let Some(w) = value.get("waiting") {
        return Some(State::Waiting {
            reason: text(w, "reason"),
            message: text(w, "message"),
        });
    }
    if let Some(r) = value.get("running") {
        return Some(State::Running {
            since: text(r, "startedAt"),
        });
    }
    let t = value.get("terminated")?;
    Some(State::Terminated {
        exit_code: i32::try_from(t.get("exitCode")?.as_i64()?).ok()?,
        reason: text(t, "reason"),
    })
}

impl PodStatus {
    /// `base` (the spec's containers, as a new pod starts) with what a
    /// stored status says of the pod and of each container by name: how
    /// an earlier daemon left a pod that a new one adopts. Events are not
    /// read back.
    pub fn restored(mut self, stored: &Value) -> Self {
        let text = |field: &str| stored.get(field).and_then(Value::as_str);
        if let Some(phase) = text("phase") {
            self.phase = phase.into();
        }
        self.message = text("message").map(str::to_string);
        if let Some(start) = text("startTime") {
            self.started_at = start.into();
        }
        self.pod_ip = text("podIP").and_then(|ip| ip.parse().ok());
        for (list, field) in [
            (&mut self.init, "initContainerStatuses"),
            (&mut self.containers, "containerStatuses"),
        ] {
            for value in stored
                .get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = value.get("name").and_then(Value::as_str);
                let Some(c) = list.iter_mut().find(|c| Some(c.name.as_str()) == name) else {
                    continue;
                };
                let flag = |f: &str| value.get(f).and_then(Value::as_bool).unwrap_or(false);
                c.ready = flag("ready");
                c.started = flag("started");
                c.restarts = value
                    .get("restartCount")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0);
                if let Some(state) = value.get("state").and_then(state_from_json) {
                    c.state = state;
                }
                c.last_state = value.get("lastState").and_then(state_from_json);
            }
        }
        self
    }
}

fn container_json(c: &ContainerStatus) -> Value {
    let mut value = json!({
        "name": c.name,
        "image": c.image,
        "ready": c.ready,
        "started": c.started,
        "restartCount": c.restarts,
        "state": state_json(&c.state),
    });
    if let Some(last) = &c.last_state {
        value["lastState"] = state_json(last);
    }
    value
}

/// kubectl's READY and STATUS columns for a stored pod (pure).
pub fn ready_and_status(pod: &Value) -> (String, String, u64) {
    let status = pod.get("status");
    let list = |field: &str| -> Vec<Value> {
        status
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let init = list("initContainerStatuses");
    let containers = list("containerStatuses");
    let spec_containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let sidecars = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
        .count();
    let is_ready = |c: &Value| c.get("ready").and_then(Value::as_bool) == Some(true);
    let ready = containers.iter().filter(|c| is_ready(c)).count()
        + init
            .iter()
            .filter(|c| is_sidecar(pod, c) && is_ready(c))
            .count();
    let restarts: u64 = containers
        .iter()
        .chain(init.iter())
        .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
        .sum();
    let waiting = |c: &Value| {
        c.pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let phase = status
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string();
    let total_init = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let init_done = init
        .iter()
        .filter(|c| {
            if is_sidecar(pod, c) {
                c.get("started").and_then(Value::as_bool) == Some(true)
            } else {
                c.pointer("/state/terminated/exitCode")
                    .and_then(Value::as_i64)
                    == Some(0)
            }
        })
        .count();
    let text = if init_done < total_init {
        match init
            .iter()
            .find_map(|c| waiting(c).filter(|r| r != "PodInitializing"))
        {
            Some(r) => format!("Init:{r}"),
            None => format!("Init:{init_done}/{total_init}"),
        }
    } else if let Some(reason) = containers.iter().find_map(waiting) {
        reason
    } else if let Some(reason) = containers.iter().find_map(|c| {
        c.pointer("/state/terminated/reason")
            .and_then(Value::as_str)
            .map(str::to_string)
    }) {
        reason
    } else {
        phase
    };
    (
        format!("{ready}/{}", spec_containers + sidecars),
        text,
        restarts,
    )
}

fn is_sidecar(pod: &Value, status: &Value) -> bool {
    let name = status.get("name").and_then(Value::as_str);
    pod.pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("name").and_then(Value::as_str) == name
                && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meshed_pod(status: &PodStatus) -> Value {
        json!({
            "spec": {
                "initContainers": [{"name": "osm-init"}, {"name": "osm-proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}],
            },
            "status": status.to_json("10.213.0.1".parse().unwrap()),
        })
    }

    fn c(name: &str, state: State, ready: bool, sidecar: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            started: ready,
            state,
            ready,
            sidecar,
            ..Default::default()
        }
    }

    #[test]
    fn a_written_status_reads_back_as_it_was_but_for_events() {
        let running = State::Running { since: "t1".into() };
        let mut written = PodStatus {
            phase: "Running".into(),
            message: Some("why".into()),
            pod_ip: Some("10.213.0.9".parse().unwrap()),
            started_at: "t0".into(),
            init: vec![
                c(
                    "osm-init",
                    State::Terminated {
                        exit_code: 0,
                        reason: "Completed".into(),
                    },
                    false,
                    false,
                ),
                c("osm-proxy", running.clone(), true, true),
            ],
            containers: vec![c("app", running, true, false)],
            ..Default::default()
        };
        written.containers[0].restarts = 2;
        written.containers[0].last_state = Some(State::Terminated {
            exit_code: 137,
            reason: "Error".into(),
        });
        let base = PodStatus {
            init: vec![
                c("osm-init", State::default(), false, false),
                c("osm-proxy", State::default(), false, true),
            ],
            containers: vec![c("app", State::default(), false, false)],
            ..Default::default()
        };
        let json = written.to_json("10.213.0.1".parse().unwrap());
        assert_eq!(base.clone().restored(&json), written);
        // A container the stored status does not name stays as the spec
        // starts it; a name the spec lacks is ignored.
        let mut partial = json.clone();
        partial["containerStatuses"][0]["name"] = json!("gone");
        assert_eq!(base.clone().restored(&partial).containers, base.containers);
    }

    #[test]
    fn a_meshed_pod_reads_like_kubectl_through_its_life() {
        let done = State::Terminated {
            exit_code: 0,
            reason: "Completed".into(),
        };
        let running = State::Running { since: "t".into() };
        let mut s = PodStatus {
            phase: "Pending".into(),
            init: vec![
                c("osm-init", State::default(), false, false),
                c("osm-proxy", State::default(), false, true),
            ],
            containers: vec![c("app", State::default(), false, false)],
            ..Default::default()
        };
        assert_eq!(
            ready_and_status(&meshed_pod(&s)),
            ("0/2".into(), "Init:0/2".into(), 0)
        );
        s.init[0].state = done.clone();
        s.init[1] = c("osm-proxy", running.clone(), true, true);
        s.containers[0] = c(
            "app",
            State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "exit 1".into(),
            },
            false,
            false,
        );
        s.containers[0].restarts = 3;
        assert_eq!(
            ready_and_status(&meshed_pod(&s)),
            ("1/2".into(), "CrashLoopBackOff".into(), 3)
        );
        s.phase = "Running".into();
        s.containers[0] = c("app", running, true, false);
        assert!(s.ready());
        assert_eq!(
            ready_and_status(&meshed_pod(&s)),
            ("2/2".into(), "Running".into(), 0)
        );
    }
}
