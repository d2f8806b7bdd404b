//! Memory under abusive clients (issue 19): rounds of idle connections, slowloris headers,
//! clients that never read and 256 KB header floods leave the gateway's memory on a plateau —
//! later rounds do not grow it past the first ones — and normal requests are answered
//! throughout. A test binary of its own: the process's RSS is the gateway's and its simulators'
//! alone, with no other test running beside it.

mod common;

use callgate::server::RunningGateway;
use callgate_sim::{SimCluster, SimOptions};
use common::KEY;
use std::io::Write;
use std::net::TcpStream;

/// This process's resident set, in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn get(gw: &RunningGateway, path: &str) -> u16 {
    match ureq::get(&format!("http://{}{path}", gw.addr))
        .set("Authorization", &format!("Bearer {KEY}"))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}

/// One round of abuse: 240 connections held while 20 normal requests are answered, then closed.
fn round(gw: &RunningGateway) {
    let pipelined = format!(
        "GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    )
    .repeat(50);
    let flood = [
        b"GET / HTTP/1.1\r\nX-Flood: ".as_slice(),
        &[b'a'; 256 * 1024],
    ]
    .concat();
    let mut held = Vec::new();
    for i in 0..240 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = match i % 4 {
            0 => Ok(()),
            1 => s.write_all(b"GET /v1/providers HTTP/1.1\r\nHost: callgate\r\nX-Slow: a"),
            2 => s.write_all(pipelined.as_bytes()),
            _ => s.write_all(&flood),
        };
        held.push(s);
    }
    for _ in 0..20 {
        assert_eq!(get(gw, "/v1/providers"), 200);
    }
    drop(held);
    assert_eq!(get(gw, "/v1/providers"), 200);
}

#[test]
fn abusive_clients_leave_memory_on_a_plateau() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("no /proc: RSS not measured");
        return;
    }
    // No log capture here (the harness keeps every log line in memory): the RSS is the
    // gateway's and the simulators'.
    let sims = SimCluster::start(SimOptions::default());
    let gw = RunningGateway::start(common::load(&common::config_text(
        &sims,
        common::free_port(),
        "",
    )));
    for _ in 0..50 {
        assert_eq!(get(&gw, "/v1/calls?provider=zudu&limit=5"), 200);
    }
    let before = rss_kib();
    round(&gw);
    let first = rss_kib();
    let mut after = Vec::new();
    for _ in 0..6 {
        round(&gw);
        after.push(rss_kib());
    }
    eprintln!("RSS: {before} KiB before, {first} KiB after one round, then {after:?}");
    // The allocator settles within a couple of rounds; after that, memory the earlier rounds
    // needed is reused, not added to: rounds 4 to 7 stay within 16 MiB (or a quarter) of the
    // highest of rounds 1 to 3. A leak of the ~15 MB a round's header floods carry would be
    // ~60 MB over. (Measured over 25 rounds: 83 to 98 MB, no trend.)
    let plateau = first.max(after[0]).max(after[1]);
    let later = after[2..].iter().copied().max().unwrap_or(0);
    assert!(
        later <= plateau + (plateau / 4).max(16 * 1024),
        "RSS grew from a plateau of {plateau} KiB to {later} KiB"
    );
}
