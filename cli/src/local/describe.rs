//! `osm local describe pod NAME`: what kubectl describe says of a pod,
//! from its stored object and its Events: each container's state, how its
//! last run ended (exit code), readiness and restarts, the pod's
//! conditions, and what happened to it (probe failures, back-offs).

use std::time::SystemTime;

use serde_json::Value;

use super::get::age;

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A container state's lines, indented under `label`.
fn state_lines(out: &mut String, label: &str, state: &Value) {
    let Some((kind, detail)) = state.as_object().and_then(|o| o.iter().next()) else {
        out.push_str(&format!("    {label:<16}<none>\n"));
        return;
    };
    let title = match kind.as_str() {
        "waiting" => "Waiting",
        "running" => "Running",
        "terminated" => "Terminated",
        other => other,
    };
    out.push_str(&format!("    {label:<16}{title}\n"));
    for (field, name) in [
        ("reason", "Reason"),
        ("message", "Message"),
        ("exitCode", "Exit Code"),
        ("startedAt", "Started"),
    ] {
        let value = match detail.get(field) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        out.push_str(&format!("      {:<14}{value}\n", format!("{name}:")));
    }
}

fn containers(out: &mut String, title: &str, spec: &[Value], statuses: &[Value]) {
    if spec.is_empty() {
        return;
    }
    out.push_str(&format!("{title}:\n"));
    for c in spec {
        let name = c["name"].as_str().unwrap_or("");
        out.push_str(&format!("  {name}:\n"));
        let command: Vec<&str> = c["command"]
            .as_array()
            .into_iter()
            .chain(c["args"].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !command.is_empty() {
            out.push_str(&format!("    {:<16}{}\n", "Command:", command.join(" ")));
        }
        let status = statuses.iter().find(|s| s["name"] == name);
        match status {
            Some(s) => {
                state_lines(out, "State:", &s["state"]);
                if let Some(last) = s.get("lastState") {
                    state_lines(out, "Last State:", last);
                }
                let ready = if s["ready"].as_bool() == Some(true) {
                    "True"
                } else {
                    "False"
                };
                out.push_str(&format!("    {:<16}{ready}\n", "Ready:"));
                out.push_str(&format!(
                    "    {:<16}{}\n",
                    "Restart Count:",
                    s["restartCount"].as_u64().unwrap_or(0)
                ));
            }
            None => out.push_str(&format!("    {:<16}not started\n", "State:")),
        }
    }
}

/// The description (pure): `pod` as stored, `events` the Event objects
/// whose involved object is this pod.
pub fn describe_pod(pod: &Value, events: &[&Value], now: SystemTime) -> String {
    let mut out = String::new();
    let (_, status, _) = osm_local::runtime::status::ready_and_status(pod);
    let line = |out: &mut String, name: &str, value: &str| {
        let value = if value.is_empty() { "<none>" } else { value };
        out.push_str(&format!("{:<14}{value}\n", format!("{name}:")));
    };
    line(&mut out, "Name", str_at(pod, "/metadata/name"));
    line(&mut out, "Namespace", str_at(pod, "/metadata/namespace"));
    line(
        &mut out,
        "Service Acct",
        str_at(pod, "/spec/serviceAccountName"),
    );
    line(&mut out, "Start Time", str_at(pod, "/status/startTime"));
    line(&mut out, "Status", &status);
    line(&mut out, "Message", str_at(pod, "/status/message"));
    line(&mut out, "IP", str_at(pod, "/status/podIP"));
    let list = |pointer: &str| {
        pod.pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    containers(
        &mut out,
        "Init Containers",
        &list("/spec/initContainers"),
        &list("/status/initContainerStatuses"),
    );
    containers(
        &mut out,
        "Containers",
        &list("/spec/containers"),
        &list("/status/containerStatuses"),
    );
    let conditions = list("/status/conditions");
    if !conditions.is_empty() {
        out.push_str("Conditions:\n  Type              Status\n");
        for c in &conditions {
            out.push_str(&format!(
                "  {:<18}{}\n",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or("")
            ));
        }
    }
    if events.is_empty() {
        out.push_str("Events:       <none>\n");
        return out;
    }
    let mut sorted: Vec<&&Value> = events.iter().collect();
    sorted.sort_by_key(|e| str_at(e, "/lastTimestamp").to_string());
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|e| {
            let count = e["count"].as_u64().unwrap_or(1);
            let seen = age(str_at(e, "/lastTimestamp"), now);
            let seen = if count > 1 {
                format!(
                    "{seen} (x{count} over {})",
                    age(str_at(e, "/firstTimestamp"), now)
                )
            } else {
                seen
            };
            vec![
                str_at(e, "/type").to_string(),
                str_at(e, "/reason").to_string(),
                seen,
                str_at(e, "/source/component").to_string(),
                str_at(e, "/message").to_string(),
            ]
        })
        .collect();
    out.push_str("Events:\n");
    for line in crate::table::render(&["Type", "Reason", "Age", "From", "Message"], &rows).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_crashing_pod_says_how_its_container_ended_and_what_happened() {
        let now = humantime::parse_rfc3339("2026-12-02T10:00:30Z").unwrap();
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "command": ["sh", "-c", "exit 3"]}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{
                    "name": "app", "ready": false, "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "Back-off"}},
                    "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
                }],
            },
        });
        let backoff = json!({
            "type": "Warning", "reason": "BackOff", "count": 2,
            "firstTimestamp": "2026-12-02T10:00:00Z", "lastTimestamp": "2026-12-02T10:00:20Z",
            "source": {"component": "kubelet"},
            "message": "Back-off restarting failed container app (exit code 3)",
        });
        let text = describe_pod(&pod, &[&backoff], now);
        for want in [
            "Name:         web-1",
            "Status:       CrashLoopBackOff",
            "IP:           10.0.0.5",
            "    Command:        sh -c exit 3",
            "    State:          Waiting",
            "      Reason:       CrashLoopBackOff",
            "    Last State:     Terminated",
            "      Exit Code:    3",
            "    Restart Count:  2",
            "  Ready             False",
            "Warning",
            "10s (x2 over 30s)",
            "Back-off restarting failed container app (exit code 3)",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        let quiet = describe_pod(&pod, &[], now);
        assert!(quiet.contains("Events:       <none>"), "{quiet}");
    }
}
