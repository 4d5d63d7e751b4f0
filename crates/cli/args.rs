//! Arguments shared by several subcommands.

use std::path::PathBuf;

use anyhow::Context;
use bnn_core::{Kernel, Model, RunOptions, Threads};

use crate::choices;
use crate::UsageError;

/// Where MNIST lives, and whether it may be fetched.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory with the MNIST IDX files (raw or .gz, e.g. torchvision's
    /// MNIST/raw), fetched there if missing; or, for train and eval, a .npz
    /// of your uint8 images and integer labels (x_train, y_train, x_test,
    /// y_test).
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    pub data: PathBuf,
    /// Fail instead of downloading MNIST when it is missing.
    #[arg(long)]
    pub no_fetch: bool,
}

/// How a model runs: decision rule, kernel, threads.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Decision rule (default: the one stored in the model).
    #[arg(long, value_enum)]
    pub rule: Option<choices::Rule>,
    /// Kernel (default: BNN_KERNEL, else the best this CPU supports).
    #[arg(long, value_enum, value_name = "K", ignore_case = true)]
    pub kernel: Option<choices::Kernel>,
    /// Worker threads, 1 to 1024 (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
}

/// Most worker threads accepted, from `--threads` or `RAYON_NUM_THREADS`:
/// far more than the cores of any machine this runs on, yet few enough that
/// a typo (`100000`) fails at once instead of starting threads until the
/// system stalls.
pub const MAX_THREADS: usize = 1024;

/// A thread count in `1..=MAX_THREADS`, or why not; `what` names the source.
fn thread_count(text: &str, what: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "{what} {n} is out of range: give 1 to {MAX_THREADS} threads"
        )),
        Err(_) => Err(format!(
            "{what} '{text}' is not a thread count: give 1 to {MAX_THREADS}"
        )),
    }
}

/// clap's parser for `--threads`.
pub fn parse_threads(text: &str) -> Result<usize, String> {
    thread_count(text, "thread count")
}

/// Checks the environment variables that change how every subcommand runs,
/// once, before any work: a bad `BNN_KERNEL`, `BNN_LAYER` or `RAYON_NUM_THREADS` is a
/// usage error (exit 2) whatever the subcommand, never a silent fallback or
/// a pool of a hundred thousand threads.
pub fn check_env() -> anyhow::Result<()> {
    bnn_core::kernel::from_env().map_err(|e| UsageError(e.to_string()))?;
    bnn_core::LayerMode::from_env().map_err(|e| UsageError(e.to_string()))?;
    if let Some(value) = std::env::var_os("RAYON_NUM_THREADS") {
        let text = value.to_string_lossy();
        if !text.trim().is_empty() {
            thread_count(&text, "RAYON_NUM_THREADS").map_err(UsageError)?;
        }
    }
    Ok(())
}

impl RunArgs {
    /// Applies the rule to the model and resolves the kernel, reporting a
    /// bad `--kernel` or `BNN_KERNEL` as usage errors. The options name no
    /// thread count, which would build a pool for every batch: the command
    /// runs its batches inside [`RunArgs::threads`].
    pub fn resolve(&self, model: &mut Model) -> anyhow::Result<RunOptions> {
        if let Some(rule) = self.rule {
            model.set_rule(rule.into());
        }
        let kernel = match self.kernel {
            Some(k) => Kernel::from(k)
                .require()
                .map_err(|e| UsageError(format!("--kernel: {e}")))?,
            None => bnn_core::kernel::from_env().map_err(|e| UsageError(e.to_string()))?,
        };
        Ok(RunOptions {
            kernel: Some(kernel),
            threads: None,
        })
    }

    /// The command's threads: a pool of `--threads`, else rayon's global
    /// pool (all cores, or `RAYON_NUM_THREADS`).
    pub fn threads(&self) -> anyhow::Result<Threads> {
        start_threads(self.threads)
    }
}

/// A command's worker threads, built once for its whole run (a pool costs
/// as much as classifying a few thousand images): a pool of `threads`, else
/// rayon's global pool. Every command that takes `--threads` starts its
/// threads here.
pub fn start_threads(threads: Option<usize>) -> anyhow::Result<Threads> {
    Threads::with_count(threads).context("cannot start worker threads")
}

/// Loads a `.bnn` model, naming the file in any error.
pub fn load_model(path: &std::path::Path) -> anyhow::Result<bnn_core::ModelFile> {
    bnn_core::format::load(path).context("cannot load model")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_within_the_cap_only() {
        assert_eq!(parse_threads("1"), Ok(1));
        assert_eq!(parse_threads(" 1024 "), Ok(MAX_THREADS));
        for bad in ["0", "1025", "100000", "-1", "abc", "", "2.5"] {
            let e = parse_threads(bad).unwrap_err();
            assert!(e.contains("1 to 1024"), "{bad}: {e}");
        }
        assert!(thread_count("abc", "RAYON_NUM_THREADS")
            .unwrap_err()
            .starts_with("RAYON_NUM_THREADS 'abc'"));
    }

    /// `--threads 3` is one pool of 3 threads that every batch of the
    /// command runs on, and never a pool per batch.
    #[test]
    fn threads_are_one_pool_for_the_whole_command() {
        let args = RunArgs {
            rule: None,
            kernel: Some(choices::Kernel::Scalar),
            threads: Some(3),
        };
        let mut rng = bnn_testkit::models::rng(1);
        let rule = bnn_core::DecisionRule::Scores;
        let mut model = bnn_testkit::models::random_model(&mut rng, &[16, 4], rule, 128);
        assert_eq!(args.resolve(&mut model).unwrap().threads, None);
        let threads = args.threads().unwrap();
        assert_eq!(threads.count(), 3);
        // Thread ids are never reused: a pool per call would show new ones.
        let seen: std::collections::HashSet<_> = (0..20)
            .map(|_| threads.install(|| std::thread::current().id()))
            .collect();
        assert!(seen.len() <= 3, "{} threads ran 20 calls", seen.len());
        let default = RunArgs {
            threads: None,
            ..args
        };
        assert_eq!(
            default.threads().unwrap().count(),
            rayon::current_num_threads()
        );
    }
}
