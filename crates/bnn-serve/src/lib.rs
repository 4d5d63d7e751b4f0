//! # bnn-serve: `.bnn` models behind HTTP
//!
//! `bnn serve` answers classification requests for one model or a
//! directory of them, merging concurrent requests into engine batches
//! (Triton's dynamic batcher), shedding load with `503` + `Retry-After`
//! rather than queueing without bound, and draining on SIGTERM.
//!
//! ## Why tokio + hyper 1 (not axum)
//!
//! The routes are a handful of fixed paths; what matters is control over
//! the connection: the header read timeout (slowloris), half-closed
//! connections (a truncated body still gets its `400`), a connection cap
//! applied before `accept`, and graceful shutdown of each connection
//! (`hyper_util::server::graceful`). hyper exposes each of these directly;
//! axum would add tower and a router on top of the same hyper without
//! giving any of them. tokio is the runtime hyper is built for, and its
//! signal streams let SIGHUP and SIGTERM be handled inside the server
//! instead of ending the process.
//!
//! ## Where the work runs
//!
//! The async runtime only moves bytes. Parsing a large body (over
//! [`INLINE_PARSE`] bytes) runs on tokio's blocking pool, and every engine
//! batch runs on rayon's pool, where `Model::predict_batch_with` splits a
//! large batch across the threads. See [`batch`] for how requests merge.

pub mod batch;
pub mod decode;
pub mod http;
pub mod log;
pub mod metrics;
pub mod models;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Bodies up to this size are parsed on the async runtime; larger ones on
/// the blocking pool, so that a 60 MB JSON upload never stalls the
/// connections sharing its worker thread.
pub const INLINE_PARSE: usize = 64 << 10;

/// Everything `bnn serve` is told on its command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// A `.bnn` file, or a directory whose `.bnn` files are all served.
    pub models: PathBuf,
    pub bind: SocketAddr,
    /// One key per line; `None` serves without keys (loopback only, or a
    /// warning).
    pub api_key_file: Option<PathBuf>,
    /// Most images in one engine batch.
    pub max_batch: usize,
    /// How long a batch waits for more requests once it has its first.
    pub max_delay: Duration,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Most images in one request.
    pub max_images: usize,
    /// A request not answered within this time gets `504`.
    pub deadline: Duration,
    /// Most images waiting per model; past it requests get `503`.
    pub max_queue: usize,
    /// Most open connections; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A client must send its request headers within this time.
    pub header_timeout: Duration,
    /// A client must send its whole body within this time.
    pub body_timeout: Duration,
    /// How long SIGTERM waits for accepted requests before exiting anyway.
    pub drain_timeout: Duration,
}

impl Config {
    /// The defaults the CLI documents, serving `models` on `bind`.
    pub fn new(models: PathBuf, bind: SocketAddr) -> Config {
        Config {
            models,
            bind,
            api_key_file: None,
            max_batch: 1024,
            max_delay: Duration::ZERO,
            max_body: 64 << 20,
            max_images: 10_000,
            deadline: Duration::from_secs(30),
            max_queue: 100_000,
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// A failure to start: the message is one line naming the file or address.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Reads the API keys: one per line, surrounding whitespace trimmed, blank
/// lines skipped. A file without a key is refused, since it would lock
/// every client out while looking configured.
pub fn read_keys(path: &std::path::Path) -> Result<Vec<Vec<u8>>, StartError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StartError(format!(
            "{}: cannot read the API key file: {e}",
            path.display()
        ))
    })?;
    let keys: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if keys.is_empty() {
        return Err(StartError(format!(
            "{}: the API key file holds no key (one per line)",
            path.display()
        )));
    }
    Ok(keys)
}

/// Serves until SIGTERM or SIGINT, then drains: stops accepting, answers
/// every request already accepted, and returns `Ok`. Once the socket
/// listens, stderr gets `bnn serve: listening on http://ADDR`, so that a
/// caller binding port 0 learns the port.
pub fn run(config: Config) -> Result<(), StartError> {
    let keys = match &config.api_key_file {
        Some(path) => Some(read_keys(path)?),
        None => None,
    };
    if keys.is_none() && !config.bind.ip().is_loopback() {
        eprintln!(
            "bnn serve: warning: listening on {} without --api-key-file: anyone who can reach it can use it",
            config.bind
        );
    }
    let registry = models::Registry::load(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bnn-serve")
        .build()
        .map_err(|e| StartError(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let state = Arc::new(http::State::new(config, keys, registry));
        http::serve(state).await
    })
}
