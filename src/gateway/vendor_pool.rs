//! Idle keep-alive connections to vendors: one stack per upstream, newest on top.
//!
//! Pingora's client pool watches every idle connection with a task of its own: each release
//! spawns one, and each reuse wakes it to end it. For a gateway that sends one vendor request per
//! client request that is a task spawn and two wake-ups per request; replacing it with this stack
//! cut callgate's CPU per proxied GET by 8–12% (benches/README.md). What the watcher did is done
//! here when a connection is taken instead: a connection idle past the upstream's idle timeout is
//! closed, and one the vendor closed (or wrote to while idle) is found by a read that must not
//! complete, then dropped. A vendor closing a connection between that check and the request is
//! the race every keep-alive client has; the exchange retries reads on a reused connection for it.
//!
//! A sweep of every stack, at most every ten seconds on the next release, closes what expired
//! or what the vendor closed, also for upstreams nobody asks for any more (a provider removed or
//! moved by a config reload). Without any traffic nothing sweeps: up to
//! [`MAX_IDLE_PER_UPSTREAM`] vendor-closed sockets per upstream may wait for the next request
//! (Pingora's watcher closes them at once). Connections are closed after the lock is released.
//!
//! Unlike Pingora's `reused_stream`, a taken stream's peer address is not compared with the
//! peer's (`getpeername`, a syscall per request): upstreams are keyed by Pingora's own 64-bit
//! `reuse_hash` of the peer, and a gateway has a handful of upstreams.
//!
//! Only HTTP/1 connections live here; an HTTP/2 session goes back to Pingora's connector.

use pingora::protocols::Stream;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
// tokio's clock, so the idle timeouts can be tested on a paused clock.
use tokio::time::Instant;

/// Idle connections kept per upstream; the oldest is closed to make room. (Pingora's pool keeps
/// 128 in all; a gateway has few upstreams, each worth its own warm connections.)
const MAX_IDLE_PER_UPSTREAM: usize = 128;

/// How often a release also closes the expired connections of every other upstream.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

struct Idle {
    stream: Stream,
    /// When the upstream's idle timeout closes it (never without one).
    expires: Option<Instant>,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| now > at)
    }
}

struct Stacks {
    by_upstream: HashMap<u64, VecDeque<Idle>>,
    swept: Instant,
}

/// Idle vendor connections by upstream (Pingora's `Peer::reuse_hash`: address, TLS settings, SNI).
pub struct IdlePool {
    stacks: Mutex<Stacks>,
    sweep_every: Duration,
}

impl Default for IdlePool {
    fn default() -> Self {
        IdlePool::with_sweep_every(SWEEP_EVERY)
    }
}

impl IdlePool {
    fn with_sweep_every(sweep_every: Duration) -> IdlePool {
        IdlePool {
            stacks: Mutex::new(Stacks {
                by_upstream: HashMap::new(),
                swept: Instant::now(),
            }),
            sweep_every,
        }
    }

