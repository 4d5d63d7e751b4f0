//! `bnn kernels` and the variables that steer the kernels' paths.

mod common;

use common::bnn;

#[test]
fn features_off_hides_the_optional_levels() {
    let out = bnn()
        .arg("kernels")
        .env("BNN_FEATURES_OFF", "vnni, vbmi2,BMI")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("features "))
        .unwrap_or_else(|| panic!("no features line in {text}"));
    for name in ["vnni", "vbmi2", "bmi"] {
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
        err.contains("BNN_FEATURES_OFF: unknown feature 'avx2' (known: vnni, vbmi2, bmi)"),
        "{err}"
    );
}
