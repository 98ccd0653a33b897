//! Docker's JSON progress messages (pull, push, load) on a terminal as one indicatif bar per
//! layer; elsewhere as docker prints them without a terminal: one "ID: Status" line per
//! change. An `error` message ends the stream as an error.

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::anyhow;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

pub struct Progress {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    last: HashMap<String, String>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let multi = (!quiet && crate::stream::stdout_is_tty())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Progress {
            multi,
            bars: HashMap::new(),
            last: HashMap::new(),
            quiet,
        }
    }

    fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{s}");
            }
        }
    }

    /// Shows one message; an error message is returned as an error.
    pub fn show(&mut self, v: &Value) -> anyhow::Result<()> {
        if let Some(e) = v["error"].as_str() {
            return Err(anyhow!("{e}"));
        }
        if let Some(s) = v["stream"].as_str() {
            // `load`'s "Loaded image: ..." lines: printed even when quiet.
            let s = s.trim_end();
            if !s.is_empty() {
                match &self.multi {
                    Some(m) => {
                        let _ = m.println(s);
                    }
                    None => println!("{s}"),
                }
            }
            return Ok(());
        }
        let status = v["status"].as_str().unwrap_or("");
        let id = v["id"].as_str().unwrap_or("");
        if id.is_empty() {
            if !status.is_empty() {
                self.line(status);
            }
            return Ok(());
        }
        let current = v["progressDetail"]["current"].as_u64();
        let total = v["progressDetail"]["total"].as_u64().filter(|t| *t > 0);
        match &self.multi {
            Some(m) => {
                let bar = self.bars.entry(id.to_string()).or_insert_with(|| {
                    let b = m.add(ProgressBar::new(0));
                    b.set_style(
                        ProgressStyle::with_template("{prefix}: {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    b.set_prefix(id.to_string());
                    b
                });
                bar.set_message(status.to_string());
                if let (Some(c), Some(t)) = (current, total) {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_length(t);
                    bar.set_position(c);
                } else {
                    bar.set_style(
                        ProgressStyle::with_template("{prefix}: {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
                bar.tick();
            }
            None => {
                if self.quiet || current.is_some() {
                    return Ok(());
                }
                if self.last.get(id).map(String::as_str) != Some(status) {
                    self.last.insert(id.to_string(), status.to_string());
                    self.line(&format!("{id}: {status}"));
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) {
        for b in self.bars.values() {
            b.finish();
        }
    }
}