    /// The most recently used idle connection to `upstream` that is still open, if any.
    pub fn take(&self, upstream: u64) -> Option<Stream> {
        loop {
            let idle = {
                let mut stacks = self.lock();
                let stack = stacks.by_upstream.get_mut(&upstream)?;
                let idle = stack.pop_back()?;
                if idle.expired(Instant::now()) {
                    // Everything below the top is older still: close them all, unlocked.
                    let expired = std::mem::take(stack);
                    drop(stacks);
                    drop(expired);
                    return None;
                }
                idle
            };
            let mut stream = idle.stream;
            if still_open(&mut stream) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for the next request to `upstream`, closing connections idle past their
    /// timeout and the oldest one when the stack is full.
    pub fn put(&self, upstream: u64, stream: Stream, idle_timeout: Option<Duration>) {
        let now = Instant::now();
        let mut closing: Vec<Idle> = Vec::new();
        let mut stacks = self.lock();
        if now.duration_since(stacks.swept) > self.sweep_every {
            stacks.swept = now;
            stacks.by_upstream.retain(|_, stack| {
                for mut idle in std::mem::take(stack) {
                    if !idle.expired(now) && still_open(&mut idle.stream) {
                        stack.push_back(idle);
                    } else {
                        closing.push(idle);
                    }
                }
                !stack.is_empty()
            });
        }
        let stack = stacks.by_upstream.entry(upstream).or_default();
        while stack.front().is_some_and(|idle| idle.expired(now)) {
            closing.extend(stack.pop_front());
        }
        if stack.len() >= MAX_IDLE_PER_UPSTREAM {
            closing.extend(stack.pop_front());
        }
        stack.push_back(Idle {
            stream,
            expires: idle_timeout.map(|t| now + t),
        });
        drop(stacks);
        drop(closing);
    }

    #[cfg(test)]
    fn idle_count(&self, upstream: u64) -> usize {
        self.lock()
            .by_upstream
            .get(&upstream)
            .map_or(0, VecDeque::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stacks> {
        // The stacks hold no invariant a panicking holder could break halfway.
        self.stacks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An idle HTTP/1 connection has nothing to read: a read that completes means the vendor closed
/// it (end of stream), broke it (an error) or sent bytes nobody asked for. Either way it cannot
/// carry a request. The read is polled once and never waits; it runs outside tokio's cooperative
/// budget, which would otherwise answer "pending" for a task that used its budget up without
/// looking at the socket (as Pingora's own check does).
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let read = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut buf));
    let mut read = std::pin::pin!(tokio::task::unconstrained(read));
    let mut cx = Context::from_waker(Waker::noop());
    matches!(read.as_mut().poll(&mut cx), Poll::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: our side as a Pingora stream, and the vendor's side.
    async fn pair(listener: &TcpListener) -> (Stream, TcpStream) {
        let (ours, theirs, _) = watched_pair(listener).await;
        (ours, theirs)
    }

    /// [`pair`], plus a watch on our side: a duplicate of its descriptor (a descriptor of its
    /// own, so closing either closes nothing of the other), to see what arrived without
    /// reading it.
    async fn watched_pair(listener: &TcpListener) -> (Stream, TcpStream, std::net::TcpStream) {
        let ours = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (theirs, _) = listener.accept().await.unwrap();
        let watch = std::net::TcpStream::from(ours.as_fd().try_clone_to_owned().unwrap());
        let ours: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(ours));
        (ours, theirs, watch)
    }

    /// Waits (10 s at most) until the vendor's close or bytes have reached our side of the
    /// connection, and tokio knows it.
    async fn arrived(watch: &std::net::TcpStream) {
        // In the kernel: a peek that does not block (the descriptor is non-blocking, as tokio
        // set it) sees them.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while watch.peek(&mut [0u8; 1]).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing arrived from the vendor"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Known to tokio: a read of our side answers "pending" until tokio's reactor has polled
        // epoll since, which this test's current-thread runtime does whenever the test waits.
        // Once is enough, however short: the event is already there to be reported.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    #[tokio::test]
    async fn reuses_the_newest_open_connection_and_drops_closed_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = IdlePool::default();
        let (a, vendor_a) = pair(&listener).await;
        let (b, vendor_b, b_watch) = watched_pair(&listener).await;
        let (a_fd, b_fd) = (a.id(), b.id());
        pool.put(7, a, None);
        pool.put(7, b, None);
        assert_eq!(pool.idle_count(7), 2);
        assert!(pool.take(8).is_none(), "another upstream has none");

        // The vendor closes the newest connection while it is idle: it is skipped and dropped.
        drop(vendor_b);
        arrived(&b_watch).await;
        let taken = pool.take(7).expect("the older, open connection");
        assert_eq!(taken.id(), a_fd, "not the closed one ({b_fd})");
        assert_eq!(pool.idle_count(7), 0);
        drop(vendor_a);
    }

    #[tokio::test]
    async fn a_connection_the_vendor_wrote_to_while_idle_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = IdlePool::default();
        let (a, mut vendor, a_watch) = watched_pair(&listener).await;
        pool.put(1, a, None);
        vendor.write_all(b"HTTP/1.1 408 \r\n\r\n").await.unwrap();
        arrived(&a_watch).await;
        assert!(pool.take(1).is_none());
    }

    #[tokio::test]
    async fn idle_past_the_timeout_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = IdlePool::default();
        let (a, _vendor_a) = pair(&listener).await;
        let (b, _vendor_b) = pair(&listener).await;
        let timeout = Some(Duration::from_millis(30));
        pool.put(1, a, timeout);
        // The timeout passes on tokio's paused clock: exactly, whatever the machine's speed.
        tokio::time::pause();
        tokio::time::advance(Duration::from_millis(60)).await;
        pool.put(1, b, timeout);
        assert_eq!(pool.idle_count(1), 1, "the expired one was closed on put");
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(pool.take(1).is_none());
        assert_eq!(pool.idle_count(1), 0);
    }

    #[tokio::test]
    async fn a_sweep_closes_expired_connections_of_upstreams_no_longer_asked_for() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = IdlePool::with_sweep_every(Duration::ZERO);
        let (gone, _vendor_gone) = pair(&listener).await;
        let (live, _vendor_live) = pair(&listener).await;
        let (closed, vendor_closed, closed_watch) = watched_pair(&listener).await;
        pool.put(1, gone, Some(Duration::from_millis(30)));
        pool.put(3, closed, None);
        drop(vendor_closed);
        arrived(&closed_watch).await;
        // The 30 ms timeout passes on tokio's paused clock.
        tokio::time::pause();
        tokio::time::advance(Duration::from_millis(60)).await;
        pool.put(2, live, Some(Duration::from_secs(60)));
        assert_eq!(pool.idle_count(1), 0, "expired: swept");
        assert_eq!(pool.idle_count(3), 0, "closed by the vendor: swept");
        assert_eq!(pool.idle_count(2), 1);
    }

    #[tokio::test]
    async fn keeps_at_most_the_bound_per_upstream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = IdlePool::default();
        let mut vendors = Vec::new();
        for _ in 0..MAX_IDLE_PER_UPSTREAM + 3 {
            let (s, v) = pair(&listener).await;
            pool.put(1, s, None);
            vendors.push(v);
        }
        assert_eq!(pool.idle_count(1), MAX_IDLE_PER_UPSTREAM);
    }
}
