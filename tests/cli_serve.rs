//! `bnn serve` end to end, at small scale: answers that match the library,
//! each fault answered with its status and a JSON error, keys, reload under
//! load with a corrupt file, and SIGTERM under load losing no request.
//!
//! The client is a few lines of HTTP/1.1 over `TcpStream`, so that a test
//! can also misbehave (cut a body short, hang up, send headers slowly) in
//! ways an HTTP library would not allow.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bnn_testkit::npz::npy;
use common::{arg, bnn, first_test_images, gray_png, library_scores, parse_csv, root, run};

/// A running `bnn serve` on an ephemeral port; its stderr is collected.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(models: &Path, extra: &[&str]) -> Server {
        let mut extra = extra.to_vec();
        if !extra.contains(&"--bind") {
            extra.extend(["--bind", "127.0.0.1:0"]);
        }
        let mut child = bnn()
            .arg("serve")
            .arg(models)
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bnn serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("bnn serve did not start: {}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once `ready` holds for it (the server writes its log a few
    /// milliseconds behind its answers), or as it is after 10 s.
    fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if ready(&log) || Instant::now() >= until {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        request(&self.addr, "GET", path, headers, b"")
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        request(&self.addr, "POST", path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The JSON error of a failed request, checked to be one.
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:?}");
        let v = self.json();
        let e = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {v}"));
        assert!(!e.is_empty() && e.len() <= 300 && !e.contains('\n'), "{e}");
        e.to_string()
    }
}

/// Parses a whole answer (the connection was closed after it).
fn parse(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw[split + 4..].to_vec();
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if length.is_some_and(|n| n != body.len()) {
        return None;
    }
    Some(Answer { status, head, body })
}

fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(raw)
}

fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let raw = send(addr, method, path, headers, body).expect("request");
    parse(&raw).unwrap_or_else(|| panic!("not an HTTP answer: {}", String::from_utf8_lossy(&raw)))
}

/// Reads one whole answer from `s` (by its Content-Length, so the
/// connection may stay open), waiting at most `within`.
fn read_answer(s: &mut TcpStream, within: Duration) -> std::io::Result<Answer> {
    let until = Instant::now() + within;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(a) = parse(&raw) {
            return Ok(a);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf)? {
            0 => {
                return Err(std::io::Error::other(format!(
                    "closed before a whole answer: {}",
                    String::from_utf8_lossy(&raw)
                )))
            }
            n => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends a request's head and the first `sent` bytes of a `total`-byte
/// body, then nothing more: a client that is slow to upload.
fn slow_upload(addr: &str, sent: &[u8], total: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!("POST {CLASSIFY} HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(sent).unwrap();
    s
}

fn weights(name: &str) -> PathBuf {
    root().join("weights").join(name)
}

fn images_json(pixels: &[u8], len: usize) -> Vec<u8> {
    let images: Vec<Vec<u8>> = pixels.chunks(len).map(<[u8]>::to_vec).collect();
    serde_json::to_vec(&serde_json::json!({ "images": images })).unwrap()
}

const CLASSIFY: &str = "/v1/models/mnist-512/classify";

#[test]
fn answers_match_the_library_in_every_body_form() {
    let server = Server::start(&weights("mnist-512.bnn"), &[]);
    let model = bnn_core::format::load(&weights("mnist-512.bnn"))
        .unwrap()
        .model;
    let images = first_test_images(5);
    let want = library_scores(&model, &images.pixels);

    let listed = server.get("/v1/models", &[]).json();
    assert_eq!(listed["models"][0]["name"], "mnist-512");
    let info = server.get("/v1/models/mnist-512", &[]).json();
    assert_eq!(info["shape"], serde_json::json!([784, 512, 10]));
    assert_eq!(info["input"]["encoding"], "binary (pixel >= 128 is +1)");
    assert_eq!(
        info["bytes"],
        std::fs::metadata(weights("mnist-512.bnn")).unwrap().len()
    );

    let check = |a: Answer| {
        assert_eq!(a.status, 200, "{a:?}");
        let v = a.json();
        assert_eq!(v["model"], "mnist-512");
        let classes: Vec<usize> = serde_json::from_value(v["classes"].clone()).unwrap();
        assert_eq!(classes, want.classes);
        let scores: Vec<Vec<f32>> = serde_json::from_value(v["scores"].clone()).unwrap();
        assert_eq!(scores.concat(), want.scores);
        assert!(v.get("labels").is_none(), "the model has no class names");
    };
    check(server.post(CLASSIFY, &[], &images_json(&images.pixels, 784)));
    use base64::Engine as _;
    let b64: Vec<String> = images
        .pixels
        .chunks(784)
        .map(|i| base64::engine::general_purpose::STANDARD.encode(i))
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "images_b64": b64 })).unwrap();
    check(server.post(CLASSIFY, &[], &body));
    let array = npy("|u1", "(5, 28, 28)", &images.pixels);
    check(server.post(CLASSIFY, &[("Content-Type", "application/x-npy")], &array));

    // Accept: application/x-npy answers the records classify --format npy writes.
    let a = server.post(CLASSIFY, &[("Accept", "application/x-npy")], &array);
    assert_eq!(a.status, 200);
    let mut expected = bnn_io::records::npy_header(5, 10, true);
    for i in 0..5 {
        bnn_io::records::npy_row(&mut expected, want.classes[i], want.scores_of(i), true);
    }
    assert_eq!(a.body, expected);

    // One PGM image.
    let mut pgm = b"P5\n28 28\n255\n".to_vec();
    pgm.extend_from_slice(&images.pixels[..784]);
    let v = server
        .post(
            CLASSIFY,
            &[("Content-Type", "image/x-portable-graymap")],
            &pgm,
        )
        .json();
    assert_eq!(v["classes"][0], want.classes[0]);
}

