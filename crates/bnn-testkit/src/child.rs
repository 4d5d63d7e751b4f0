//! One test run again in a child process, under a resource limit that would
//! disturb every other test if it were set in the shared test process.

use std::process::Command;

/// Set in the child; its value is what the parent passed.
const CHILD_VAR: &str = "BNN_TESTKIT_CHILD";

/// In the child started by [`rerun_with_file_size_limit`], the argument the
/// parent passed; `None` in a normal run.
pub fn child_arg() -> Option<String> {
    std::env::var(CHILD_VAR).ok()
}

/// Runs the test `name` (its path inside the test binary) again in a child
/// whose files may not grow past `bytes` (a write beyond fails with EFBIG
/// instead of killing it), with [`child_arg`] returning `arg` there. Fails
/// unless the child ran that one test and it passed.
pub fn rerun_with_file_size_limit(name: &str, bytes: u64, arg: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    // Bash counts `ulimit -f` in KiB; an ignored SIGXFSZ stays ignored
    // across exec, so the write fails with EFBIG.
    let script = format!(
        "trap '' XFSZ; ulimit -f {} && exec \"$0\" \"$@\"",
        bytes.div_ceil(1024)
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, arg)
        .output()
        .unwrap_or_else(|e| panic!("cannot start bash for the child test: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "child test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
