//! Containers' `resources.limits` (memory and CPU) enforced with cgroups,
//! as the kubelet does: v2 where the host has it with the memory and CPU
//! controllers, else v1's memory and cpu hierarchies. Each container gets
//! a cgroup of its own under `osm-local.<instance>`; its process joins it
//! before it becomes the container's program, so everything it forks is
//! counted. A container killed by the kernel for its memory limit ends
//! `OOMKilled`. A host with neither gets no enforcement, and `get pods
//! -o wide` says so.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

/// What a container is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpu_millis: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.memory_bytes.is_none() && self.cpu_millis.is_none()
    }
}

/// A Kubernetes quantity (`128Mi`, `1G`, `500m`, `0.5`, `1e3`) as a number
/// of units; `milli` counts thousandths (for CPU).
pub fn parse_quantity(text: &str, milli: bool) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a quantity (such as 128Mi, 1G, 500m, 0.5)");
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (number, suffix) = match suffix.strip_prefix(['e', 'E']) {
        Some(exp) if !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit() || c == '-') => {
            (text, "")
        }
        _ => (number, suffix),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        _ => return Err(bad()),
    };
    let units = value * scale * if milli { 1000.0 } else { 1.0 };
    if !units.is_finite() || units < 0.0 || units > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(units.ceil() as u64)
}

/// A container's limits, or what is wrong with them.
pub fn limits_of(container: &Container) -> Result<Limits, String> {
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let get = |name: &str, milli: bool| {
        limits
            .and_then(|l| l.get(name))
            .map(|q| {
                parse_quantity(&q.0, milli)
                    .map_err(|e| format!("resources.limits.{name} of {}: {e}", container.name))
            })
            .transpose()
    };
    Ok(Limits {
        memory_bytes: get("memory", false)?,
        cpu_millis: get("cpu", true)?,
    })
}

/// Where containers' cgroups go on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy: one directory per container.
    V2(PathBuf),
    /// v1: the memory hierarchy's directory and the cpu one's.
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
}

/// This process's cgroup in each hierarchy, from /proc/self/cgroup (pure):
/// (the v2 path, the v1 memory path, the v1 cpu path).
pub fn own_cgroups(text: &str) -> (Option<String>, Option<String>, Option<String>) {
    let (mut v2, mut memory, mut cpu) = (None, None, None);
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            v2 = Some(path.to_string());
        }
        for c in controllers.split(',') {
            match c {
                "memory" => memory = Some(path.to_string()),
                "cpu" => cpu = Some(path.to_string()),
                _ => {}
            }
        }
    }
    (v2, memory, cpu)
}

const ROOT: &str = "/sys/fs/cgroup";