#[test]
fn each_bad_request_gets_its_status_and_a_json_error() {
    let server = Server::start(
        &weights("mnist-512.bnn"),
        &["--max-body", "20000", "--max-images", "3"],
    );
    let e = server
        .post(CLASSIFY, &[], b"{\"images\": [[1, 2,")
        .error(400);
    assert!(e.contains("invalid JSON"), "{e}");
    let e = server
        .post(CLASSIFY, &[], b"{\"images\": [[300]]}")
        .error(400);
    assert!(e.contains("300"), "{e}");
    let e = server
        .post(CLASSIFY, &[], b"{\"images\": [[1, 2, 3]]}")
        .error(400);
    assert!(
        e.contains("images[0] has 3 values, where the model takes 784"),
        "{e}"
    );
    let e = server
        .post(CLASSIFY, &[], &npy("<i4", "(1, 784)", &[0; 784 * 4]))
        .error(400);
    assert!(e.contains("dtype int32"), "{e}");
    let e = server
        .post(CLASSIFY, &[], &npy("|u1", "(2, 700)", &[0; 1400]))
        .error(400);
    assert!(
        e.contains("shape (2, 700)") && e.contains("(N, 784)"),
        "{e}"
    );
    let e = server
        .post(CLASSIFY, &[], &npy("|u1", "(4, 784)", &[0; 10]))
        .error(400);
    assert!(e.contains("invalid .npy"), "{e}");
    let e = server
        .post(CLASSIFY, &[], &npy("|u1", "(4, 784)", &[0; 4 * 784]))
        .error(413);
    assert!(e.contains("4 images") && e.contains("3 accepted"), "{e}");
    let e = server.post(CLASSIFY, &[], &vec![b' '; 20001]).error(413);
    assert!(e.contains("20000 bytes"), "{e}");
    let e = server
        .post(CLASSIFY, &[], b"{\"features\": [[1.0]]}")
        .error(400);
    assert!(e.contains("stores no feature encoding"), "{e}");
    let e = server
        .post("/v1/models/nope/classify", &[], b"{}")
        .error(404);
    assert!(e.contains("\"nope\""), "{e}");
    server.get(CLASSIFY, &[]).error(405);
    server.get("/elsewhere", &[]).error(404);
    // The server is still up and counted every answer by status.
    let metrics = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    assert!(
        metrics.contains("bnn_serve_requests_total{code=\"400\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bnn_serve_requests_total{code=\"413\"} 2"),
        "{metrics}"
    );
}

