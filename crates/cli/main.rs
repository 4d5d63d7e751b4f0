//! The `bnn` binary: everything it does is the library's [`bnn::run`], so
//! the fuzzer and the tests reach the same code the binary runs.

fn main() -> std::process::ExitCode {
    bnn::run()
}
