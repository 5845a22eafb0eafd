//! Docker's event stream: every action on a container or image, fanned out to live
//! subscribers and kept (the last 1024) for `since`/`until` queries.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

const KEEP: usize = 1024;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event as `/events` sends it (with the pre-1.22 `status`/`id`/`from` fields too).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

pub struct Events {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(KEEP).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let legacy = kind == "container" || kind == "image";
        let ev = Event {
            kind: kind.into(),
            action: action.into(),
            scope: "local".into(),
            time: now.as_secs() as i64,
            time_nano: now.as_nanos() as i64,
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: attributes.get("image").cloned().filter(|_| kind == "container"),
            actor: Actor {
                id: id.into(),
                attributes,
            },
        };
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.push_back(ev.clone());
        while recent.len() > KEEP {
            recent.pop_front();
        }
        // Subscribe under the same lock so nobody misses or doubles an event.
        let _ = self.tx.send(ev);
    }

    /// Past events (oldest first) and a receiver for every later one.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        (recent.iter().cloned().collect(), self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_and_live() {
        let ev = Events::default();
        ev.emit(
            "container",
            "create",
            "abc",
            BTreeMap::from([("image".into(), "busybox".into())]),
        );
        let (past, mut rx) = ev.subscribe();
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].from.as_deref(), Some("busybox"));
        ev.emit("container", "start", "abc", BTreeMap::new());
        assert_eq!(rx.try_recv().unwrap().action, "start");
    }
}
