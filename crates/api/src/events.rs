//! `GET /events`: what happened to images and containers, as Docker's event messages. Events are published
//! by the services to a broadcast channel; the last [`KEEP`] are kept for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use tokio::sync::{broadcast, mpsc};

use crate::body::{response, ApiBody};
use crate::errors::ApiError;
use crate::query::Query;

/// Events kept for `since`.
const KEEP: usize = 1024;

/// One event, in Docker's message shape.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    /// The pre-1.22 fields, which the docker CLI still shows.
    pub status: String,
    pub id: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    recent: Mutex<VecDeque<Arc<Event>>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(256).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    /// Publishes an image event; `name` becomes the `name` attribute when not empty.
    pub fn image(&self, action: &str, id: &str, name: &str) {
        let mut attributes = BTreeMap::new();
        if !name.is_empty() {
            attributes.insert("name".to_string(), name.to_string());
        }
        self.publish(Event::new("image", action, id, attributes));
    }

    pub fn publish(&self, e: Event) {
        let e = Arc::new(e);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back(e.clone());
        // Sent under the lock: a subscriber sees each event once, from history or live.
        let _ = self.tx.send(e);
    }

    fn subscribe(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        (recent.iter().cloned().collect(), self.tx.subscribe())
    }
}

impl Event {
    pub fn new(
        kind: &'static str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let time_nano = now_nanos();
        Event {
            kind,
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local",
            time: time_nano / 1_000_000_000,
            time_nano,
            status: action.into(),
            id: id.into(),
        }
    }
}

/// Docker's time parameters: unix seconds, maybe with a fraction ("1700000000.5").
fn parse_time(q: &Query, name: &'static str) -> Result<Option<i64>, ApiError> {
    match q.get(name).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| Some((t * 1e9) as i64))
            .ok_or_else(|| ApiError::bad(name, format!("{s:?} is not a unix timestamp"))),
    }
}

struct Filter {
    types: Vec<String>,
    actions: Vec<String>,
    images: Vec<String>,
    containers: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
}

impl Filter {
    fn matches(&self, e: &Event) -> bool {
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        let name = e.actor.attributes.get("name").map_or("", String::as_str);
        // `exec_create: sh -c ...` matches `event=exec_create`, as in Docker.
        let action = e.action.split(':').next().unwrap_or("");
        let image_attr = e.actor.attributes.get("image").map_or("", String::as_str);
        let container = |c: &String| {
            e.kind == "container"
                && (*c == e.actor.id
                    || (!c.is_empty() && e.actor.id.starts_with(c.as_str()))
                    || c.strip_prefix('/').unwrap_or(c) == name)
        };
        any(&self.types, e.kind)
            && (any(&self.actions, &e.action) || any(&self.actions, action))
            && (self.images.is_empty()
                || (e.kind == "image"
                    && (any(&self.images, &e.actor.id) || any(&self.images, name)))
                || (e.kind == "container" && any(&self.images, image_attr)))
            && (self.containers.is_empty() || self.containers.iter().any(container))
            && (self.networks.is_empty()
                || (e.kind == "network"
                    && self.networks.iter().any(|n| {
                        *n == e.actor.id
                            || *n == name
                            || (n.len() >= 12 && e.actor.id.starts_with(n.as_str()))
                    })))
            && (self.volumes.is_empty() || (e.kind == "volume" && any(&self.volumes, &e.actor.id)))
    }
}

pub fn route(events: Arc<Events>, q: &Query) -> Result<Response<ApiBody>, ApiError> {
    let since = parse_time(q, "since")?;
    let until = parse_time(q, "until")?;
    let f = q.filters()?;
    f.only(&["type", "event", "image", "container", "network", "volume"])?;
    let filter = Filter {
        types: f.get("type").to_vec(),
        actions: f.get("event").to_vec(),
        images: f.get("image").to_vec(),
        containers: f.get("container").to_vec(),
        networks: f.get("network").to_vec(),
        volumes: f.get("volume").to_vec(),
    };
    let (recent, mut live) = events.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let line = |e: &Event| Bytes::from(serde_json::to_string(e).expect("events serialise") + "\n");
    tokio::spawn(async move {
        let until_ok = |e: &Event| !matches!(until, Some(u) if e.time_nano > u);
        if let Some(s) = since {
            for e in recent.iter().filter(|e| e.time_nano >= s && until_ok(e)) {
                if filter.matches(e) && tx.send(line(e)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            if until.is_some_and(|u| now_nanos() > u) || tx.is_closed() {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(500), live.recv()).await {
                Ok(Ok(e)) => {
                    if until_ok(&e) && filter.matches(&e) && tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    tracing::warn!("an events client fell behind; {n} events dropped for it");
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
                Err(_) => {} // tick: check the client and `until`
            }
        }
    });
    Ok(response(
        StatusCode::OK,
        "application/json",
        ApiBody::Stream(rx),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_event(action: &str) -> Event {
        let attrs = [
            ("name".to_string(), "web".to_string()),
            ("image".to_string(), "busybox".to_string()),
        ]
        .into();
        Event::new("container", action, "0123456789abcdef", attrs)
    }

    fn filter(containers: &[&str], actions: &[&str], images: &[&str]) -> Filter {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Filter {
            types: Vec::new(),
            actions: v(actions),
            images: v(images),
            containers: v(containers),
            networks: Vec::new(),
            volumes: Vec::new(),
        }
    }

    #[test]
    fn container_filters() {
        let e = container_event("exec_create: sh -c true");
        assert!(filter(&["web"], &[], &[]).matches(&e));
        assert!(filter(&["/web"], &[], &[]).matches(&e));
        assert!(filter(&["0123"], &[], &[]).matches(&e));
        assert!(!filter(&["other"], &[], &[]).matches(&e));
        assert!(filter(&[], &["exec_create"], &[]).matches(&e));
        assert!(!filter(&[], &["exec_start"], &[]).matches(&e));
        assert!(filter(&[], &[], &["busybox"]).matches(&e));
        assert!(!filter(&[], &[], &["alpine"]).matches(&e));
        let img = Event::new("image", "pull", "sha256:1", [].into());
        assert!(!filter(&["web"], &[], &[]).matches(&img));
    }

    #[test]
    fn network_and_volume_filters() {
        let attrs = [
            ("name".to_string(), "front".to_string()),
            ("type".to_string(), "bridge".to_string()),
        ];
        let net = Event::new("network", "create", &"ab".repeat(32), attrs.into());
        let vol = Event::new("volume", "create", "data", [].into());
        let mut f = filter(&[], &[], &[]);
        f.networks = vec!["front".into()];
        assert!(f.matches(&net) && !f.matches(&vol));
        f.networks = vec!["abababababab".into()];
        assert!(f.matches(&net));
        f.networks = vec!["other".into()];
        assert!(!f.matches(&net));
        let mut f = filter(&[], &[], &[]);
        f.volumes = vec!["data".into()];
        assert!(f.matches(&vol) && !f.matches(&net));
    }
}