#[test]
fn a_truncated_body_gets_400_and_a_hang_up_harms_no_one() {
    let server = Server::start(&weights("mnist-512.bnn"), &[]);
    // Content-Length promises more than is sent, then the client stops sending.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(b"POST /v1/models/mnist-512/classify HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{\"images\": [[")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let a = parse(&raw).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&raw)));
    let e = a.error(400);
    assert!(e.contains("cut short"), "{e}");
    // A client that hangs up mid-body, and one that hangs up while its
    // request is being classified.
    for cut in [10, 0] {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let body = npy("|u1", "(2000, 784)", &vec![7; 2000 * 784]);
        let head = format!(
            "POST {CLASSIFY} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body[..if cut > 0 { cut } else { body.len() }])
            .unwrap();
        drop(s);
    }
    let ok = server.post(CLASSIFY, &[], &npy("|u1", "(1, 784)", &[0; 784]));
    assert_eq!(ok.status, 200);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Raises this process's soft limit on open files to at least `need` (the
/// server started after it inherits the limit), or fails saying how.
fn raise_open_files(need: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|n| n >= need) {
        return;
    }
    assert!(
        limit.maximum.is_none_or(|n| n >= need),
        "this test opens 1,000 connections and needs {need} open files; the hard limit is {:?}: raise it (ulimit -Hn {need})",
        limit.maximum
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(need),
            maximum: limit.maximum,
        },
    )
    .expect("raise the open-file limit");
}

#[test]
fn a_thousand_slow_clients_are_closed_at_the_header_timeout_without_blocking_others() {
    // 1,000 client sockets here and 1,000 in the server, with room for
    // the tests running beside this one.
    raise_open_files(4096);
    let server = Server::start(&weights("mnist-512.bnn"), &["--header-timeout-ms", "3000"]);
    let mut slow = Vec::new();
    let first_connect = Instant::now();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.write_all(b"POST /v1/models/mnist-512/classify HTTP/1.1\r\nHost: t\r\n")
            .unwrap();
        slow.push(s);
    }
    let opened = Instant::now();
    // Answered while the 1,000 are open: well before their timeout.
    let ok = server.post(CLASSIFY, &[], &npy("|u1", "(1, 784)", &[0; 784]));
    assert_eq!(ok.status, 200);
    assert!(
        opened.elapsed() < Duration::from_secs(2),
        "{:?}",
        opened.elapsed()
    );
    // The server holds every slow connection it has not yet timed out:
    // those open now, with this request's own (and perhaps the last
    // one's, whose close it may not have counted yet), and those already
    // closed (on a machine slow enough that connecting took seconds).
    let open = open_connections(&server);
    let closed = slow.iter().filter(|s| is_closed(s)).count() as u64;
    assert!(
        open + closed >= 1001 && open <= 1002,
        "{open} open and {closed} closed of 1,000 slow connections, {:?} after the first",
        first_connect.elapsed()
    );
    // Past the header timeout, the server has closed every slow
    // connection without an answer (hyper sends none for a head that
    // never ended): a read sees end of file, or a reset.
    let until = opened + Duration::from_secs(3 + 5);
    for (i, s) in slow.iter_mut().enumerate() {
        let left = until.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("slow connection {i} still open 5 s past the header timeout: {e}"),
        }
    }
    let mut open = open_connections(&server);
    for _ in 0..20 {
        if open == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        open = open_connections(&server);
    }
    assert_eq!(open, 1, "connections open past the header timeout");
}

