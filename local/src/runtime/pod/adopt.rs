//! Pods an earlier daemon started, kept by the next one (after a crash or
//! an upgrade) as a kubelet keeps its pods across restarts: the network
//! namespace, volumes and container processes stay; the new daemon reads
//! back each pod's status and supervises its processes from where they
//! are. A pod that cannot be kept (say why) starts over.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::process::pid_file;
use crate::process_record::Record;

/// What a pod's directory says of the pod that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub uid: String,
    pub ip: Ipv4Addr,
}

fn record_file(pod_dir: &Path) -> PathBuf {
    pod_dir.join("pod.json")
}

pub(super) fn write_record(pod_dir: &Path, record: &PodRecord) -> std::io::Result<()> {
    let text = serde_json::to_string(record).map_err(std::io::Error::other)?;
    std::fs::write(record_file(pod_dir), text)
}

fn read_record(pod_dir: &Path) -> Option<PodRecord> {
    serde_json::from_slice(&std::fs::read(record_file(pod_dir)).ok()?).ok()
}

/// How a new daemon takes a pod over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// Running: its containers' processes as recorded (a container without
    /// one, say in crash back-off, is started again).
    Running { processes: BTreeMap<String, Record> },
    /// Done (a Job's pod): nothing to run, its status stands.
    Finished,
}

/// A pod to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub ip: Ipv4Addr,
    /// The status the earlier daemon wrote.
    pub status: Value,
    pub takeover: Takeover,
}

/// Whether a stored pod can be kept, and how (pure): its directory must be
/// this pod's (same uid), and a running pod must still have its network
/// namespace.
pub fn decide(
    pod: &Value,
    record: Option<&PodRecord>,
    netns_exists: bool,
    processes: BTreeMap<String, Record>,
) -> Result<Adoption, String> {
    let record = record.ok_or("no record of it in its directory")?;
    if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(record.uid.as_str()) {
        return Err("its directory belongs to an earlier pod of that name".into());
    }
    let status = pod.get("status").cloned().unwrap_or(Value::Null);
    let takeover = match status.get("phase").and_then(Value::as_str) {
        Some("Running") if !netns_exists => {
            return Err("its network namespace is gone".into());
        }
        Some("Running") => Takeover::Running { processes },
        Some("Succeeded" | "Failed") => Takeover::Finished,
        phase => {
            return Err(format!(
                "it was {} when the daemon stopped",
                phase.unwrap_or("not started")
            ));
        }
    };
    Ok(Adoption {
        ip: record.ip,
        status,
        takeover,
    })
}

/// Reads what `decide` needs for a stored pod from its directory and the
/// host.
pub fn examine(pod: &Value, pod_dir: &Path, netns: &str) -> Result<Adoption, String> {
    let names = ["/spec/initContainers", "/spec/containers"]
        .into_iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str));
    let processes = names
        .filter_map(|name| Some((name.to_string(), Record::read(&pid_file(pod_dir, name))?)))
        .collect();
    decide(
        pod,
        read_record(pod_dir).as_ref(),
        Path::new("/run/netns").join(netns).exists(),
        processes,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(uid: &str, phase: Option<&str>) -> Value {
        let mut pod = json!({"metadata": {"name": "web", "uid": uid}});
        if let Some(phase) = phase {
            pod["status"] = json!({"phase": phase, "podIP": "10.0.0.9"});
        }
        pod
    }

    #[test]
    fn which_pods_a_new_daemon_keeps() {
        let record = PodRecord {
            uid: "u1".into(),
            ip: "10.0.0.9".parse().unwrap(),
        };
        let procs = BTreeMap::from([("app".to_string(), Record { pid: 77, start: 5 })]);
        let running = Takeover::Running {
            processes: procs.clone(),
        };
        type Case<'a> = (
            Value,
            Option<&'a PodRecord>,
            bool,
            Result<Takeover, &'a str>,
        );
        let cases: [Case<'_>; 7] = [
            (pod("u1", Some("Running")), Some(&record), true, Ok(running)),
            (
                pod("u1", Some("Succeeded")),
                Some(&record),
                false,
                Ok(Takeover::Finished),
            ),
            (
                pod("u1", Some("Failed")),
                Some(&record),
                false,
                Ok(Takeover::Finished),
            ),
            (
                pod("u1", Some("Running")),
                None,
                true,
                Err("no record of it in its directory"),
            ),
            (
                pod("u2", Some("Running")),
                Some(&record),
                true,
                Err("its directory belongs to an earlier pod of that name"),
            ),
            (
                pod("u1", Some("Running")),
                Some(&record),
                false,
                Err("its network namespace is gone"),
            ),
            (
                pod("u1", Some("Pending")),
                Some(&record),
                true,
                Err("it was Pending when the daemon stopped"),
            ),
        ];
        for (pod, record, netns, want) in cases {
            let got = decide(&pod, record, netns, procs.clone());
            match (got, want) {
                (Ok(a), Ok(takeover)) => {
                    assert_eq!(a.takeover, takeover, "{pod}");
                    assert_eq!(a.ip, record.unwrap().ip);
                    assert_eq!(a.status, pod["status"]);
                }
                (Err(e), Err(why)) => assert_eq!(e, why, "{pod}"),
                (got, want) => panic!("{pod}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_pod_directory_is_examined_by_its_record_and_pid_files() {
        let dir = tempfile::tempdir().unwrap();
        let pod = json!({
            "metadata": {"name": "web", "uid": "u1"},
            "spec": {"initContainers": [{"name": "proxy"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Succeeded"},
        });
        assert!(examine(&pod, dir.path(), "no-such-netns").is_err());
        write_record(
            dir.path(),
            &PodRecord {
                uid: "u1".into(),
                ip: "10.0.0.3".parse().unwrap(),
            },
        )
        .unwrap();
        std::fs::write(pid_file(dir.path(), "app"), "4242 17\n").unwrap();
        std::fs::write(pid_file(dir.path(), "proxy"), "4243\n").unwrap();
        let a = examine(&pod, dir.path(), "no-such-netns").unwrap();
        assert_eq!(
            (a.ip, a.takeover),
            ("10.0.0.3".parse().unwrap(), Takeover::Finished)
        );
        let mut running = pod.clone();
        running["status"]["phase"] = json!("Running");
        assert_eq!(
            examine(&running, dir.path(), "no-such-netns").unwrap_err(),
            "its network namespace is gone"
        );
    }
}
