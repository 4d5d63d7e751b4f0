//! `bnn fetch`: download and verify MNIST.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Directory to put the four IDX files in.
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    pub dir: PathBuf,
}

pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    crate::mnist_dir::fetch(&args.dir)
}