fn under(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

impl Hierarchy {
    /// The host's hierarchy for this instance's containers, made ready
    /// (controllers enabled), or why there is none.
    pub fn detect(instance: &str) -> Result<Self, String> {
        let name = format!("osm-local.{instance}");
        let root = Path::new(ROOT);
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers"));
        if let Ok(list) = controllers {
            // v2 only: the root (exempt from "no processes in inner
            // cgroups") holds our parent, which holds no process.
            let has = |c: &str| list.split_whitespace().any(|x| x == c);
            if !(has("memory") && has("cpu")) {
                return Err("cgroup v2 without the memory and cpu controllers".into());
            }
            let base = root.join(name);
            enable(&root.join("cgroup.subtree_control"))?;
            std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
            enable(&base.join("cgroup.subtree_control"))?;
            return Ok(Self::V2(base));
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let (_, memory, cpu) = own_cgroups(&own);
        let memory_mount = root.join("memory");
        let memory = memory
            .filter(|_| memory_mount.join("cgroup.procs").exists())
            .map(|p| under(&memory_mount, &p).join(&name))
            .ok_or("no cgroup memory controller (neither v2 nor v1)")?;
        std::fs::create_dir_all(&memory).map_err(|e| format!("{}: {e}", memory.display()))?;
        let cpu_mount = root.join("cpu");
        let cpu = cpu
            .filter(|_| cpu_mount.join("cgroup.procs").exists())
            .map(|p| under(&cpu_mount, &p).join(&name))
            .filter(|dir| std::fs::create_dir_all(dir).is_ok());
        Ok(Self::V1 { memory, cpu })
    }

    /// A container's cgroup directories that exist (one an earlier daemon
    /// made for a container it left running).
    pub fn existing(&self, leaf: &str) -> Vec<PathBuf> {
        let dirs = match self {
            Self::V2(base) => vec![base.join(leaf)],
            Self::V1 { memory, cpu } => std::iter::once(memory)
                .chain(cpu.as_ref())
                .map(|d| d.join(leaf))
                .collect(),
        };
        dirs.into_iter().filter(|d| d.is_dir()).collect()
    }

    /// Makes a container's cgroups with its limits: the directories its
    /// process joins.
    pub fn create(&self, leaf: &str, limits: Limits) -> Result<Vec<PathBuf>, String> {
        let write = |dir: &Path, file: &str, value: String| {
            std::fs::write(dir.join(file), &value)
                .map_err(|e| format!("{}/{file} = {value}: {e}", dir.display()))
        };
        let make = |dir: PathBuf| {
            std::fs::create_dir_all(&dir)
                .map(|()| dir.clone())
                .map_err(|e| format!("{}: {e}", dir.display()))
        };
        match self {
            Self::V2(base) => {
                let dir = make(base.join(leaf))?;
                if let Some(bytes) = limits.memory_bytes {
                    write(&dir, "memory.max", bytes.to_string())?;
                    // No swap: the limit is what the container has.
                    let _ = write(&dir, "memory.swap.max", "0".into());
                }
                if let Some(millis) = limits.cpu_millis {
                    write(
                        &dir,
                        "cpu.max",
                        format!("{} 100000", (millis * 100).max(1000)),
                    )?;
                }
                Ok(vec![dir])
            }
            Self::V1 { memory, cpu } => {
                let mut dirs = vec![make(memory.join(leaf))?];
                if let Some(bytes) = limits.memory_bytes {
                    write(&dirs[0], "memory.limit_in_bytes", bytes.to_string())?;
                }
                if let Some(cpu) = cpu {
                    let dir = make(cpu.join(leaf))?;
                    if let Some(millis) = limits.cpu_millis {
                        write(&dir, "cpu.cfs_period_us", "100000".into())?;
                        write(
                            &dir,
                            "cpu.cfs_quota_us",
                            (millis * 100).max(1000).to_string(),
                        )?;
                    }
                    dirs.push(dir);
                } else if limits.cpu_millis.is_some() {
                    return Err("no cgroup cpu controller for the CPU limit".into());
                }
                Ok(dirs)
            }
        }
    }
}

fn enable(subtree_control: &Path) -> Result<(), String> {
    let now = std::fs::read_to_string(subtree_control).unwrap_or_default();
    if ["memory", "cpu"]
        .iter()
        .all(|c| now.split_whitespace().any(|x| x == *c))
    {
        return Ok(());
    }
    std::fs::write(subtree_control, "+memory +cpu").map_err(|e| {
        format!(
            "cannot enable memory and cpu in {}: {e}",
            subtree_control.display()
        )
    })
}

/// How many times the kernel killed a process of these cgroups for memory
/// (v2 `memory.events`, v1 `memory.oom_control`; pure over their text).
pub fn oom_kills(files: &[String]) -> u64 {
    files
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| line.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// `oom_kills` of a container's cgroups on the host.
pub fn read_oom_kills(dirs: &[PathBuf]) -> u64 {
    let files: Vec<String> = dirs
        .iter()
        .flat_map(|d| [d.join("memory.events"), d.join("memory.oom_control")])
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    oom_kills(&files)
}

/// Removes a container's cgroups (empty once it ended).
pub fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        let cases: [(&str, bool, Result<u64, ()>); 12] = [
            ("128Mi", false, Ok(134_217_728)),
            ("1G", false, Ok(1_000_000_000)),
            ("1Gi", false, Ok(1_073_741_824)),
            ("512k", false, Ok(512_000)),
            ("1e3", false, Ok(1000)),
            ("100", false, Ok(100)),
            ("500m", true, Ok(500)),
            ("0.5", true, Ok(500)),
            ("2", true, Ok(2000)),
            ("1.5Gi", false, Ok(1_610_612_736)),
            ("12Q", false, Err(())),
            ("-1", false, Err(())),
        ];
        for (text, milli, want) in cases {
            assert_eq!(parse_quantity(text, milli).map_err(|_| ()), want, "{text}");
        }
        assert_eq!(parse_quantity("", false).map_err(|_| ()), Err(()));
    }

    #[test]
    fn a_containers_limits_and_what_is_wrong_with_them() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}, "requests": {"cpu": "9"}}
        }))
        .unwrap();
        assert_eq!(
            limits_of(&c),
            Ok(Limits {
                memory_bytes: Some(64 << 20),
                cpu_millis: Some(250)
            })
        );
        let none: Container = serde_json::from_value(serde_json::json!({"name": "app"})).unwrap();
        assert!(limits_of(&none).unwrap().is_empty());
        let bad: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "resources": {"limits": {"memory": "lots"}}
        }))
        .unwrap();
        let err = limits_of(&bad).unwrap_err();
        assert!(
            err.contains("resources.limits.memory of app") && err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn own_cgroups_are_read_from_both_hierarchies() {
        let hybrid = "12:pids:/\n4:memory:/process_api/2ef\n1:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(
            own_cgroups(hybrid),
            (
                Some("/".into()),
                Some("/process_api/2ef".into()),
                Some("/x".into())
            )
        );
        assert_eq!(
            own_cgroups("0::/user.slice/a.scope\n"),
            (Some("/user.slice/a.scope".into()), None, None)
        );
    }

    #[test]
    fn oom_kills_are_counted_from_either_version() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n".to_string();
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n".to_string();
        assert_eq!(oom_kills(&[v2]), 1);
        assert_eq!(oom_kills(&[v1]), 2);
        assert_eq!(oom_kills(&["oom_kill_disable 0\n".into()]), 0);
        assert_eq!(oom_kills(&[]), 0);
    }
}
