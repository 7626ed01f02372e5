//! What happened to a pod, as the kubelet records it: core/v1 Events,
//! one per reason and message (a repeat counts instead of adding one),
//! the last few kept. `osm local get events` and `describe pod` read them.

use serde_json::{Value, json};

/// Events a pod keeps (the oldest go first).
const KEPT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
    pub count: u32,
    pub first: String,
    pub last: String,
    /// Its name's suffix: stable while the event is kept.
    pub seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventLog {
    events: Vec<Event>,
    next_seq: u64,
}

impl EventLog {
    /// Records an event at `now` (RFC 3339): a repeat of the same reason
    /// and message is counted on the existing one.
    pub fn record(&mut self, warning: bool, reason: &str, message: &str, now: &str) {
        if let Some(e) = self
            .events
            .iter_mut()
            .find(|e| e.reason == reason && e.message == message)
        {
            e.count += 1;
            e.last = now.to_string();
            e.warning = warning;
            return;
        }
        if self.events.len() == KEPT {
            self.events.remove(0);
        }
        self.events.push(Event {
            warning,
            reason: reason.to_string(),
            message: message.to_string(),
            count: 1,
            first: now.to_string(),
            last: now.to_string(),
            seq: self.next_seq,
        });
        self.next_seq += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }
}

/// The pod's events as the API objects `get events` lists.
pub fn event_objects(namespace: &str, pod: &str, uid: &str, log: &EventLog) -> Vec<Value> {
    log.iter()
        .map(|e| {
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": format!("{pod}.{:x}", e.seq),
                    "namespace": namespace,
                    "creationTimestamp": e.first,
                },
                "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "uid": uid},
                "type": if e.warning { "Warning" } else { "Normal" },
                "reason": e.reason,
                "message": e.message,
                "count": e.count,
                "firstTimestamp": e.first,
                "lastTimestamp": e.last,
                "source": {"component": "kubelet"},
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_the_oldest_go_first() {
        let mut log = EventLog::default();
        log.record(false, "Started", "Started container app", "t1");
        log.record(true, "BackOff", "back-off", "t2");
        log.record(true, "BackOff", "back-off", "t3");
        let got: Vec<(&str, u32, &str, &str)> = log
            .iter()
            .map(|e| {
                (
                    e.reason.as_str(),
                    e.count,
                    e.first.as_str(),
                    e.last.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [("Started", 1, "t1", "t1"), ("BackOff", 2, "t2", "t3")]
        );
        for i in 0..KEPT {
            log.record(true, "Unhealthy", &format!("probe {i}"), "t4");
        }
        assert_eq!(log.iter().count(), KEPT);
        assert!(
            log.iter().all(|e| e.reason == "Unhealthy"),
            "oldest dropped"
        );
        let objects = event_objects("shop", "web-1", "u1", &log);
        assert_eq!(objects[0]["metadata"]["name"], "web-1.2");
        assert_eq!(objects[0]["type"], "Warning");
        assert_eq!(objects[0]["involvedObject"]["name"], "web-1");
    }
}
