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
    /// The limits enforced on it (`resources.limits`, written as the
    /// status's `resources` as Kubernetes reports enacted resources);
    /// none when it has none or the host cannot enforce them.
    pub enforced_limits: Option<Value>,
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
                c.enforced_limits = value.pointer("/resources/limits").cloned();
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
    if let Some(limits) = &c.enforced_limits {
        value["resources"] = json!({"limits": limits});
    }
    value
}

/// `get pods -o wide`'s LIMITS column (pure): `enforced` when every
/// started container with `resources.limits` reports them enacted,
/// `not enforced` when one does not (the host has no usable cgroups: its
/// events say why), `<none>` without limits, `<pending>` before start.
pub fn limits_column(pod: &Value) -> String {
    let mut any = false;
    let mut started = false;
    for (spec, status) in [
        ("/spec/initContainers", "/status/initContainerStatuses"),
        ("/spec/containers", "/status/containerStatuses"),
    ] {
        let statuses = pod.pointer(status).and_then(Value::as_array);
        for c in pod
            .pointer(spec)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if c.pointer("/resources/limits")
                .is_none_or(|l| l.as_object().is_none_or(|m| m.is_empty()))
            {
                continue;
            }
            any = true;
            let Some(s) = statuses
                .into_iter()
                .flatten()
                .find(|s| s.get("name") == c.get("name"))
                .filter(|s| s.pointer("/state/waiting").is_none())
            else {
                continue;
            };
            started = true;
            if s.pointer("/resources/limits").is_none() {
                return "not enforced".into();
            }
        }
    }
    match (any, started) {
        (false, _) => "<none>",
        (true, false) => "<pending>",
        (true, true) => "enforced",
    }
    .into()
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
#[path = "status_tests.rs"]
mod tests;
