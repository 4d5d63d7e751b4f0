//! `bnn kernels` and the variables that steer the kernels' paths.

mod common;

use common::bnn;

#[test]
fn features_off_hides_the_optional_levels() {
    let out = bnn()
        .arg("kernels")
        .env("BNN_FEATURES_OFF", "vnni, vbmi2,BMI,dotprod")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("features "))
        .unwrap_or_else(|| panic!("no features line in {text}"));
    for name in ["vnni", "vbmi2", "bmi", "dotprod"] {
        assert!(
            line.contains(&format!("{name} off"))
                || line.contains(&format!("{name} not in this CPU")),
            "{name} still on: {line}"
        );
    }
}

#[test]
fn features_off_refuses_an_unknown_name() {
    let out = bnn()
        .arg("kernels")
        .env("BNN_FEATURES_OFF", "vnni,avx2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("BNN_FEATURES_OFF: unknown feature 'avx2' (known: vnni, vbmi2, bmi, dotprod)"),
        "{err}"
    );
}

/// Every kernel the engine knows has a line, available or not, and the
/// one that is not this build's architecture's is refused by name.
#[test]
fn kernels_lists_every_kernel_neon_included() {
    let out = bnn()
        .arg("kernels")
        .env_remove("BNN_KERNEL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for k in bnn_core::Kernel::ALL {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k.name()))
            .unwrap_or_else(|| panic!("no line for {k} in {text}"));
        let status = if k.is_available() {
            "available"
        } else {
            "not supported by this CPU"
        };
        assert!(line.contains(status), "{line}");
    }
    let neon = text.lines().find(|l| l.starts_with("neon ")).unwrap();
    assert_eq!(
        neon.contains("not supported"),
        !cfg!(target_arch = "aarch64"),
        "{neon}"
    );
    let out = bnn()
        .arg("kernels")
        .env("BNN_KERNEL", "neon")
        .output()
        .unwrap();
    if cfg!(target_arch = "aarch64") {
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("neon ") && l.ends_with("(default)")),
            "{text}"
        );
    } else {
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("kernel 'neon' is not supported by this CPU"),
            "{err}"
        );
    }
}
