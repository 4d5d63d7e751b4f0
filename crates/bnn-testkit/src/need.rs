//! What the suite needs from outside the repository, and one policy for
//! when it is absent: the test fails, naming the command that provides it,
//! unless `BNN_TEST_SKIP` names it, in which case the test says it skipped
//! and passes. A test never passes quietly without having run.
//!
//! A test states its needs first: `bnn_testkit::need!(need::CC, need::NM);`.

use std::path::Path;
use std::process::{Command, Stdio};

/// The opt-out: a comma-separated list of [`Need::name`]s.
pub const SKIP_VAR: &str = "BNN_TEST_SKIP";

/// One thing from outside the repository that some tests need.
pub struct Need {
    /// The name `BNN_TEST_SKIP` uses.
    pub name: &'static str,
    /// What it is, for the message.
    pub what: &'static str,
    /// The command that provides it.
    pub fix: &'static str,
    present: fn() -> bool,
}

pub const IVERILOG: Need = Need {
    name: "iverilog",
    what: "Icarus Verilog (`iverilog` and `vvp`)",
    fix: "apt-get install iverilog",
    present: iverilog_present,
};

pub const YOSYS: Need = Need {
    name: "yosys",
    what: "Yosys (`yosys`)",
    fix: "apt-get install yosys",
    present: yosys_present,
};

pub const VERILATOR: Need = Need {
    name: "verilator",
    what: "Verilator with a C++ compiler (`verilator`, `g++`, `make`)",
    fix: "apt-get install verilator g++ make",
    present: verilator_present,
};

pub const CC: Need = Need {
    name: "cc",
    what: "a C compiler as `cc`",
    fix: "apt-get install gcc",
    present: cc_present,
};

pub const NM: Need = Need {
    name: "nm",
    what: "`nm`",
    fix: "apt-get install binutils",
    present: nm_present,
};

pub const MNIST: Need = Need {
    name: "mnist",
    what: "MNIST in data/mnist",
    fix: "cargo run --release -- fetch",
    present: mnist_present,
};

pub const MKNOD: Need = Need {
    name: "mknod",
    what: "permission to create device nodes (`mknod`, as root)",
    fix: "sudo -E cargo test",
    present: mknod_present,
};

/// Python 3 with `venv`: the Python package's tests, which `scripts/test`
/// runs after the Rust suite; named here so that one `BNN_TEST_SKIP` list
/// serves both.
pub const PYTHON: Need = Need {
    name: "python",
    what: "Python 3 with venv (`python3 -m venv`)",
    fix: "apt-get install python3-venv",
    present: python_present,
};

const ALL: [&Need; 8] = [
    &IVERILOG, &YOSYS, &VERILATOR, &CC, &NM, &MNIST, &MKNOD, &PYTHON,
];

/// Whether a test that needs `need` should run: true when it is present,
/// false (after saying so) when `BNN_TEST_SKIP` names it; a panic naming the
/// fix otherwise.
pub fn check(need: &Need) -> bool {
    if skipped().iter().any(|s| s == need.name) {
        eprintln!(
            "{}: skipped: {SKIP_VAR} names {}",
            std::thread::current().name().unwrap_or("test"),
            need.name
        );
        return false;
    }
    if !(need.present)() {
        panic!("{}", missing(need));
    }
    true
}

/// The failure message for an absent `need`.
pub fn missing(need: &Need) -> String {
    format!(
        "{} is missing: run `{}` (or `bash scripts/test`, which installs what the suite needs), \
         or set {SKIP_VAR}={} to skip the tests that need it",
        need.what, need.fix, need.name
    )
}

/// The names in `BNN_TEST_SKIP`; an unknown one is an error, so that a typo
/// cannot leave a test running that was meant to be skipped, or the reverse.
fn skipped() -> Vec<String> {
    let Ok(list) = std::env::var(SKIP_VAR) else {
        return Vec::new();
    };
    let names: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for name in &names {
        assert!(
            ALL.iter().any(|n| n.name == name),
            "{SKIP_VAR}={list:?}: unknown name {name:?} (known: {})",
            ALL.map(|n| n.name).join(", ")
        );
    }
    names
}

/// Whether `program` can be started (its exit status does not matter).
fn starts(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn iverilog_present() -> bool {
    starts("iverilog", "-V") && starts("vvp", "-V")
}

fn yosys_present() -> bool {
    starts("yosys", "-V")
}

fn python_present() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn verilator_present() -> bool {
    starts("verilator", "--version") && starts("g++", "--version") && starts("make", "--version")
}

fn cc_present() -> bool {
    starts("cc", "--version")
}

fn nm_present() -> bool {
    starts("nm", "--version")
}

fn mnist_present() -> bool {
    crate::paths::missing_mnist_files(&crate::paths::root().join("data/mnist")).is_empty()
}

fn mknod_present() -> bool {
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let node = dir.path().join("null");
    Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Path::new(&node).exists()
}

/// Runs the enclosing test only if every need is met (see [`check`]).
#[macro_export]
macro_rules! need {
    ($($need:expr),+ $(,)?) => {
        $(
            if !$crate::need::check(&$need) {
                return;
            }
        )+
    };
}