/// Whether the server has closed `s` (end of file or a reset), without
/// waiting.
fn is_closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let closed = match s.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => panic!("an answer to a request whose head never ended"),
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// `bnn_serve_connections` from `/metrics` (the asking one included).
fn open_connections(server: &Server) -> u64 {
    let metrics = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("bnn_serve_connections "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection count in {metrics}"))
}

#[test]
fn a_slow_upload_gets_408_and_a_slow_answer_504() {
    let body = npy("|u1", "(2, 784)", &[0; 2 * 784]);
    // The body stops half way: the body timeout (before the deadline).
    let server = Server::start(
        &weights("mnist-512.bnn"),
        &["--body-timeout-ms", "300", "--deadline-ms", "20000"],
    );
    let started = Instant::now();
    let mut s = slow_upload(&server.addr, &body[..800], body.len());
    let e = read_answer(&mut s, Duration::from_secs(15))
        .unwrap()
        .error(408);
    assert_eq!(
        e,
        "the body did not arrive within 300ms (--body-timeout-ms)"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    drop(server);
    // The same with the deadline first: 504, whatever the request was
    // waiting for.
    let server = Server::start(
        &weights("mnist-512.bnn"),
        &["--body-timeout-ms", "20000", "--deadline-ms", "300"],
    );
    let mut s = slow_upload(&server.addr, &body[..800], body.len());
    let e = read_answer(&mut s, Duration::from_secs(15))
        .unwrap()
        .error(504);
    assert_eq!(e, "not answered within the 300ms deadline (--deadline-ms)");
    // Others are served meanwhile and after.
    assert_eq!(server.post(CLASSIFY, &[], &body).status, 200);
    let metrics = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    assert!(
        metrics.contains("bnn_serve_requests_total{code=\"504\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    // One engine thread and room for two 50-image requests: 16 clients
    // posting at once overflow it.
    let server = Server::start(
        &weights("mnist-cnn-small.bnn"),
        &["--threads", "1", "--max-queue", "100"],
    );
    let body = npy("|u1", "(50, 28, 28)", &vec![9; 50 * 784]);
    let path = "/v1/models/mnist-cnn-small/classify";
    let stop = Arc::new(AtomicBool::new(false));
    let refused: Arc<Mutex<Option<Answer>>> = Arc::default();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (addr, body, stop, refused) = (
                server.addr.clone(),
                body.clone(),
                stop.clone(),
                refused.clone(),
            );
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(30);
                let mut other = Vec::new();
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    let a = request(&addr, "POST", path, &[], &body);
                    match a.status {
                        200 => {}
                        503 => {
                            *refused.lock().unwrap() = Some(a);
                            stop.store(true, Ordering::SeqCst);
                        }
                        _ => other.push(format!("{a:?}")),
                    }
                }
                other
            })
        })
        .collect();
    for c in clients {
        let other = c.join().unwrap();
        assert!(other.is_empty(), "{other:?}");
    }
    let a = refused
        .lock()
        .unwrap()
        .take()
        .expect("no 503 from 16 clients on a queue of 100 images");
    let head = a.head.to_ascii_lowercase();
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    let e = a.error(503);
    assert_eq!(
        e,
        "the queue of model \"mnist-cnn-small\" is full (100 images, --max-queue): retry shortly"
    );
    // The queue drained: the server answers again.
    let small = npy("|u1", "(1, 28, 28)", &[0; 784]);
    assert_eq!(server.post(path, &[], &small).status, 200);
}

