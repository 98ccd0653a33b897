//! URL pieces: percent-decoding of path segments and query strings, Docker's boolean
//! parameters, and the `filters` parameter.

use std::collections::BTreeMap;

use crate::errors::ApiError;

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set, as in query strings).
/// Malformed escapes and non-UTF-8 results are errors naming `what`.
pub fn decode(s: &str, plus: bool, what: &'static str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::bad(what, format!("bad %-escape in {s:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad(what, "not UTF-8 once decoded"))
}

/// A parsed query string.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, ApiError> {
        let mut v = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            v.push((decode(k, true, "query")?, decode(val, true, "query")?));
        }
        Ok(Query(v))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key (`names=a&names=b`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolean parameters: absent, "", "0", "no", "false", "none" are false.
    pub fn flag(&self, key: &str) -> bool {
        !matches!(
            self.get(key).map(|v| v.to_ascii_lowercase()).as_deref(),
            None | Some("" | "0" | "no" | "false" | "none")
        )
    }

    /// The `filters` parameter: `{"key": {"value": true}}` (or the older `{"key": ["value"]}`).
    pub fn filters(&self) -> Result<Filters, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Filters::default());
        };
        let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad("filters", format!("not a JSON object of filters: {e}")))?;
        let mut out = BTreeMap::new();
        for (k, vals) in v {
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m.into_iter().map(|(k, _)| k).collect(),
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        ApiError::bad("filters", format!("{k}: values must be strings"))
                    })?,
                _ => return Err(ApiError::bad("filters", format!("{k}: bad value"))),
            };
            out.insert(k, list);
        }
        Ok(Filters(out))
    }
}

#[derive(Debug, Default)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Refuses filters other than `allowed`, as Docker does ("invalid filter 'x'").
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad("filters", format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Shell-style glob match of `*` and `?` (Go's path.Match without classes), as Docker's
/// `reference` filter uses.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) && p[pi] != '*' {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = Query::parse(Some(
            "fromImage=127.0.0.1%3A5000%2Fbusybox&tag=latest&force=1&x",
        ))
        .unwrap();
        assert_eq!(q.get("fromImage"), Some("127.0.0.1:5000/busybox"));
        assert!(q.flag("force"));
        assert!(!q.flag("x"));
        assert!(!q.flag("missing"));
        assert!(Query::parse(Some("a=%zz")).is_err());
    }

    #[test]
    fn parses_filters() {
        let q = Query::parse(Some(
            "filters=%7B%22reference%22%3A%7B%22busybox%22%3Atrue%7D%7D",
        ))
        .unwrap();
        let f = q.filters().unwrap();
        assert_eq!(f.get("reference"), ["busybox".to_string()]);
        assert!(f.only(&["reference"]).is_ok());
        assert!(f.only(&["dangling"]).is_err());
        assert!(Query::parse(Some("filters=nope"))
            .unwrap()
            .filters()
            .is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox", "busybox"));
        assert!(glob("*:1.?", "busybox:1.2"));
        assert!(!glob("busy", "busybox"));
    }
}
