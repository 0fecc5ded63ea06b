//! Test support: local webhook receivers. Each [`Receiver`] listens on 127.0.0.1 (a random
//! port), records every request it is sent (arrival, method, path, headers, raw body) and
//! answers according to its [`Behaviour`]. It speaks just enough HTTP/1.1 over a raw
//! `TcpListener` to also misbehave: hang, or hang up without answering.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How a receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with the body `ok`.
    Ok,
    /// 500 with the body `nope` for the first `n` requests, then 200 `ok`.
    FailTimes(usize),
    /// Reads the request and never answers (holds the connection until the client gives up,
    /// at most 5 s).
    Hang,
    /// Reads the request, then closes the connection without answering.
    Drop,
    /// Always this status with an empty body; a 3xx also carries a `Location` pointing at
    /// this very receiver (`/redirected`), so a followed redirect would show in `requests()`.
    Status(u16),
    /// 200 `ok`, after this delay.
    Slow(Duration),
}

/// How long [`Behaviour::Hang`] holds a connection at most.
const HANG: Duration = Duration::from_secs(5);

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// When it was read in full (monotonic).
    pub arrived: Instant,
    /// The system clock at arrival: only for comparing with times the sender read from the
    /// same clock (e.g. `webhook-timestamp`), never for its own value.
    pub arrived_at: jiff::Timestamp,
    pub method: String,
    pub path: String,
    /// In arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// How many times header `name` was sent.
    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).count()
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Request>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// A local webhook receiver; stops accepting when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    tokio::spawn(serve(stream, behaviour, addr, shared.clone()));
                }
            }
        });
        Self { addr, shared, accept }
    }

    /// Where to register it: `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests read but not answered (nor given up on by the client) yet.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` requests arrived (panics after `within`); returns them all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Request> {
        let deadline = Instant::now() + within;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver at {} got {} request(s) within {within:?}, expected {count}",
                self.url(),
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection: one request, one answer (or none), then close.
async fn serve(mut stream: TcpStream, behaviour: Behaviour, addr: SocketAddr, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut stream).await else { return };
    let in_flight = InFlight::new(&shared);
    let index = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(request);
        requests.len() - 1
    };
    let (status, body, extra) = match behaviour {
        Behaviour::Ok => (200, "ok", String::new()),
        Behaviour::FailTimes(n) if index < n => (500, "nope", String::new()),
        Behaviour::FailTimes(_) => (200, "ok", String::new()),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (200, "ok", String::new())
        }
        Behaviour::Status(code) if (300..400).contains(&code) => {
            (code, "", format!("location: http://{addr}/redirected\r\n"))
        }
        Behaviour::Status(code) => (code, "", String::new()),
        Behaviour::Hang => {
            // Hold the connection until the client hangs up (or HANG passes), answering nothing.
            let mut buf = [0_u8; 256];
            let _ = tokio::time::timeout(HANG, async {
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            return;
        }
        Behaviour::Drop => {
            drop(in_flight);
            drop(stream);
            return;
        }
    };
    drop(in_flight);
    let reason = match status {
        200 => "OK",
        302 => "Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads one request with a `content-length` body; `None` when the client hung up first.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0_u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    body.truncate(length);
    Some(Request { arrived: Instant::now(), arrived_at: jiff::Timestamp::now(), method, path, headers, body })
}
