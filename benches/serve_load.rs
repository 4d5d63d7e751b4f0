//! Load generator for `bnn serve` (and its peer): `concurrency` threads,
//! each on one keep-alive HTTP/1.1 connection, post the same body in a loop
//! for `duration` seconds (or `requests` in all), and the run reports
//! requests/s, images/s, latency percentiles and errors as one JSON line.
//!
//! Blocking threads rather than an async client: at most a few hundred
//! connections, and a thread per connection measures each request's whole
//! round trip without a scheduler in between. Loopback only: the target
//! must be a 127.x address.
//!
//! ```text
//! cargo bench --bench serve_load -- --url http://127.0.0.1:8080/v1/models/m/classify \
//!     --body body.json --concurrency 64 --duration 10 [--images 1] [--rss-pid PID]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    host: String,
    path: String,
    body: Vec<u8>,
    content_type: String,
    concurrency: usize,
    duration: f64,
    requests: u64,
    images: u64,
    rss_pid: Option<u32>,
}

fn usage(msg: &str) -> ! {
    eprintln!("serve_load: {msg}");
    eprintln!("usage: serve_load --url URL --body FILE [--content-type T] [--concurrency N] [--duration S] [--requests N] [--images PER_REQUEST] [--rss-pid PID]");
    std::process::exit(2);
}

fn options() -> Options {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut o = Options {
        host: String::new(),
        path: String::new(),
        body: Vec::new(),
        content_type: "application/json".into(),
        concurrency: 1,
        duration: 5.0,
        requests: u64::MAX,
        images: 1,
        rss_pid: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = |v: &str| {
            v.parse::<f64>()
                .unwrap_or_else(|_| usage(&format!("{flag} {v}: not a number")))
        };
        match flag.as_str() {
            "--url" => {
                let rest = value
                    .strip_prefix("http://")
                    .unwrap_or_else(|| usage("only http:// URLs"));
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                if !host.starts_with("127.") && !host.starts_with("localhost") {
                    usage("the target must be on loopback (127.x or localhost)");
                }
                o.host = host.to_string();
                o.path = if path.is_empty() {
                    "/".into()
                } else {
                    path.to_string()
                };
            }
            "--body" => {
                o.body = std::fs::read(&value).unwrap_or_else(|e| usage(&format!("{value}: {e}")))
            }
            "--content-type" => o.content_type = value,
            "--concurrency" => o.concurrency = number(&value) as usize,
            "--duration" => o.duration = number(&value),
            "--requests" => o.requests = number(&value) as u64,
            "--images" => o.images = number(&value) as u64,
            "--rss-pid" => o.rss_pid = Some(number(&value) as u32),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if o.host.is_empty() {
        usage("--url is required");
    }
    if o.concurrency == 0 || o.concurrency > 1024 {
        usage("--concurrency must be 1 to 1024");
    }
    o
}

/// Reads one answer from a keep-alive connection; its status.
fn read_answer(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::other("connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(status)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn main() {
    let o = Arc::new(options());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        o.path,
        o.host,
        o.content_type,
        o.body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&o.body);
    let request = Arc::new(request);
    let started = Instant::now();
    let workers: Vec<_> = (0..o.concurrency)
        .map(|_| {
            let (o, stop, sent, latencies, errors, request) = (
                o.clone(),
                stop.clone(),
                sent.clone(),
                latencies.clone(),
                errors.clone(),
                request.clone(),
            );
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
                while !stop.load(Ordering::Relaxed) {
                    if sent.fetch_add(1, Ordering::Relaxed) >= o.requests {
                        break;
                    }
                    if conn.is_none() {
                        match TcpStream::connect(&o.host) {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                let r = BufReader::new(s.try_clone().expect("clone socket"));
                                conn = Some((s, r));
                            }
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        }
                    }
                    let (s, r) = conn.as_mut().expect("connected");
                    let t = Instant::now();
                    let ok = s.write_all(&request).and_then(|_| read_answer(r));
                    match ok {
                        Ok(200) => mine.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Ok(_) | Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    let mut rss = Vec::new();
    let deadline = started + Duration::from_secs_f64(o.duration);
    while Instant::now() < deadline && workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(250));
        if let Some(pid) = o.rss_pid {
            if let Some(kib) = rss_kib(pid) {
                rss.push((started.elapsed().as_secs_f64(), kib));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    let n = lat.len() as f64;
    let mut out = format!(
        "{{\"concurrency\": {}, \"seconds\": {secs:.2}, \"ok\": {}, \"errors\": {}, \"req_per_s\": {:.0}, \"images_per_s\": {:.0}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}",
        o.concurrency,
        lat.len(),
        errors.load(Ordering::Relaxed),
        n / secs,
        n * o.images as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    if !rss.is_empty() {
        // Resident memory averaged over the second minute and the last
        // minute of the run (or over its second and last tenths when
        // shorter): a soak is flat when the two agree.
        let (a, b) = if secs >= 180.0 {
            ((60.0, 120.0), (secs - 60.0, secs))
        } else {
            ((secs * 0.1, secs * 0.2), (secs * 0.9, secs))
        };
        let mean = |(from, to): (f64, f64)| {
            let v: Vec<u64> = rss
                .iter()
                .filter(|(t, _)| *t >= from && *t <= to)
                .map(|r| r.1)
                .collect();
            v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
        };
        out.push_str(&format!(
            ", \"rss_early_kib\": {:.0}, \"rss_late_kib\": {:.0}",
            mean(a),
            mean(b)
        ));
    }
    out.push('}');
    println!("{out}");
}
