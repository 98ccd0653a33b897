//! Output as the docker CLI prints it: tab-aligned tables (minimum cell width 10, padding 3),
//! "About a minute ago" times, decimal sizes ("4.26MB"), 12-character IDs.

use serde_json::Value;

/// Aligns rows like Go's tabwriter with docker's settings (minwidth 10, padding 3); the last
/// column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let w = (width[i] + 3).max(10);
                for _ in c.chars().count()..w {
                    line.push(' ');
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// go-units' HumanDuration.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (s as f64 / 3600.0 + 0.5) as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", s / 3600 / 24 / 365)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "5 minutes ago" from a UNIX time.
pub fn ago(t: i64) -> String {
    format!("{} ago", human_duration(now() - t))
}

/// Seconds since the epoch of an RFC 3339 time ("2026-11-28T19:00:00.123Z", offsets too).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let mo: i64 = d.next()?.parse().ok()?;
    let da: i64 = d.next()?.parse().ok()?;
    let time = &rest[..8.min(rest.len())];
    let mut t = time.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    let tail = &rest[8.min(rest.len())..];
    let tail = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = if tail.is_empty() || tail == "Z" {
        0
    } else {
        let sign = if tail.starts_with('-') { -1 } else { 1 };
        let (oh, om) = tail[1..].split_once(':')?;
        sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss - offset)
}

/// `%.{prec}g` of Go, for sizes.
fn g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i64 + 1;
    let decimals = (prec as i64 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// go-units' HumanSizeWithPrecision (decimal units).
pub fn human_size_prec(size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", g(s, prec), UNITS[i])
}

pub fn human_size(size: f64) -> String {
    human_size_prec(size, 3)
}

/// go-units' BytesSize (binary units, "1.5MiB"), for stats.
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", g(s, 4), UNITS[i])
}

/// A 12-character ID without its `sha256:`.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's Ellipsis: at most `max` characters, the last one "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A Go strconv.Quote of plain text.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The PORTS column of `docker ps`: "0.0.0.0:8080->80/tcp, 443/tcp".
pub fn ports(v: &Value) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in v.as_array().into_iter().flatten() {
        let private = p["PrivatePort"].as_u64().unwrap_or(0);
        let ty = p["Type"].as_str().unwrap_or("tcp");
        match p["PublicPort"].as_u64() {
            Some(public) if public != 0 => {
                let ip = p["IP"].as_str().unwrap_or("0.0.0.0");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                out.push(format!("{ip}:{public}->{private}/{ty}"))
            }
            _ => out.push(format!("{private}/{ty}")),
        }
    }
    out.dedup();
    out.join(", ")
}

/// A `--format` template with only `{{.Field}}` and `{{json .}}` placeholders, each field
/// taken from `fields` (the table's values) or the JSON object.
pub fn template(tpl: &str, fields: &[(&str, String)], obj: &Value) -> String {
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let tpl = tpl.strip_prefix("table ").unwrap_or(&tpl).to_string();
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = rest[start + 2..start + end].trim();
        rest = &rest[start + end + 2..];
        if expr == "json ." {
            out.push_str(&obj.to_string());
        } else if let Some(f) = expr.strip_prefix("json .") {
            out.push_str(&lookup(obj, f).to_string());
        } else if let Some(f) = expr.strip_prefix('.') {
            if let Some((_, v)) = fields.iter().find(|(k, _)| *k == f) {
                out.push_str(v);
            } else {
                out.push_str(&plain(&lookup(obj, f)));
            }
        }
    }
    out.push_str(rest);
    out
}

fn lookup(obj: &Value, path: &str) -> Value {
    let mut v = obj;
    for part in path.split('.') {
        v = &v[part];
    }
    v.clone()
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_size(4_261_376.0), "4.26MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_000.0), "1kB");
        assert_eq!(human_size(12_345_678.0), "12.3MB");
        assert_eq!(bytes_size(1536.0 * 1024.0), "1.5MiB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(75), "About a minute");
        assert_eq!(human_duration(3 * 60), "3 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(86401));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00.5+01:00"),
            Some(951865200)
        );
    }

    #[test]
    fn tables_like_tabwriter() {
        let t = table(&[
            vec!["CONTAINER ID".into(), "IMAGE".into(), "NAMES".into()],
            vec!["abc".into(), "busybox".into(), "x".into()],
        ]);
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n"
        );
        assert_eq!(
            ellipsis("sleep 1000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn templates() {
        let obj = serde_json::json!({"Id": "abc", "State": {"Status": "running"}});
        assert_eq!(
            template("{{.ID}}\\t{{.State.Status}}", &[("ID", "abc".into())], &obj),
            "abc\trunning"
        );
        assert_eq!(template("{{json .Id}}", &[], &obj), "\"abc\"");
    }
}