#[test]
fn past_the_connection_cap_a_client_waits_until_one_closes() {
    let server = Server::start(&weights("mnist-512.bnn"), &["--max-connections", "2"]);
    // Two keep-alive connections, each answered once and held open.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let a = read_answer(&mut s, Duration::from_secs(10)).unwrap();
            assert_eq!(a.status, 200, "{a:?}");
            s
        })
        .collect();
    // A third is not served while they stay open...
    let mut third = TcpStream::connect(&server.addr).unwrap();
    third
        .write_all(b"GET /v1/models HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    match read_answer(&mut third, Duration::from_millis(800)) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) => {}
        other => panic!("served past --max-connections 2: {other:?}"),
    }
    // ...and is served as soon as one of them closes.
    drop(held.pop());
    let a = read_answer(&mut third, Duration::from_secs(10)).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["models"][0]["name"], "mnist-512");
    // The one still held is still served.
    let s = &mut held[0];
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(s, Duration::from_secs(10)).unwrap().status, 200);
}

#[test]
fn png_and_pgm_bodies_classify_like_the_library_and_bad_ones_get_400() {
    let server = Server::start(&weights("mnist-512.bnn"), &[]);
    let model = bnn_core::format::load(&weights("mnist-512.bnn"))
        .unwrap()
        .model;
    let images = first_test_images(2);
    let want = library_scores(&model, &images.pixels);
    let mut pgm = b"P5\n28 28\n255\n".to_vec();
    pgm.extend_from_slice(&images.pixels[784..]);
    for (i, body) in [(0, gray_png(28, 28, &images.pixels[..784])), (1, pgm)] {
        let a = server.post(CLASSIFY, &[], &body);
        assert_eq!(a.status, 200, "{a:?}");
        let v = a.json();
        assert_eq!(v["classes"], serde_json::json!([want.classes[i]]));
        let scores: Vec<Vec<f32>> = serde_json::from_value(v["scores"].clone()).unwrap();
        assert_eq!(scores, [want.scores_of(i).to_vec()]);
    }
    let e = server
        .post(CLASSIFY, &[], &gray_png(27, 28, &[0; 27 * 28]))
        .error(400);
    assert_eq!(e, "a 27x28 image, where the model takes 784 pixels");
    let png = gray_png(28, 28, &images.pixels[..784]);
    let e = server.post(CLASSIFY, &[], &png[..60]).error(400);
    assert!(e.starts_with("invalid PNG: "), "{e}");
    let mut pgm = b"P5\n28 27\n255\n".to_vec();
    pgm.extend_from_slice(&[0; 28 * 27]);
    let e = server.post(CLASSIFY, &[], &pgm).error(400);
    assert_eq!(e, "a 28x27 image, where the model takes 784 pixels");
    let e = server
        .post(CLASSIFY, &[], b"P5\n28 28\n255\nnot 784 pixels")
        .error(400);
    assert!(e.starts_with("invalid PGM: "), "{e}");
}

/// A 10-class model over 30 raw features, thermometer-coded in 4 levels
/// (120 inputs), saved as `dir/feat.bnn`; and 6 rows of features.
fn feature_model(dir: &Path) -> (PathBuf, Vec<Vec<f32>>) {
    let x: Vec<f32> = (0..40 * 30)
        .map(|i| ((i * 7919) % 23) as f32 * 0.5 - 3.0)
        .collect();
    let model = bnn_testkit::models::random_model(
        &mut bnn_testkit::models::rng(3),
        &[120, 32, 10],
        bnn_core::DecisionRule::Scores,
        128,
    )
    .with_feature_encoding(bnn_core::FeatureEncoding::fit_thermometer(&x, 30, 4).unwrap())
    .unwrap();
    let path = dir.join("feat.bnn");
    bnn_core::format::save(&model, "", &path).unwrap();
    let rows = x.chunks(30).take(6).map(<[f32]>::to_vec).collect();
    (path, rows)
}

