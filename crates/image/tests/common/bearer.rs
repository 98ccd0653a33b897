//! A tiny proxy in front of the test registry, on 127.0.0.1, one request per connection.
//! As a Bearer-token gate, `/token` hands out a token for the right Basic credentials and
//! every other request needs it (docker-registry's own token auth needs a signing token
//! server, which this stands in for). It can also drop `Range` headers, as a server that
//! ignores them would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub const TOKEN: &str = "hull-test-token";

pub struct BearerGate {
    pub host: String,
    stop: Arc<AtomicBool>,
    /// Tokens handed out.
    pub tokens: Arc<AtomicUsize>,
}

impl BearerGate {
    /// Gate for `upstream` ("127.0.0.1:port"), accepting `basic` ("Basic base64") at /token.
    pub fn start(upstream: &str, basic: String) -> BearerGate {
        Self::proxy(upstream, Some(basic), false)
    }

    /// A proxy without auth that drops `Range` request headers.
    pub fn ignoring_range(upstream: &str) -> BearerGate {
        Self::proxy(upstream, None, true)
    }

    fn proxy(upstream: &str, basic: Option<String>, strip_range: bool) -> BearerGate {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let tokens = Arc::new(AtomicUsize::new(0));
        let (up, me, st, tk) = (
            upstream.to_string(),
            host.clone(),
            stop.clone(),
            tokens.clone(),
        );
        std::thread::spawn(move || {
            for c in l.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(c) = c else { continue };
                let (up, me, basic, tk) = (up.clone(), me.clone(), basic.clone(), tk.clone());
                std::thread::spawn(move || {
                    let _ = serve(c, &up, &me, basic.as_deref(), strip_range, &tk);
                });
            }
        });
        BearerGate { host, stop, tokens }
    }
}

impl Drop for BearerGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.host); // wake the accept loop
    }
}

fn respond(c: &mut TcpStream, status: &str, headers: &str, body: &str) -> std::io::Result<()> {
    write!(
        c,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve(
    c: TcpStream,
    upstream: &str,
    me: &str,
    basic: Option<&str>,
    strip_range: bool,
    tokens: &AtomicUsize,
) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut head = Vec::new();
    let mut auth = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("authorization:") {
            auth = line["authorization:".len()..].trim().to_string();
            continue;
        }
        if lower.starts_with("connection:") || (strip_range && lower.starts_with("range:")) {
            continue;
        }
        head.push(line);
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let mut c = c;
    let path = head[0].split_whitespace().nth(1).unwrap_or("").to_string();
    let Some(basic) = basic else {
        return forward(c, upstream, &head, &body);
    };
    if path.starts_with("/token") {
        if auth == basic {
            tokens.fetch_add(1, Ordering::Relaxed);
            return respond(
                &mut c,
                "200 OK",
                "Content-Type: application/json\r\n",
                &format!(r#"{{"token":"{TOKEN}"}}"#),
            );
        }
        return respond(
            &mut c,
            "401 Unauthorized",
            "",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
        );
    }
    if auth != format!("Bearer {TOKEN}") {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"hull-test\",scope=\"repository:x:pull\"\r\n"
        );
        return respond(
            &mut c,
            "401 Unauthorized",
            &challenge,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    forward(c, upstream, &head, &body)
}

fn forward(mut c: TcpStream, upstream: &str, head: &[String], body: &[u8]) -> std::io::Result<()> {
    let mut up = TcpStream::connect(upstream)?;
    for l in head {
        up.write_all(l.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    c.write_all(&resp)
}
