//! Reading one request head off a client connection, within the connection's bounds.
//!
//! Pingora 0.9 reads a head with fixed limits (1 MiB, 256 fields), no deadline for a new
//! connection's first request, and answers what it cannot parse with a bare `400`. So callgate
//! reads the head itself — a deadline from the connection (or, kept alive, from the first byte),
//! a line, size and field-count limit checked on every read — and only a complete head goes on
//! to Pingora's parser (as the session's "pipelined prefix", so nothing is read twice). What
//! cannot be a request is a [`Refusal`] the connection answers as a problem document.
//!
//! Framing is httparse's (the parser Pingora uses): this module only decides when a head is
//! complete, too large, or too slow.

use crate::canonical::ErrorCode;
use crate::config::{ConnectionLimits, PINGORA_MAX_HEADERS};
use bytes::BytesMut;
use std::mem::MaybeUninit;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};

/// What the client sent in place of a request head.
#[derive(Debug)]
pub enum Head {
    /// A complete head, and whatever the client sent after it (the start of its body).
    Read(BytesMut),
    /// The client closed the connection, sent nothing, or stayed idle past the idle timeout:
    /// there is no request to answer.
    Gone,
    /// Something that cannot be read as a request: answered, then the connection closed.
    Refused(Refusal),
}

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not complete within the header timeout.
    Timeout,
    /// A request line over `max_request_line_bytes`.
    LineTooLong,
    /// A head over `max_header_bytes`.
    HeadTooLarge,
    /// More than `max_headers` fields.
    TooManyHeaders,
    /// Not an HTTP/1 request head.
    Malformed,
    /// A body not complete within the body timeout.
    BodyTimeout,
}

impl Refusal {
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Timeout | Refusal::BodyTimeout => ErrorCode::RequestTimeout,
            Refusal::LineTooLong => ErrorCode::UriTooLong,
            Refusal::HeadTooLarge | Refusal::TooManyHeaders => ErrorCode::HeadersTooLarge,
            Refusal::Malformed => ErrorCode::InvalidRequest,
        }
    }

    /// What the client is told, with the limit it went over.
    pub fn detail(self, limits: &ConnectionLimits) -> String {
        match self {
            Refusal::Timeout => format!(
                "the request head was not complete within {} ms",
                limits.header_timeout.as_millis()
            ),
            Refusal::BodyTimeout => format!(
                "the request body was not complete within {} ms",
                limits.body_timeout.as_millis()
            ),
            Refusal::LineTooLong => format!(
                "the request line is longer than {} bytes",
                limits.max_request_line_bytes
            ),
            Refusal::HeadTooLarge => format!(
                "the request head is larger than {} bytes",
                limits.max_header_bytes
            ),
            Refusal::TooManyHeaders => format!(
                "the request has more than {} header fields",
                limits.max_headers
            ),
            Refusal::Malformed => "the request head is not valid HTTP/1.1".to_string(),
        }
    }
}

/// The head ends with an empty line (Pingora's parser waits for the same).
const HEAD_END: &[u8] = b"\r\n\r\n";

/// How far a head read so far has come.
enum Progress {
    Complete(usize),
    Partial,
    /// httparse refuses the request line as it stands; Pingora may still read it (it
    /// percent-encodes bytes a URI may not hold) once the head is complete.
    NeedsPingora,
    Refused(Refusal),
}

