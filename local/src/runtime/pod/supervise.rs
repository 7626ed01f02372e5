//! A container's process as the kubelet keeps it: started, logged,
//! probed, stopped with a grace period, and restarted by the pod's policy
//! with Kubernetes' crash back-off. Init containers run to completion.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Container;
use tokio_util::sync::CancellationToken;

use super::{
    PodRun, Slot,
    probing::probe_loop,
    process::{Running, exit_file, pid_file, spawn},
};
use crate::{
    process_record::Record,
    runtime::{cgroups, status::State},
};

/// Runs an init container until it succeeds; false when the pod stops
/// (or gives up, with restartPolicy Never) first.
pub(super) async fn run_to_completion(
    run: &Arc<PodRun>,
    index: usize,
    container: &Container,
    restart: &str,
    cancel: &CancellationToken,
) -> bool {
    let slot = Slot::Init(index);
    let mut backoff = Backoff::default();
    loop {
        let Some(launch) = run.launch_or_report(slot, container) else {
            cancel.cancelled().await;
            return false;
        };
        let exit_file = exit_file(&run.dir, &container.name);
        let exit = match spawn(&launch, &run.shared.bin_dir, &run.dir, &container.name) {
            Ok(mut process) => {
                run.started(slot, container);
                tokio::select! {
                    code = process.wait(&exit_file) => code,
                    () = cancel.cancelled() => {
                        process.stop(run.grace(), &exit_file).await;
                        return false;
                    }
                }
            }
            Err(e) => {
                run.event(
                    true,
                    "Failed",
                    &format!("Error: cannot start container {}: {e}", container.name),
                );
                run.update(slot, |c| {
                    c.state = State::Waiting {
                        reason: "RunContainerError".into(),
                        message: e.to_string(),
                    }
                });
                -1
            }
        };
        let _ = std::fs::remove_file(pid_file(&run.dir, &container.name));
        if exit == 0 {
            run.update(slot, |c| {
                c.state = State::Terminated {
                    exit_code: 0,
                    reason: "Completed".into(),
                };
                c.ready = true;
            });
            return true;
        }
        let message = format!(
            "Back-off restarting failed init container {} (exit code {exit})",
            container.name
        );
        run.event(true, "BackOff", &message);
        run.update(slot, |c| {
            c.restarts += 1;
            c.last_state = Some(State::Terminated {
                exit_code: exit,
                reason: "Error".into(),
            });
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message,
            };
        });
        if restart == "Never" {
            run.set_phase(
                "Failed",
                Some(format!("init container {} failed", container.name)),
            );
            cancel.cancelled().await;
            return false;
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(backoff.next(Duration::ZERO)) => {}
        }
    }
}

/// Keeps a long-running container up: start (or adopt the process an
/// earlier daemon left running), probe, restart by policy.
pub(super) async fn supervise(
    run: Arc<PodRun>,
    slot: Slot,
    container: Container,
    restart: String,
    mut adopt: Option<Record>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let exit_file = exit_file(&run.dir, &container.name);
    loop {
        let began = Instant::now();
        let (started, cgroups) = match adopt.take() {
            // Dead by now: its exit file says how it ended, below.
            Some(record) => (
                Ok((Running::Adopted(record), true)),
                run.existing_cgroups(&container),
            ),
            None => {
                let Some(mut launch) = run.launch_or_report(slot, &container) else {
                    cancel.cancelled().await;
                    return;
                };
                let cgroups = run.limit(slot, &container);
                launch.sandbox.cgroups.clone_from(&cgroups);
                let started = spawn(&launch, &run.shared.bin_dir, &run.dir, &container.name)
                    .map(|process| (process, false));
                (started, cgroups)
            }
        };
        let exit = match started {
            Ok((mut process, adopted)) => {
                if !adopted {
                    run.started(slot, &container);
                    run.update(slot, |c| {
                        c.started = container.startup_probe.is_none();
                        c.ready = false;
                    });
                }
                tokio::select! {
                    code = process.wait(&exit_file) => code,
                    reason = probe_loop(&run, slot, &container, adopted) => {
                        tracing::info!(container = %container.name, %reason, "restarting");
                        run.event(false, "Killing", &format!(
                            "Container {} {reason}, will be restarted", container.name
                        ));
                        process.stop(run.grace(), &exit_file).await;
                        137
                    }
                    () = cancel.cancelled() => {
                        process.stop(run.grace(), &exit_file).await;
                        cgroups::remove(&cgroups);
                        let _ = std::fs::remove_file(pid_file(&run.dir, &container.name));
                        run.update(slot, |c| {
                            c.ready = false;
                            c.state = State::Terminated { exit_code: 0, reason: "Completed".into() };
                        });
                        return;
                    }
                }
            }
            Err(e) => {
                run.event(
                    true,
                    "Failed",
                    &format!("Error: cannot start container {}: {e}", container.name),
                );
                run.update(slot, |c| {
                    c.state = State::Waiting {
                        reason: "RunContainerError".into(),
                        message: e.to_string(),
                    }
                });
                -1
            }
        };
        let _ = std::fs::remove_file(pid_file(&run.dir, &container.name));
        // The kernel's memory-limit kill, as the kubelet reports it.
        let oom_killed = cgroups::read_oom_kills(&cgroups) > 0;
        cgroups::remove(&cgroups);
        let reason = match exit {
            0 => "Completed",
            _ if oom_killed => "OOMKilled",
            _ => "Error",
        };
        run.update(slot, |c| {
            c.ready = false;
            c.state = State::Terminated {
                exit_code: exit,
                reason: reason.into(),
            };
        });
        // Done for good: the pod sees the task end (and may finish).
        if restart == "Never" || (restart == "OnFailure" && exit == 0) {
            return;
        }
        let message = format!(
            "Back-off restarting failed container {} (exit code {exit})",
            container.name
        );
        run.event(true, "BackOff", &message);
        run.update(slot, |c| {
            c.restarts += 1;
            c.last_state = Some(std::mem::replace(
                &mut c.state,
                State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message,
                },
            ));
        });
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff.next(began.elapsed())) => {}
        }
    }
}

/// Kubernetes' crash back-off: 1 s doubling to 30 s; a run of 10 s or
/// more resets it.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_secs(1))
    }
}

impl Backoff {
    fn next(&mut self, ran: Duration) -> Duration {
        if ran >= Duration::from_secs(10) {
            self.0 = Duration::from_secs(1);
        }
        let wait = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next(Duration::ZERO).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.next(Duration::from_secs(11)).as_secs(), 1);
    }
}
