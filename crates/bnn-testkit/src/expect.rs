//! Unwrapping the error of a call that must fail, for result types whose
//! success value has no `Debug` (so `unwrap_err` is unavailable).

/// The error of `r`; fails the test if `r` succeeded.
#[track_caller]
pub fn error<T, E>(r: Result<T, E>) -> E {
    match r {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => e,
    }
}