/// Where `needle` first starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn progress(buf: &[u8], limits: &ConnectionLimits) -> Progress {
    // Empty lines before the request line are skipped (RFC 9112 §2.2), as httparse does.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let line_end = line.iter().position(|&b| b == b'\n');
    if line_end.unwrap_or(line.len()) > limits.max_request_line_bytes {
        return Progress::Refused(Refusal::LineTooLong);
    }
    // On the stack and not initialised: this runs on every read of every request head.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; PINGORA_MAX_HEADERS];
    let fields = &mut fields[..limits.max_headers.min(PINGORA_MAX_HEADERS)];
    let parsed = httparse::Request::new(&mut []).parse_with_uninit_headers(buf, fields);
    let state = match parsed {
        Ok(httparse::Status::Complete(n)) => Progress::Complete(n),
        Ok(httparse::Status::Partial) => Progress::Partial,
        Err(httparse::Error::TooManyHeaders) => Progress::Refused(Refusal::TooManyHeaders),
        Err(httparse::Error::Token | httparse::Error::Version) => {
            // The head ends at the first empty line (CRLF or, as httparse allows, bare LF);
            // its fields are counted by lines, httparse having stopped at the request line.
            let end = [
                find(buf, HEAD_END).map(|i| i + HEAD_END.len()),
                find(buf, b"\n\n").map(|i| i + 2),
            ]
            .into_iter()
            .flatten()
            .min();
            let lines = buf[start..end.unwrap_or(buf.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            let fields = lines.saturating_sub(if end.is_some() { 2 } else { 1 });
            match end {
                _ if fields > limits.max_headers => Progress::Refused(Refusal::TooManyHeaders),
                Some(n) => Progress::Complete(n),
                None => Progress::NeedsPingora,
            }
        }
        Err(_) => Progress::Refused(Refusal::Malformed),
    };
    match state {
        Progress::Complete(n) if n > limits.max_header_bytes => {
            Progress::Refused(Refusal::HeadTooLarge)
        }
        Progress::Partial | Progress::NeedsPingora if buf.len() > limits.max_header_bytes => {
            Progress::Refused(Refusal::HeadTooLarge)
        }
        other => other,
    }
}

/// Reads one request head from `io`, starting with `prefix` (bytes a previous request's body
/// read went past). A `kept_alive` connection may sit idle for the idle timeout before its first
/// byte; the head must then be complete within the header timeout of that byte. A new
/// connection's head must be complete within the header timeout of now.
///
/// `stop` resolving ends the idle wait (the server is stopping: the client's next request goes
/// elsewhere); a request whose first byte has come is read and answered.
pub async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    limits: &ConnectionLimits,
    prefix: BytesMut,
    kept_alive: bool,
    stop: impl std::future::Future<Output = ()>,
) -> Head {
    let mut buf = prefix;
    if kept_alive && buf.is_empty() {
        buf.reserve(1024);
        let idle_until = Instant::now() + limits.idle_timeout;
        tokio::select! {
            biased;
            read = timeout_at(idle_until, io.read_buf(&mut buf)) => match read {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Head::Gone,
            },
            () = stop => return Head::Gone,
        }
    }
    let deadline = Instant::now() + limits.header_timeout;
    loop {
        if !buf.is_empty() {
            match progress(&buf, limits) {
                // Into an allocation of its own size: the head is kept for the request's life
                // (an event stream's: hours), the read buffer was sized for reading.
                Progress::Complete(_) => return Head::Read(BytesMut::from(&buf[..])),
                Progress::Refused(r) => return Head::Refused(r),
                Progress::Partial | Progress::NeedsPingora => {}
            }
        }
        buf.reserve(4096);
        match timeout_at(deadline, io.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            // Closed or broken: nobody to answer.
            Ok(_) => return Head::Gone,
            Err(_) if buf.is_empty() => return Head::Gone,
            Err(_) => return Head::Refused(Refusal::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    //! In paused time: a scripted client's pauses are the timing under test (the deadlines),
    //! and take no time to run.
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncWriteExt, DuplexStream};

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_request_line_bytes: 100,
            max_header_bytes: 1024,
            max_headers: 5,
        }
    }

    /// The server's end of a connection whose client, for each step, pauses the step's seconds
    /// and then writes its bytes; after the last step it stays connected and silent.
    fn client(steps: Vec<(u64, String)>) -> DuplexStream {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            for (pause, bytes) in steps {
                tokio::time::sleep(Duration::from_secs(pause)).await;
                if client.write_all(bytes.as_bytes()).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        server
    }

    /// A head read from a client that sends `steps`.
    async fn read(steps: Vec<(u64, String)>, kept_alive: bool) -> Head {
        let mut server = client(steps);
        let no_stop = std::future::pending();
        read_head(&mut server, &limits(), BytesMut::new(), kept_alive, no_stop).await
    }

    /// A head read from a client that sends `text` at once.
    async fn read_now(text: &str) -> Head {
        read(vec![(0, text.to_string())], false).await
    }

    fn at(pause: u64, text: &str) -> (u64, String) {
        (pause, text.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_sent_in_pieces_is_read_with_the_body_bytes_after_it() {
        let steps = vec![
            at(1, "POST /v1/calls HT"),
            at(1, "TP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"),
            at(1, "\r\n{}"),
        ];
        let Head::Read(buf) = read(steps, false).await else {
            panic!("not read")
        };
        assert!(buf.ends_with(b"\r\n\r\n{}"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_not_complete_within_the_header_timeout_is_refused() {
        let steps = vec![
            at(6, "GET / HTTP/1.1\r\nHost: x\r\n"),
            at(6, "X-Slow: 1\r\n"),
        ];
        let started = Instant::now();
        let head = read(steps, false).await;
        assert!(matches!(head, Head::Refused(Refusal::Timeout)), "{head:?}");
        // From the connection, not from the last byte.
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
        let started = Instant::now();
        let head = read(vec![], false).await;
        assert!(matches!(head, Head::Gone), "{head:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_waits_the_idle_timeout_then_the_header_timeout() {
        // First byte after 59 s of idleness, the rest 9 s later: read.
        let head = read(vec![at(59, "G"), at(9, "ET / HTTP/1.1\r\n\r\n")], true).await;
        assert!(matches!(head, Head::Read(_)), "{head:?}");
        // Idle past the idle timeout: closed, nothing to answer.
        let started = Instant::now();
        let head = read(vec![], true).await;
        assert!(matches!(head, Head::Gone), "{head:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_request_line_is_refused_before_it_ends() {
        let line = format!("GET /{} HTTP/1.1", "a".repeat(200));
        // Only the first 150 bytes are ever sent: no need to wait for the end of the line.
        let head = read_now(&line[..150]).await;
        assert!(
            matches!(head, Head::Refused(Refusal::LineTooLong)),
            "{head:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_or_crowded_head_is_refused() {
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "b".repeat(2000));
        let head = read_now(&big).await;
        assert!(
            matches!(head, Head::Refused(Refusal::HeadTooLarge)),
            "{head:?}"
        );
        let crowded = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(6));
        let head = read_now(&crowded).await;
        assert!(
            matches!(head, Head::Refused(Refusal::TooManyHeaders)),
            "{head:?}"
        );
        let five = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(5));
        let head = read_now(&five).await;
        assert!(matches!(head, Head::Read(_)), "{head:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_head_is_refused_and_an_unescaped_target_left_to_pingora() {
        let head = read_now("GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n").await;
        assert!(
            matches!(head, Head::Refused(Refusal::Malformed)),
            "{head:?}"
        );
        // A space in the target: httparse refuses the line, Pingora encodes it.
        let head = read_now("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(matches!(head, Head::Read(_)), "{head:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limits_hold_for_heads_only_pingora_reads() {
        // Empty lines first do not hide a long request line.
        let long = format!("\r\n\r\nGET /{} HTTP/1.1\r\n\r\n", "a".repeat(200));
        let head = read_now(&long).await;
        assert!(
            matches!(head, Head::Refused(Refusal::LineTooLong)),
            "{head:?}"
        );
        // A target httparse refuses still has its fields counted.
        let crowded = format!("GET /a b HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(6));
        let head = read_now(&crowded).await;
        assert!(
            matches!(head, Head::Refused(Refusal::TooManyHeaders)),
            "{head:?}"
        );
        // … and its head may end with bare line feeds.
        let head = read_now("GET /a b HTTP/1.1\nHost: x\n\n").await;
        assert!(matches!(head, Head::Read(_)), "{head:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_idle_wait_but_not_a_head_begun() {
        let stopped = async {};
        let mut idle = client(vec![]);
        let head = read_head(&mut idle, &limits(), BytesMut::new(), true, stopped).await;
        assert!(matches!(head, Head::Gone), "{head:?}");
        let mut begun = client(vec![at(0, "GET / HTTP/1.1\r\n"), at(1, "Host: x\r\n\r\n")]);
        let stopped = async {};
        let head = read_head(&mut begun, &limits(), BytesMut::new(), false, stopped).await;
        assert!(matches!(head, Head::Read(_)), "{head:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_closes_mid_head_is_gone() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"GET / HT").await.unwrap();
        drop(client);
        let no_stop = std::future::pending();
        let head = read_head(&mut server, &limits(), BytesMut::new(), false, no_stop).await;
        assert!(matches!(head, Head::Gone), "{head:?}");
    }
}
