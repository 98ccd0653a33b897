//! The `nft` tool, run inside a given network namespace, speaking its JSON API
//! (libnftables-json(5)).
//!
//! `nft -j -f -` applies the whole document it reads as one kernel transaction: every
//! command of a batch lands or none does. The tool is spawned from a thread that has
//! `setns`ed into the namespace (see [`crate::netns::run_in`]); a child process starts
//! in the namespaces of the thread that forks it, so `nft` only ever sees that
//! namespace's rule set, never the caller's, and no `pre_exec` hook is needed.
//! Arguments are JSON values, never text spliced into a rule, so a name cannot
//! smuggle a statement in.

use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft in the network namespace: {0}")]
    EnterNetns(#[source] NetnsError),
    #[error("cannot run {program} (is the nftables package installed?): {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("nft rejected the rule set update: {stderr}")]
    Apply { stderr: String },
    #[error("nft cannot list table {table}: {stderr}")]
    List { table: String, stderr: String },
    #[error("nft printed JSON that cannot be read: {0}")]
    Parse(#[source] serde_json::Error),
}

/// The nft binary: the first of the usual places, else `nft` on the PATH.
fn program() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nft")
}

fn run(netns: BorrowedFd<'_>, args: &[&str], input: &[u8]) -> Result<Output, NftError> {
    let program = program();
    netns::run_in(netns, || -> io::Result<Output> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = stdin.write_all(input);
        drop(stdin);
        let out = child.wait_with_output()?;
        written.map(|()| out)
    })
    .map_err(NftError::EnterNetns)?
    .map_err(|source| NftError::Spawn {
        program: program.to_owned(),
        source,
    })
}

/// Applies `commands` (a list of JSON commands: `{"add": ...}`, `{"delete": ...}`)
/// in one transaction in `netns`. An empty list does nothing.
pub fn apply(netns: BorrowedFd<'_>, commands: Vec<Value>) -> Result<(), NftError> {
    if commands.is_empty() {
        return Ok(());
    }
    let doc = serde_json::json!({ "nftables": commands });
    let input = serde_json::to_vec(&doc).map_err(NftError::Parse)?;
    let out = run(netns, &["-j", "-f", "-"], &input)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Apply {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The objects of table `family name` in `netns` with their handles, or None when
/// there is no such table.
pub fn list_table(
    netns: BorrowedFd<'_>,
    family: &str,
    name: &str,
) -> Result<Option<Vec<Value>>, NftError> {
    let out = run(netns, &["-j", "-a", "list", "table", family, name], b"")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(NftError::List {
            table: format!("{family} {name}"),
            stderr,
        });
    }
    let mut doc: Value = serde_json::from_slice(&out.stdout).map_err(NftError::Parse)?;
    match doc.get_mut("nftables").map(Value::take) {
        Some(Value::Array(objects)) => Ok(Some(objects)),
        _ => Ok(Some(Vec::new())),
    }
}
