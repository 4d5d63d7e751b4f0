//! `bnn serve`: the arguments of `bnn_serve::run`, nothing more. The
//! server, its limits and its signal handling live in `crates/bnn-serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A .bnn model, or a directory: every .bnn in it is served under its
    /// file stem.
    pub models: PathBuf,
    /// Address to listen on; port 0 picks a free port (the address is
    /// printed on stderr). Anything but loopback warns unless
    /// --api-key-file is given.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// File of API keys, one per line; every request but /healthz then
    /// needs `Authorization: Bearer KEY`.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Most images merged into one engine batch.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_batch: u64,
    /// Microseconds a batch waits for more requests once it has one (0:
    /// batches are what queued while the engine was busy).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub max_delay_us: u64,
    /// Largest request body in bytes (the JSON of 10,000 MNIST images is
    /// about 30 MB).
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1024..=(1 << 32)))]
    pub max_body: u64,
    /// Most images in one request.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_images: u64,
    /// Milliseconds within which a request is answered, else 504.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub deadline_ms: u64,
    /// Most images waiting per model; past it requests get 503 with
    /// Retry-After.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_queue: u64,
    /// Most open connections; more wait in the listen backlog.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Milliseconds a client has to send its request headers.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send its whole body, else 408.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub body_timeout_ms: u64,
    /// Milliseconds SIGTERM waits for accepted requests before exiting.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub drain_timeout_ms: u64,
    /// Engine threads, 1 to 1024 (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, value_name = "N", value_parser = crate::args::parse_threads)]
    pub threads: Option<usize>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} threads: {e}"))?;
    }
    let ms = Duration::from_millis;
    let mut config = bnn_serve::Config::new(args.models, args.bind);
    config.api_key_file = args.api_key_file;
    config.max_batch = args.max_batch as usize;
    config.max_delay = Duration::from_micros(args.max_delay_us);
    config.max_body = args.max_body as usize;
    config.max_images = args.max_images as usize;
    config.deadline = ms(args.deadline_ms);
    config.max_queue = args.max_queue as usize;
    config.max_connections = args.max_connections as usize;
    config.header_timeout = ms(args.header_timeout_ms);
    config.body_timeout = ms(args.body_timeout_ms);
    config.drain_timeout = ms(args.drain_timeout_ms);
    bnn_serve::run(config)?;
    Ok(())
}
