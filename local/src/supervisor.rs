//! The daemon's control-plane children (controller, injector, Prometheus):
//! each is started again when it exits. A child that ran a while is
//! started again at once (a crash or a `kill -9` costs only its start-up:
//! proxies and pods wait on the controller while it is down); one that
//! keeps exiting soon after it starts waits longer each time, as the
//! kubelet's crash-loop back-off does.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A run at least this long was not a crash loop.
const STEADY_RUN: Duration = Duration::from_secs(10);
/// The first wait of a crash loop, doubled each time up to `MAX_WAIT`.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(10);

/// How long to wait before starting a child again (pure): at once after a
/// steady run, else the crash-loop back-off after `previous`.
pub fn restart_wait(previous: Duration, ran_for: Duration) -> Duration {
    if ran_for >= STEADY_RUN {
        Duration::ZERO
    } else if previous.is_zero() {
        FIRST_WAIT
    } else {
        (previous * 2).min(MAX_WAIT)
    }
}

/// A control-plane process, restarted when it exits.
pub struct Child {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub pid_file: PathBuf,
    /// Told when its process started (None while none runs), for those
    /// who must know it was replaced: rollouts wait on a new controller.
    pub started: Option<watch::Sender<Option<Instant>>>,
}

impl Child {
    pub async fn keep_running(self, stop: CancellationToken) {
        let mut wait = Duration::ZERO;
        loop {
            let Some(ran_for) = self.run_once(&stop).await else {
                return;
            };
            wait = restart_wait(wait, ran_for);
            tracing::warn!(child = self.name, ran_for = ?ran_for, restart_in = ?wait, "exited; restarting");
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Runs the child once: how long it ran, or None when the daemon is
    /// stopping (the child was stopped) or its log cannot be opened.
    async fn run_once(&self, stop: &CancellationToken) -> Option<Duration> {
        let log = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(child = self.name, error = %e, "cannot open its log");
                return None;
            }
        };
        let started = Instant::now();
        let spawned = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .stdout(
                log.try_clone()
                    .map(Into::into)
                    .unwrap_or_else(|_| std::process::Stdio::null()),
            )
            .stderr(log)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(child = self.name, program = %self.program.display(), error = %e, "cannot start");
                return Some(started.elapsed());
            }
        };
        if let Some(pid) = child.id() {
            let _ = std::fs::write(&self.pid_file, pid.to_string());
        }
        if let Some(tell) = &self.started {
            tell.send_replace(Some(started));
        }
        tracing::info!(child = self.name, pid = ?child.id(), "started");
        tokio::select! {
            status = child.wait() => {
                if let Some(tell) = &self.started {
                    tell.send_replace(None);
                }
                tracing::warn!(child = self.name, ?status, "exited");
                Some(started.elapsed())
            }
            () = stop.cancelled() => {
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                let _ = std::fs::remove_file(&self.pid_file);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_child_restarts_at_once_and_a_crash_loop_backs_off() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // (previous wait, ran for, next wait)
        let table = [
            (ms(0), s(600), ms(0)),
            (ms(0), s(10), ms(0)),
            (s(10), s(29), ms(0)),
            (ms(0), ms(200), ms(500)),
            (ms(500), s(1), s(1)),
            (s(4), s(9), s(8)),
            (s(8), ms(1), s(10)),
            (s(10), ms(1), s(10)),
        ];
        for (previous, ran_for, next) in table {
            assert_eq!(
                restart_wait(previous, ran_for),
                next,
                "after {previous:?} and a run of {ran_for:?}"
            );
        }
    }
}
