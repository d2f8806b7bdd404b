//! A tiny HTTP/1.1 test client over `std::net::TcpStream`, so the simulator tests exercise real
//! sockets (including keep-alive and broken connections) without depending on the gateway.

#![allow(dead_code)]

pub mod sse;

use base64::Engine;
use callgate_sim::credentials::*;
use callgate_sim::VendorKind;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// What reading a response produced.
#[derive(Debug)]
pub enum Outcome {
    Complete(Resp),
    /// Headers arrived but the body ended before Content-Length bytes.
    Truncated {
        status: u16,
        expected: usize,
        got: usize,
    },
    /// The connection closed before any response bytes.
    Closed,
}

/// One persistent connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream),
            addr,
        }
    }

    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Outcome {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        if self.reader.get_mut().write_all(req.as_bytes()).is_err() {
            return Outcome::Closed;
        }
        self.read_response()
    }

    fn read_response(&mut self) -> Outcome {
        let mut status_line = String::new();
        match self.reader.read_line(&mut status_line) {
            Ok(0) | Err(_) => return Outcome::Closed,
            Ok(_) => {}
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').expect("header");
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("content-length"))
            .unwrap_or(0);
        let mut body = Vec::new();
        let _ = (&mut self.reader).take(len as u64).read_to_end(&mut body);
        if body.len() < len {
            return Outcome::Truncated {
                status,
                expected: len,
                got: body.len(),
            };
        }
        Outcome::Complete(Resp {
            status,
            headers,
            body,
        })
    }
}

/// One request on a fresh connection; panics unless a complete response arrives.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    match Conn::open(addr).send(method, target, headers, body) {
        Outcome::Complete(r) => r,
        other => panic!("{method} {target}: {other:?}"),
    }
}

/// The demo credentials of one vendor as headers.
pub fn auth(kind: VendorKind) -> Vec<(&'static str, String)> {
    match kind {
        VendorKind::Elemente => {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{ELEMENTE_USERNAME}:{ELEMENTE_PASSWORD}"));
            vec![("Authorization", format!("Basic {token}"))]
        }
        VendorKind::Bimpe => vec![("Authorization", format!("Bearer {BIMPE_API_KEY}"))],
        VendorKind::Zudu => vec![
            ("X-API-KEY", ZUDU_API_KEY.to_string()),
            ("X-API-SECRET", ZUDU_API_SECRET.to_string()),
        ],
    }
}

/// An authenticated request.
pub fn call(addr: SocketAddr, kind: VendorKind, method: &str, target: &str, body: &str) -> Resp {
    let owned = auth(kind);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    request(addr, method, target, &headers, body)
}
