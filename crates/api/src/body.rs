//! Response bodies (a whole buffer, or chunks from a channel fed by a blocking task), request
//! bodies read as a blocking `Read`, and the JSON helpers.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::errors::ApiError;

/// A response body: all at once, or streamed from a channel until its senders are gone.
pub enum ApiBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl ApiBody {
    pub fn empty() -> ApiBody {
        ApiBody::Full(None)
    }
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ApiBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ApiBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ApiBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ApiBody::Full(None) => SizeHint::with_exact(0),
            ApiBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ApiBody::Stream(_) => SizeHint::default(),
        }
    }
}

pub fn response(status: StatusCode, content_type: &str, body: ApiBody) -> Response<ApiBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if !content_type.is_empty() {
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_str(content_type).expect("static content type"),
        );
    }
    r
}

pub fn json_response(status: StatusCode, v: &impl serde::Serialize) -> Response<ApiBody> {
    let mut text = serde_json::to_vec(v).expect("API values serialise");
    text.push(b'\n');
    response(
        status,
        "application/json",
        ApiBody::Full(Some(Bytes::from(text))),
    )
}

pub fn ok_json(v: &impl serde::Serialize) -> Response<ApiBody> {
    json_response(StatusCode::OK, v)
}

/// Reads a whole JSON request body of at most `limit` bytes.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    body: Incoming,
    limit: usize,
) -> Result<T, ApiError> {
    let buf = read_bytes(body, limit).await?;
    serde_json::from_slice(&buf).map_err(|e| ApiError::bad("body", format!("not valid JSON: {e}")))
}

/// Reads a whole request body of at most `limit` bytes.
pub async fn read_bytes(mut body: Incoming, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::ReadBody(e.to_string()))?;
        if let Ok(d) = frame.into_data() {
            if buf.len() + d.len() > limit {
                return Err(ApiError::ReadBody(format!(
                    "the body is larger than {limit} bytes"
                )));
            }
            buf.extend_from_slice(&d);
        }
    }
    Ok(buf)
}

/// A request body as a blocking reader: an async task forwards its frames into a channel
/// that [`BodyReader`] drains (on a blocking thread).
pub fn body_reader(mut body: Incoming) -> BodyReader {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
    tokio::spawn(async move {
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            let item = match frame {
                None => break,
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue, // trailers
                },
                Some(Err(e)) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, e)),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    BodyReader {
        rx,
        buf: Bytes::new(),
    }
}

pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
}

impl io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.buf = chunk?,
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// A blocking writer into a streamed response body; fails with `BrokenPipe` once the client
/// has gone.
pub struct ChannelWriter(pub mpsc::Sender<Bytes>);

impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
