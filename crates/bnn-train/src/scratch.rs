//! Per-thread buffers that the convolution tasks reuse from batch to batch.
//!
//! A batch's tasks each need a few megabytes of im2col rows and gradients
//! for a few milliseconds. Freshly allocated, those pages are mapped, zeroed
//! by the kernel and unmapped again on every batch, and whether the
//! allocator keeps them between batches depends on the machine's memory
//! state: measured runs of the same epoch spent between 1 % and 15 % of
//! their CPU time in the kernel, almost all of it in page faults. A buffer
//! kept per thread is faulted in once.
//!
//! A buffer is moved out of its slot for the duration of a call, so a task
//! that rayon starts on the same thread while this one waits (work
//! stealing inside a nested parallel loop) finds the slot empty and
//! allocates its own: never a shared buffer, at worst a fresh one.

use std::cell::Cell;
use std::thread::LocalKey;

/// The buffers each thread holds, of each element type.
pub const SLOTS: usize = 3;

type Buffers<T> = [Cell<Vec<T>>; SLOTS];

thread_local! {
    static F32: Buffers<f32> = Default::default();
    static I32: Buffers<i32> = Default::default();
}

/// Calls `f` with `len` values of this thread's f32 buffer `slot`; their
/// contents are whatever an earlier call left, so `f` writes before it
/// reads.
pub fn with<R>(slot: usize, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    lend(&F32, slot, len, f)
}

/// [`with`] for i32 values (integer dot products).
pub fn with_i32<R>(slot: usize, len: usize, f: impl FnOnce(&mut [i32]) -> R) -> R {
    lend(&I32, slot, len, f)
}

fn lend<T: Copy + Default + 'static, R>(
    key: &'static LocalKey<Buffers<T>>,
    slot: usize,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buf = key.with(|b| b[slot].take());
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    let out = f(&mut buf[..len]);
    key.with(|b| b[slot].set(buf));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer survives between calls (no new allocation), and a nested
    /// call on the same slot gets a buffer of its own.
    #[test]
    fn reuses_and_never_shares() {
        let first = with(0, 100, |b| {
            b.fill(7.0);
            b.as_ptr() as usize
        });
        let again = with(0, 50, |b| {
            assert_eq!(b[49], 7.0, "the same memory comes back");
            b.as_ptr() as usize
        });
        assert_eq!(first, again);
        with(1, 10, |outer| {
            outer.fill(1.0);
            with(1, 10, |inner| {
                assert_ne!(inner.as_ptr(), outer.as_ptr());
                inner.fill(2.0);
            });
            assert!(outer.iter().all(|&v| v == 1.0));
        });
    }
}
