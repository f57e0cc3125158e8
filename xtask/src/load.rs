//! A small HTTP/1.1 load generator: one keep-alive connection per thread, fixed concurrency,
//! bounded duration, per-operation latencies. No async runtime and no HTTP library, so that what
//! is measured is the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A keep-alive connection.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None }
    }

    /// Talks to `addr` from the next request on (a round-robin client over several servers).
    pub fn retarget(&mut self, addr: SocketAddr) {
        self.addr = addr;
        self.stream = None;
    }

    fn stream(&mut self) -> Result<&mut BufReader<TcpStream>> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, stream));
        }
        Ok(self.stream.as_mut().expect("just set"))
    }

    /// Sends one request and reads its response; a broken connection is dropped (the next
    /// request reconnects) and reported as an error.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let result = self.exchange(method, path, headers, body);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let addr = self.addr;
        let stream = self.stream()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let writer = stream.get_mut();
        writer.write_all(head.as_bytes())?;
        writer.write_all(body)?;
        let mut line = String::new();
        stream.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            stream.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                stream.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                let mut chunk = vec![0; size + 2];
                stream.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            stream.read_exact(&mut body)?;
        } else if method != "HEAD" && status != 204 && status != 304 {
            stream.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        self.request("GET", path, headers, &[])
    }

    pub fn post_json(&mut self, path: &str, body: &Value) -> Result<Response> {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    pub fn post_form(&mut self, path: &str, pairs: &[(&str, &str)]) -> Result<Response> {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.join("&").as_bytes(),
        )
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Expects `status`; the response otherwise.
pub fn expect(response: Response, status: u16) -> Result<Response> {
    if response.status != status {
        bail!(
            "expected {status}, got {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(response)
}

/// What one scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub name: String,
    pub requests_per_op: u32,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub first_error: Option<String>,
}

impl Measured {
    pub fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

/// Where and how hard to load.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub addr: SocketAddr,
    /// Connections (one thread each).
    pub concurrency: usize,
    /// Time before measuring starts.
    pub warm_up: Duration,
    /// Time measured.
    pub duration: Duration,
}

/// What one connection measured.
struct ThreadResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `op` on `load.concurrency` connections for `load.warm_up` (not measured), then
/// `load.duration`. `setup` prepares each connection's state (e.g. signs in once).
pub fn run<S, Setup, Op>(
    name: &str,
    requests_per_op: u32,
    load: Load,
    setup: Setup,
    op: Op,
) -> Result<Measured>
where
    Setup: Fn(&mut Conn) -> Result<S> + Sync,
    Op: Fn(&mut Conn, &mut S) -> Result<()> + Sync,
{
    let barrier = Barrier::new(load.concurrency);
    let results: Vec<Result<ThreadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..load.concurrency)
            .map(|_| {
                let barrier = &barrier;
                let setup = &setup;
                let op = &op;
                scope.spawn(move || -> Result<ThreadResult> {
                    let mut conn = Conn::new(load.addr);
                    let state = setup(&mut conn);
                    barrier.wait();
                    let mut state = state?;
                    let start = Instant::now();
                    let measure_from = start + load.warm_up;
                    let end = measure_from + load.duration;
                    let mut result = ThreadResult {
                        latencies_us: Vec::new(),
                        errors: 0,
                        first_error: None,
                    };
                    loop {
                        let before = Instant::now();
                        if before >= end {
                            break;
                        }
                        let outcome = op(&mut conn, &mut state);
                        let took = before.elapsed();
                        if before < measure_from {
                            continue;
                        }
                        match outcome {
                            Ok(()) => result
                                .latencies_us
                                .push(took.as_micros().min(u32::MAX as u128) as u32),
                            Err(error) => {
                                result.errors += 1;
                                result
                                    .first_error
                                    .get_or_insert_with(|| format!("{error:#}"));
                            }
                        }
                    }
                    Ok(result)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for result in results {
        let result = result.with_context(|| format!("{name}: setup failed"))?;
        latencies.extend(result.latencies_us);
        errors += result.errors;
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        f64::from(latencies[i]) / 1000.0
    };
    Ok(Measured {
        name: name.to_owned(),
        requests_per_op,
        ops: latencies.len() as u64,
        errors,
        seconds: load.duration.as_secs_f64(),
        median_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        first_error,
    })
}
