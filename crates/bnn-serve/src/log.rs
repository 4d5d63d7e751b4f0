//! The access log and the server's own messages, on stderr, from a thread
//! of their own.
//!
//! Writing each line to stderr from the request path made every request
//! pay a `write(2)` on an async worker thread, under the process-wide
//! stderr lock, and, when stderr is a pipe whose reader lags (a log
//! shipper, `grep`, a full terminal), block that worker, and with it every
//! connection it serves, until the reader caught up. Here a request only
//! queues its line; the writer thread takes whatever has queued since its
//! last write and writes it at once, then, while lines keep coming, lets
//! them gather for `GATHER` before the next write. A busy server makes
//! one write per 5 ms instead of one per request, the request threads do
//! not wake the writer for each line, and lines never interleave.
//!
//! The queue is bounded ([`QUEUE_LINES`]): if stderr stops taking lines
//! altogether, memory does not grow with the requests served. Lines that
//! find the queue full are counted, and the writer says how many were
//! lost as soon as it can write again. Server messages (start, reload,
//! shutdown) wait a while for room instead, so they are not the ones lost
//! while stderr is only slow.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Lines waiting for stderr: at ~80 bytes a line, ~5 MiB at most, and at
/// 30,000 requests/s a second's worth of log before lines are dropped.
pub const QUEUE_LINES: usize = 1 << 16;

/// Most bytes gathered into one write.
const WRITE_BYTES: usize = 64 << 10;

/// How long the writer lets lines gather after a write, while lines keep
/// coming: the most a line waits before it is written.
const GATHER: Duration = Duration::from_millis(5);

enum Message {
    Line(String),
    /// Answered once every line queued before it is written.
    Flush(mpsc::Sender<()>),
}

/// The sending side; cheap to share between connections.
pub struct Log {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Log {
    /// Starts the writer thread, writing to stderr.
    pub fn start() -> Log {
        Log::start_with(Box::new(std::io::stderr()))
    }

    /// Starts the writer thread on `out` (tests give a pipe or a buffer).
    pub fn start_with(out: Box<dyn std::io::Write + Send>) -> Log {
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("bnn-serve-log".into())
            .spawn(move || write_lines(rx, out, &counted));
        if let Err(e) = spawned {
            // Without the thread every line would be dropped: say so once,
            // directly.
            eprintln!("bnn serve: cannot start the log writer ({e}); the access log is off");
        }
        Log { tx, dropped }
    }

    /// Queues an access-log line; never waits. A line that finds the queue
    /// full is counted and dropped.
    pub fn access(&self, line: String) {
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues a server message (start, reload, shutdown), waiting up to a
    /// second for room: these are rare and the ones an operator needs, but
    /// a stderr that takes nothing at all must not stop the server.
    pub fn message(&self, line: String) {
        if !self.send_within(Message::Line(line), Duration::from_secs(1)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `message`, waiting up to `timeout` for room.
    fn send_within(&self, mut message: Message, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.tx.try_send(message) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if std::time::Instant::now() >= deadline {
                        return false;
                    }
                    message = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Waits (at most `timeout`) until every line queued so far is
    /// written: before the process exits, so that no line is lost.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        let started = std::time::Instant::now();
        if !self.send_within(Message::Flush(tx), timeout) {
            return false;
        }
        rx.recv_timeout(timeout.saturating_sub(started.elapsed()))
            .is_ok()
    }
}

fn write_lines(
    rx: Receiver<Message>,
    mut out: Box<dyn std::io::Write + Send>,
    dropped: &AtomicU64,
) {
    let mut text = Vec::with_capacity(WRITE_BYTES);
    let mut flushes = Vec::new();
    let mut reported = 0;
    loop {
        // Block for the first message, then take what else is queued.
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let busy = first.is_some();
        let mut next = first;
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    text.extend_from_slice(line.as_bytes());
                    text.push(b'\n');
                }
                Message::Flush(done) => flushes.push(done),
            }
            if text.len() >= WRITE_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            let _ = writeln!(
                text,
                "bnn serve: {} access-log lines dropped: stderr did not keep up",
                lost - reported
            );
            reported = lost;
        }
        if !text.is_empty() {
            // A stderr that fails is no reason to stop serving.
            let _ = out.write_all(&text);
            let _ = out.flush();
            text.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if busy {
            // Busy: let lines gather for a moment rather than wake on each
            // one (each wake costs the request thread a futex call). Idle:
            // block on the next line, so a lone line appears at once.
            std::thread::sleep(GATHER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_whole_and_in_order_by_the_flush() {
        let out = Shared::default();
        let log = Log::start_with(Box::new(out.clone()));
        log.message("start".into());
        for i in 0..10_000 {
            log.access(format!("request {i}"));
        }
        assert!(log.flush(Duration::from_secs(30)));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("start"));
        let rest: Vec<&str> = lines.collect();
        // Lines dropped only when the queue filled, and then said so.
        let written: Vec<usize> = rest
            .iter()
            .filter_map(|l| l.strip_prefix("request "))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(written.windows(2).all(|w| w[0] < w[1]), "in order");
        if written.len() < 10_000 {
            assert!(text.contains("access-log lines dropped"), "{text}");
        }
    }

    /// A writer that blocks until the test lets it go, as a pipe whose
    /// reader stopped does.
    struct Stuck(Arc<(Mutex<bool>, std::sync::Condvar)>, Shared);

    impl std::io::Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stderr_never_blocks_a_request_and_the_loss_is_reported() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let out = Shared::default();
        let log = Log::start_with(Box::new(Stuck(gate.clone(), out.clone())));
        let started = std::time::Instant::now();
        // More than the queue and the writer's one batch (64 KiB, at most
        // ~5,100 of these lines) can hold.
        let n = QUEUE_LINES + 20_000;
        for i in 0..n {
            log.access(format!("request {i}"));
        }
        // Writing to a stuck stderr directly would never have returned.
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(log.dropped.load(Ordering::Relaxed) > 0);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(log.flush(Duration::from_secs(30)));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let dropped: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("bnn serve: "))
            .filter_map(|l| l.strip_suffix(" access-log lines dropped: stderr did not keep up"))
            .map(|n| n.parse::<u64>().unwrap())
            .sum();
        let written = text.lines().filter(|l| l.starts_with("request ")).count() as u64;
        assert_eq!(written + dropped, n as u64, "every line written or counted");
        assert!(dropped > 0);
    }
}
