//! The one HTTP/1.1 client of the tests (against a real server on 127.0.0.1, chromedriver, or
//! over TLS): one request per connection (`Connection: close`), raw bytes in and out, so tests
//! see exactly what goes over the wire. [`Request::to_bytes`] writes a request, [`exchange`]
//! (async, any stream) and [`exchange_blocking`] (std `TcpStream`) send bytes and read exactly
//! one response, [`Response::parse`] reads one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header (lowercased name, value) pairs in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// Parses a whole response (head and body; a chunked body is de-chunked). `None` until the
    /// head is complete.
    pub fn parse(raw: &[u8]) -> Option<Response> {
        parse(raw)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body text when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {:?} (status {})", self.text(), self.status)
        })
    }
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    source: Option<std::net::IpAddr>,
}

impl Request {
    /// A request with `method` for `path` (which may include a query).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            source: None,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body (sent as `text/plain`, as Home Assistant's login page does, unless a content
    /// type was set).
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            self.headers
                .push(("Content-Type".into(), "text/plain;charset=UTF-8".into()));
        }
        self.body = value.to_string().into_bytes();
        self
    }

    /// A url-encoded form body.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut serializer = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                serializer.push('&');
            }
            serializer.push_str(&encode(k));
            serializer.push('=');
            serializer.push_str(&encode(v));
        }
        self.headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        self.body = serializer.into_bytes();
        self
    }

    /// Sends from this local address (any 127.x.y.z works on loopback).
    pub fn from_ip(mut self, ip: &str) -> Self {
        self.source = Some(ip.parse().expect("an IP"));
        self
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request to `addr` and reads the whole response (10 s limit).
    pub async fn send(&self, addr: SocketAddr) -> Response {
        tokio::time::timeout(Duration::from_secs(10), self.send_inner(addr))
            .await
            .unwrap_or_else(|_| panic!("{} {} timed out", self.method, self.path))
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path))
    }

    /// Like [`Request::send`], but a connection that fails, closes early or times out is an
    /// error instead of a panic (for tests that kill the server under load).
    pub async fn try_send(&self, addr: SocketAddr) -> std::io::Result<Response> {
        tokio::time::timeout(Duration::from_secs(10), self.send_inner(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?
    }

    async fn send_inner(&self, addr: SocketAddr) -> std::io::Result<Response> {
        let mut stream = match self.source {
            Some(source) => {
                let socket = if source.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }?;
                socket.bind(SocketAddr::new(source, 0))?;
                socket.connect(addr).await?
            }
            None => TcpStream::connect(addr).await?,
        };
        exchange(&mut stream, &self.to_bytes(&addr.to_string())).await
    }

    /// The request as bytes on the wire, with `Host: host` and `Connection: close`.
    pub fn to_bytes(&self, host: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Writes `bytes` to `stream` and reads one response: up to its `Content-Length`, the end of its
/// chunked body, or the end of the stream. A stream that ends before a response head is an
/// `UnexpectedEof` error holding what was read. No deadline: wrap it in a timeout.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
) -> std::io::Result<Response> {
    stream.write_all(bytes).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !complete(&raw) {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parsed(&raw)
}

/// [`exchange`] on a blocking std stream (the WebDriver client); its read timeout applies.
pub fn exchange_blocking(
    stream: &mut std::net::TcpStream,
    bytes: &[u8],
) -> std::io::Result<Response> {
    use std::io::{Read, Write};
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !complete(&raw) {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            // A signal arrived during the read (the test process starts and reaps servers and
            // browsers): nothing was read, read again. Seen failing a browser test in CI.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parsed(&raw)
}

fn parsed(raw: &[u8]) -> std::io::Result<Response> {
    parse(raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete response: {:?}", String::from_utf8_lossy(raw)),
        )
    })
}

/// Whether `raw` holds a whole response whose end is known (`Content-Length` reached or the
/// last chunk seen); a response without either ends with the connection.
fn complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let length = head.lines().find_map(|line| {
        line.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    match length {
        Some(length) => body.len() >= length,
        None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
        // A status without a body.
        None => head
            .split(' ')
            .nth(1)
            .is_some_and(|status| status.starts_with('1') || status == "204" || status == "304"),
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn parse(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        let Some(chunk) = data.get(start..start + size) else {
            break;
        };
        out.extend_from_slice(chunk);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
    out
}