#[test]
fn features_in_json_and_npy_are_encoded_as_classify_encodes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (model, rows) = feature_model(dir.path());
    // What `bnn classify` answers for the same rows, from a CSV.
    let mut csv: Vec<String> = vec![(0..30)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(",")];
    csv.extend(rows.iter().map(|r| {
        r.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }));
    let csv_path = dir.path().join("rows.csv");
    std::fs::write(&csv_path, csv.join("\n") + "\n").unwrap();
    let want = parse_csv(run(["classify", &arg(&model), &arg(&csv_path)]).ok());
    assert_eq!(want.len(), 6);

    let server = Server::start(&model, &[]);
    let path = "/v1/models/feat/classify";
    let check = |a: Answer| {
        assert_eq!(a.status, 200, "{a:?}");
        let v = a.json();
        let classes: Vec<usize> = serde_json::from_value(v["classes"].clone()).unwrap();
        let scores: Vec<Vec<f32>> = serde_json::from_value(v["scores"].clone()).unwrap();
        assert_eq!(classes, want.iter().map(|r| r.class).collect::<Vec<_>>());
        assert_eq!(
            scores,
            want.iter().map(|r| r.scores.clone()).collect::<Vec<_>>()
        );
    };
    let json = serde_json::to_vec(&serde_json::json!({ "features": rows })).unwrap();
    check(server.post(path, &[], &json));
    let flat: Vec<f32> = rows.concat();
    let f4: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    check(server.post(path, &[], &npy("<f4", "(6, 30)", &f4)));
    let f8: Vec<u8> = flat
        .iter()
        .flat_map(|&v| f64::from(v).to_le_bytes())
        .collect();
    check(server.post(path, &[], &npy("<f8", "(6, 30)", &f8)));

    let e = server
        .post(path, &[], b"{\"features\": [[1.0, 2.0]]}")
        .error(400);
    assert_eq!(e, "features[0] has 2 values, where the encoding takes 30");
    let e = server
        .post(path, &[], &npy("<f4", "(2, 15)", &f4[..2 * 15 * 4]))
        .error(400);
    assert_eq!(
        e,
        "float array of shape (2, 15), where the encoding takes (N, 30)"
    );
    let info = server.get("/v1/models/feat", &[]).json();
    assert_eq!(info["features"], 30);
}

#[test]
fn keys_are_required_compared_whole_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "  first-secret-key \n\n\tsecond-secret-key\n").unwrap();
    let server = Server::start(
        &weights("mnist-512.bnn"),
        &["--api-key-file", keys.to_str().unwrap()],
    );
    assert_eq!(server.get("/healthz", &[]).status, 200);
    let denied = server.get("/v1/models", &[]);
    let head = denied.head.to_ascii_lowercase();
    assert!(head.contains("www-authenticate: bearer"), "{denied:?}");
    let e = denied.error(401);
    assert!(e.contains("Authorization"), "{e}");
    server
        .get(
            "/v1/models",
            &[("Authorization", "Bearer first-secret-kez")],
        )
        .error(401);
    server
        .get("/metrics", &[("Authorization", "Bearer first-secret-key2")])
        .error(401);
    server
        .get("/v1/models", &[("Authorization", "first-secret-key")])
        .error(401);
    let body = npy("|u1", "(1, 784)", &[0; 784]);
    server.post(CLASSIFY, &[], &body).error(401);
    for key in ["first-secret-key", "second-secret-key"] {
        let auth = format!("Bearer {key}");
        let a = server.post(CLASSIFY, &[("Authorization", &auth)], &body);
        assert_eq!(a.status, 200, "{a:?}");
    }
    let log = server.log_when(|log| log.matches(" 401 ").count() >= 5);
    assert!(!log.contains("secret"), "{log}");
    assert_eq!(log.matches(" 401 ").count(), 5, "{log}");
}

#[test]
fn a_public_bind_without_keys_warns() {
    let server = Server::start(&weights("mnist-512.bnn"), &["--bind", "0.0.0.0:0"]);
    assert!(
        server
            .log()
            .contains("warning: listening on 0.0.0.0:0 without --api-key-file"),
        "{}",
        server.log()
    );
}

