//! A running container's probes: startup first, then readiness (which
//! only marks it ready or not) and liveness (whose failure restarts it),
//! each on its own period and thresholds.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;

use super::{PodRun, Slot};
use crate::runtime::probes;

/// Startup, then readiness and liveness probes; returns only when the
/// container must be restarted (a failed startup or liveness probe). An
/// adopted container (started before the daemon restarted) has passed its
/// startup probe and initial delays already.
pub(super) async fn probe_loop(
    run: &PodRun,
    slot: Slot,
    container: &Container,
    adopted: bool,
) -> String {
    let ip = run.ip;
    if let Some(startup) = container.startup_probe.as_ref().filter(|_| !adopted) {
        let t = probes::timing(startup);
        tokio::time::sleep(t.initial_delay).await;
        let mut failures = 0;
        loop {
            match probes::attempt(startup, container, ip, || run.exec_in(container)).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    run.event(true, "Unhealthy", &format!("Startup probe failed: {e}"));
                    if failures >= t.failure_threshold {
                        return "failed startup probe".into();
                    }
                }
            }
            tokio::time::sleep(t.period).await;
        }
    }
    run.update(slot, |c| c.started = true);
    let readiness = container.readiness_probe.as_ref();
    let liveness = container.liveness_probe.as_ref();
    if readiness.is_none() {
        run.update(slot, |c| c.ready = true);
    }
    if readiness.is_none() && liveness.is_none() {
        return std::future::pending().await;
    }
    let started = Instant::now();
    let delay = |p| {
        if adopted {
            Duration::ZERO
        } else {
            probes::timing(p).initial_delay
        }
    };
    let mut next_readiness = readiness.map(delay);
    let mut next_liveness = liveness.map(delay);
    let (mut ok_streak, mut fail_streak, mut live_fails) = (0u32, 0u32, 0u32);
    loop {
        let due = [next_readiness, next_liveness]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(3600));
        tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        let now = started.elapsed();
        if let (Some(p), Some(at)) = (readiness, next_readiness)
            && at <= now
        {
            let t = probes::timing(p);
            match probes::attempt(p, container, ip, || run.exec_in(container)).await {
                Ok(()) => {
                    ok_streak += 1;
                    fail_streak = 0;
                    if ok_streak >= t.success_threshold {
                        run.update(slot, |c| c.ready = true);
                    }
                }
                Err(e) => {
                    run.event(true, "Unhealthy", &format!("Readiness probe failed: {e}"));
                    fail_streak += 1;
                    ok_streak = 0;
                    if fail_streak >= t.failure_threshold {
                        run.update(slot, |c| c.ready = false);
                    }
                }
            }
            next_readiness = Some(now + t.period);
        }
        if let (Some(p), Some(at)) = (liveness, next_liveness)
            && at <= now
        {
            let t = probes::timing(p);
            match probes::attempt(p, container, ip, || run.exec_in(container)).await {
                Ok(()) => live_fails = 0,
                Err(e) => {
                    live_fails += 1;
                    run.event(true, "Unhealthy", &format!("Liveness probe failed: {e}"));
                    if live_fails >= t.failure_threshold {
                        return "failed liveness probe".into();
                    }
                }
            }
            next_liveness = Some(now + t.period);
        }
    }
}
