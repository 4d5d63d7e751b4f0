//! Arguments shared by several subcommands.

use std::path::PathBuf;

use anyhow::Context;
use bnn_core::{Kernel, Model, RunOptions};

use crate::choices;
use crate::UsageError;

/// Where MNIST lives, and whether it may be fetched.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory with the MNIST IDX files (raw or .gz, e.g. torchvision's
    /// MNIST/raw); fetched there if missing.
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
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl RunArgs {
    /// Applies the rule to the model and resolves kernel and threads,
    /// reporting a bad `--kernel`, `BNN_KERNEL` or `--threads` as usage errors.
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
        if self.threads == Some(0) {
            return Err(UsageError("--threads must be at least 1".into()).into());
        }
        Ok(RunOptions {
            kernel: Some(kernel),
            threads: self.threads,
        })
    }
}

/// Loads a `.bnn` model, naming the file in any error.
pub fn load_model(path: &std::path::Path) -> anyhow::Result<bnn_core::ModelFile> {
    bnn_core::format::load(path).context("cannot load model")
}

/// The number of threads a run will use, for reports.
pub fn threads_used(options: &RunOptions) -> usize {
    options.threads.unwrap_or_else(rayon::current_num_threads)
}