/// Clients posting in a loop until told to stop; counts answers by status.
fn load(
    addr: &str,
    threads: usize,
    body: Vec<u8>,
    path: &str,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(usize, Vec<String>)>> {
    (0..threads)
        .map(|_| {
            let (addr, body, path, stop) = (
                addr.to_string(),
                body.clone(),
                path.to_string(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut ok = 0;
                let mut bad = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match send(&addr, "POST", &path, &[], &body) {
                        Ok(raw) if raw.is_empty() => {}
                        Ok(raw) => match parse(&raw) {
                            Some(a) if a.status == 200 => ok += 1,
                            Some(a) => bad.push(format!(
                                "{} {}",
                                a.status,
                                String::from_utf8_lossy(&a.body)
                            )),
                            None => bad
                                .push(format!("partial answer: {}", String::from_utf8_lossy(&raw))),
                        },
                        // Refused or reset before the server read the request.
                        Err(_) => {}
                    }
                }
                (ok, bad)
            })
        })
        .collect()
}

#[test]
fn reload_under_load_keeps_the_old_model_when_the_new_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("digits.bnn");
    std::fs::copy(weights("mnist-512.bnn"), &served).unwrap();
    let server = Server::start(dir.path(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let body = npy("|u1", "(50, 784)", &vec![200; 50 * 784]);
    let clients = load(
        &server.addr,
        4,
        body,
        "/v1/models/digits/classify",
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(300));
    // A corrupt file, put in place the way a deploy would (rename).
    let staged = dir.path().join("digits.tmp");
    std::fs::write(&staged, b"BNN1 not a model at all").unwrap();
    std::fs::rename(&staged, &served).unwrap();
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let report = server.post("/v1/admin/reload", &[], b"").json();
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("digits.bnn") && errors.contains("keeping the model loaded before"),
        "{report}"
    );
    assert_eq!(report["models"], serde_json::json!(["digits"]));
    assert_eq!(
        server.get("/v1/models/digits", &[]).json()["arch"],
        "d512,d10"
    );
    // A good new file replaces the model.
    std::fs::copy(weights("mnist-deep.bnn"), &staged).unwrap();
    std::fs::rename(&staged, &served).unwrap();
    let report = server.post("/v1/admin/reload", &[], b"").json();
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    let deep = bnn_core::format::load(&weights("mnist-deep.bnn"))
        .unwrap()
        .model;
    assert_eq!(
        server.get("/v1/models/digits", &[]).json()["arch"],
        deep.arch()
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for c in clients {
        let (ok, bad) = c.join().unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        total += ok;
    }
    assert!(total > 0);
    let log = server.log_when(|log| log.contains("reload: "));
    assert!(
        log.contains("reload: ") && log.contains("digits.bnn"),
        "{log}"
    );
}

#[test]
fn sigterm_under_load_answers_every_accepted_request_and_exits_0() {
    let mut server = Server::start(&weights("mnist-cnn-small.bnn"), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let body = npy("|u1", "(200, 28, 28)", &vec![9; 200 * 784]);
    let clients = load(
        &server.addr,
        8,
        body,
        "/v1/models/mnist-cnn-small/classify",
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(700));
    server.signal("TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::SeqCst);
    let answered = AtomicUsize::new(0);
    for c in clients {
        let (ok, bad) = c.join().unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        answered.fetch_add(ok, Ordering::SeqCst);
    }
    assert_eq!(status.code(), Some(0), "{}", server.log());
    // Give the stderr reader a moment to take the last lines.
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    let logged = log.matches("\" 200 ").count();
    let answered = answered.load(Ordering::SeqCst);
    assert!(answered > 0, "{log}");
    assert_eq!(
        logged, answered,
        "answers the server sent vs answers the clients got"
    );
    assert!(log.contains("every accepted request answered"), "{log}");
}
