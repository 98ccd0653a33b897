//! Docker's `--change` instructions for `import`: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
//! WORKDIR, VOLUME, STOPSIGNAL, applied to an image config's "config" object.

use serde_json::{json, Map, Value};

use super::ArchiveError;

const ALLOWED: &str = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL";

fn refuse(change: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Change {
        change: change.to_string(),
        reason: reason.into(),
    }
}

/// Splits on blanks outside quotes; quotes and backslash escapes are removed.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                any = true;
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (c, _) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The JSON (exec) form `["a","b"]`, or the shell form run by `/bin/sh -c`.
fn command(change: &str, rest: &str) -> Result<Value, ArchiveError> {
    if rest.starts_with('[') {
        let v: Vec<String> = serde_json::from_str(rest)
            .map_err(|e| refuse(change, format!("not a JSON array of strings: {e}")))?;
        Ok(json!(v))
    } else {
        Ok(json!(["/bin/sh", "-c", rest]))
    }
}

/// `k=v k2="v 2"`, or the old `k v` form for ENV and LABEL.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>, ArchiveError> {
    let w = words(rest);
    if w.first().is_some_and(|f| !f.contains('=')) {
        let (k, v) = rest
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((rest.trim(), ""));
        return Ok(vec![(k.to_string(), words(v).join(" "))]);
    }
    w.into_iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(refuse(change, format!("{p:?} is not key=value"))),
        })
        .collect()
}

fn map<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let e = config.entry(key).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut().expect("object")
}

/// Applies `changes` to `config` (the image config's "config" object).
pub fn apply_changes(
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<(), ArchiveError> {
    for change in changes {
        let t = change.trim();
        let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let rest = rest.trim();
        let instr = word.to_ascii_uppercase();
        if rest.is_empty() {
            return Err(refuse(change, format!("{instr} needs an argument")));
        }
        match instr.as_str() {
            "CMD" => {
                config.insert("Cmd".into(), command(change, rest)?);
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), command(change, rest)?);
            }
            "ENV" => {
                for (k, v) in pairs(change, rest)? {
                    let env = config.entry("Env").or_insert_with(|| json!([]));
                    let list = env
                        .as_array_mut()
                        .ok_or_else(|| refuse(change, "Env is not a list"))?;
                    list.retain(|e| {
                        e.as_str().and_then(|s| s.split_once('=')).map(|x| x.0) != Some(&k)
                    });
                    list.push(json!(format!("{k}={v}")));
                }
            }
            "LABEL" => {
                for (k, v) in pairs(change, rest)? {
                    map(config, "Labels").insert(k, json!(v));
                }
            }
            "EXPOSE" => {
                for p in words(rest) {
                    let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    if port.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                        return Err(refuse(change, format!("{p:?} is not PORT[/tcp|udp|sctp]")));
                    }
                    map(config, "ExposedPorts").insert(format!("{port}/{proto}"), json!({}));
                }
            }
            "VOLUME" => {
                let vols: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest)
                        .map_err(|e| refuse(change, format!("not a JSON array of strings: {e}")))?
                } else {
                    words(rest)
                };
                for v in vols {
                    map(config, "Volumes").insert(v, json!({}));
                }
            }
            "USER" => {
                config.insert("User".into(), json!(rest));
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), json!(rest));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), json!(rest));
            }
            "ONBUILD" => {
                return Err(refuse(
                    change,
                    "ONBUILD is not supported by import (hull builds no images); remove it",
                ))
            }
            other => {
                return Err(refuse(
                    change,
                    format!("{other} is not allowed in --change; allowed: {ALLOWED}"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<Value, ArchiveError> {
        let mut m = Map::new();
        let c: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut m, &c).map(|_| Value::Object(m))
    }

    #[test]
    fn docker_changes() {
        let v = apply(&[
            r#"CMD ["sh","-c","echo hi"]"#,
            "ENTRYPOINT /init --flag",
            "ENV A=1 B=\"two words\"",
            "ENV C three four",
            "ENV A=2",
            "EXPOSE 80 53/udp",
            "LABEL a=b \"c d\"=e",
            "USER 1000:1000",
            "WORKDIR /srv",
            "VOLUME /data /cache",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(v["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(v["Entrypoint"], json!(["/bin/sh", "-c", "/init --flag"]));
        assert_eq!(v["Env"], json!(["B=two words", "C=three four", "A=2"]));
        assert_eq!(v["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(v["Labels"], json!({"a": "b", "c d": "e"}));
        assert_eq!(v["User"], "1000:1000");
        assert_eq!(v["WorkingDir"], "/srv");
        assert_eq!(v["Volumes"], json!({"/data": {}, "/cache": {}}));
        assert_eq!(v["StopSignal"], "SIGINT");
    }

    #[test]
    fn refusals() {
        for bad in [
            "ONBUILD RUN x",
            "RUN echo",
            "EXPOSE http",
            "CMD",
            "CMD [1,2]",
        ] {
            let e = apply(&[bad]).unwrap_err();
            assert!(matches!(e, ArchiveError::Change { .. }), "{bad}: {e}");
        }
        assert!(apply(&["ONBUILD RUN x"])
            .unwrap_err()
            .to_string()
            .contains("ONBUILD"));
    }
}
