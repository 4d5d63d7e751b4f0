//! Worker threads that a caller owns: [`Threads`].
//!
//! Building a pool of threads costs as much as classifying a few thousand
//! images, so a caller that runs many batches (a command's whole run, a
//! Python process) builds its pool once and runs every batch inside
//! [`Threads::install`]; the engines then split their batches over that
//! pool's threads. [`with_threads`] builds a pool for one call, for callers
//! that run a single batch.
//!
//! Without the `parallel` feature (the WebAssembly build, whose target has
//! no threads) there is no pool: a [`Threads`] runs its work on the calling
//! thread, as the engines run their batches then.

#[cfg(feature = "parallel")]
use std::sync::Arc;

/// Why a pool of threads could not be built ([`Threads::new`]); without
/// the `parallel` feature none is built, and this cannot happen.
#[cfg(feature = "parallel")]
pub type ThreadsError = rayon::ThreadPoolBuildError;
/// Why a pool of threads could not be built ([`Threads::new`]); without
/// the `parallel` feature none is built, and this cannot happen.
#[cfg(not(feature = "parallel"))]
pub type ThreadsError = std::convert::Infallible;

/// The threads batches run on: rayon's global pool ([`Threads::global`],
/// the default), or a pool of its own built once ([`Threads::new`]).
///
/// Cloning is cheap and shares the pool: every clone runs its work on the
/// same threads, and the pool ends when the last clone is dropped.
#[derive(Clone, Debug, Default)]
pub struct Threads {
    /// The pool, or `None` for rayon's global one.
    #[cfg(feature = "parallel")]
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Threads {
    /// Rayon's global pool (all cores, or `RAYON_NUM_THREADS`): builds
    /// nothing.
    pub fn global() -> Self {
        Self::default()
    }

    /// A pool of `threads` threads of its own, built now; 0 means rayon's
    /// default count (all cores, or `RAYON_NUM_THREADS`). Its threads are
    /// named `bnn-{N}t-{i}` (thread `i` of a pool of `N`; `bnn-{i}` for the
    /// default count), as `top -H`, debuggers and `/proc` show them.
    #[cfg(feature = "parallel")]
    pub fn new(threads: usize) -> Result<Self, ThreadsError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| match threads {
                0 => format!("bnn-{i}"),
                n => format!("bnn-{n}t-{i}"),
            })
            .build()?;
        Ok(Self {
            pool: Some(Arc::new(pool)),
        })
    }

    /// Without the `parallel` feature: the calling thread, whatever
    /// `threads` asks (a target without threads has one).
    #[cfg(not(feature = "parallel"))]
    pub fn new(_threads: usize) -> Result<Self, ThreadsError> {
        Ok(Self {})
    }

    /// [`Threads::global`] for `None`, else a pool of that many threads,
    /// as a `--threads` option or [`crate::RunOptions::threads`] asks.
    pub fn with_count(threads: Option<usize>) -> Result<Self, ThreadsError> {
        match threads {
            None => Ok(Self::global()),
            Some(n) => Self::new(n),
        }
    }

    /// Runs `work` on these threads and returns its result: the parallel
    /// loops inside it (every engine's batch run with
    /// `RunOptions { threads: None, .. }`) use this pool.
    #[cfg(feature = "parallel")]
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Without the `parallel` feature: runs `work` on the calling thread.
    #[cfg(not(feature = "parallel"))]
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        work()
    }

    /// How many threads run the work: the pool's, or the global pool's.
    #[cfg(feature = "parallel")]
    pub fn count(&self) -> usize {
        match &self.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Without the `parallel` feature: one, the calling thread.
    #[cfg(not(feature = "parallel"))]
    pub fn count(&self) -> usize {
        1
    }
}

/// Runs `work` on rayon's global pool (`None`) or on a pool of `threads`
/// threads built for this call and dropped after it: for a single batch.
/// A caller that runs many builds a [`Threads`] once instead.
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> R + Send,
) -> Result<R, ThreadsError> {
    Ok(Threads::with_count(threads)?.install(work))
}

// The tests always build with `parallel` (the dev-dependency on this crate
// keeps its default features).
#[cfg(all(test, feature = "parallel"))]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::thread::ThreadId;

    /// The thread `threads` runs a piece of work on.
    fn runs_on(threads: &Threads) -> ThreadId {
        threads.install(|| std::thread::current().id())
    }

    #[test]
    fn a_handle_runs_every_call_on_its_own_threads() {
        // Thread ids are never reused within a process: a pool built per
        // call would run each call on a thread never seen before.
        let threads = Threads::new(2).unwrap();
        let shared = threads.clone();
        let seen: HashSet<ThreadId> = (0..20)
            .map(|i| runs_on(if i % 2 == 0 { &threads } else { &shared }))
            .collect();
        assert!(seen.len() <= 2, "{} threads ran 20 calls", seen.len());
        assert!(!seen.contains(&std::thread::current().id()));
        let name = threads.install(|| std::thread::current().name().map(str::to_owned));
        assert!(
            matches!(name.as_deref(), Some("bnn-2t-0" | "bnn-2t-1")),
            "{name:?}"
        );
        assert_eq!(threads.count(), 2);
        assert_eq!(shared.install(rayon::current_num_threads), 2);
    }

    #[test]
    fn two_handles_are_two_pools() {
        let (a, b) = (Threads::new(1).unwrap(), Threads::new(1).unwrap());
        assert_ne!(runs_on(&a), runs_on(&b));
        assert_eq!(a.install(rayon::current_num_threads), 1);
    }

    #[test]
    fn the_global_handle_builds_no_pool() {
        let global = Threads::with_count(None).unwrap();
        assert!(global.pool.is_none());
        assert_eq!(global.count(), rayon::current_num_threads());
        assert_eq!(
            with_threads(Some(3), rayon::current_num_threads).unwrap(),
            3
        );
    }
}
