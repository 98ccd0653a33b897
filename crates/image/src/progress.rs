//! Progress reporting as Docker's JSON progress messages, so the daemon can stream them:
//! `{"status":"Loading layer","progressDetail":{"current":N,"total":M},"id":"<short>"}` and
//! `{"stream":"Loaded image: busybox:latest\n"}`.

use std::io::Write;
use std::sync::Mutex;

/// One Docker JSON progress message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Message {
    Status {
        status: String,
        #[serde(rename = "progressDetail")]
        progress_detail: Detail,
        #[serde(skip_serializing_if = "String::is_empty")]
        id: String,
    },
    Stream {
        stream: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl Message {
    pub fn status(status: &str, id: &str, current: u64, total: u64) -> Message {
        Message::Status {
            status: status.into(),
            progress_detail: Detail {
                current: Some(current),
                total: Some(total),
            },
            id: id.into(),
        }
    }

    pub fn stream(text: impl Into<String>) -> Message {
        Message::Stream {
            stream: text.into(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("progress messages serialise")
    }
}

/// Receives progress messages.
pub trait Progress: Sync {
    fn emit(&self, m: Message);
}

/// Drops every message.
pub struct NoProgress;

impl Progress for NoProgress {
    fn emit(&self, _: Message) {}
}

/// Any `Fn(Message)` is a progress sink.
impl<F: Fn(Message) + Sync> Progress for F {
    fn emit(&self, m: Message) {
        self(m)
    }
}

/// Writes each message as one JSON line (Docker's `application/json` progress stream).
pub struct JsonLines<W: Write + Send>(pub Mutex<W>);

impl<W: Write + Send> Progress for JsonLines<W> {
    fn emit(&self, m: Message) {
        if let Ok(mut w) = self.0.lock() {
            let _ = writeln!(w, "{}", m.to_json());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_shapes() {
        assert_eq!(
            Message::status("Loading layer", "abc", 1, 2).to_json(),
            r#"{"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"abc"}"#
        );
        assert_eq!(
            Message::stream("Loaded image: busybox:latest\n").to_json(),
            r#"{"stream":"Loaded image: busybox:latest\n"}"#
        );
    }
}
