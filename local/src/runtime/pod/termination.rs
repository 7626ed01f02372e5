//! A deleted pod's termination, in the kubelet's and the endpoints
//! controller's order: the pod has already left its Services' endpoints
//! (its object is gone, so the runtime's rules and the controller's next
//! push drop it); its apps keep serving while peers learn that, then stop;
//! the sidecars stop last, so an app's last answers still go out through
//! its proxy.

use std::time::Duration;

/// How long a deleted pod's apps keep serving, at most, while its peers
/// learn it left their endpoints (the controller reads the store every
/// 200 ms and pushes at once; proxies that were away reconnect within 1 s).
pub const ENDPOINTS_PROPAGATION: Duration = Duration::from_secs(2);

/// One step of a termination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Wait(Duration),
    StopApps,
    StopSidecars,
}

/// The steps for a pod whose grace period is `grace` (pure): the wait is
/// bounded by the grace period, and skipped when no app still runs.
pub fn steps(grace: Duration, apps_running: bool) -> Vec<Step> {
    let wait = grace.min(ENDPOINTS_PROPAGATION);
    let mut steps = Vec::with_capacity(3);
    if apps_running && !wait.is_zero() {
        steps.push(Step::Wait(wait));
    }
    steps.extend([Step::StopApps, Step::StopSidecars]);
    steps
}

#[cfg(test)]
mod tests {
    use super::{Step::*, *};

    #[test]
    fn apps_serve_while_peers_learn_then_stop_before_their_sidecars() {
        let s = Duration::from_secs;
        let table = [
            (s(30), true, vec![Wait(s(2)), StopApps, StopSidecars]),
            (s(1), true, vec![Wait(s(1)), StopApps, StopSidecars]),
            (s(0), true, vec![StopApps, StopSidecars]),
            (s(30), false, vec![StopApps, StopSidecars]),
        ];
        for (grace, apps_running, expected) in table {
            assert_eq!(
                steps(grace, apps_running),
                expected,
                "grace {grace:?}, apps running: {apps_running}"
            );
        }
    }
}
