//! An allocator that holds a parser to a memory budget.
//!
//! A hostile header can claim gigabytes in a few bytes. The readers promise
//! to allocate no more than a small multiple of what the input holds plus a
//! fixed cap; this allocator turns a broken promise into an immediate,
//! reproducible failure (an allocation error naming the size) instead of a
//! machine that swaps or an out-of-memory kill that depends on the host.
//!
//! Accounting is per thread, so that tests running side by side do not
//! charge each other, and it is off until [`within`] switches it on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

thread_local! {
    /// Bytes allocated and not yet freed on this thread since [`within`] began.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// Highest `LIVE` seen since [`within`] began.
    static PEAK: Cell<usize> = const { Cell::new(0) };
    /// Most live bytes allowed; `usize::MAX` when no budget is in force.
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Bytes a parser may hold per input byte.
pub const PER_BYTE: usize = 16;

/// Fixed allowance on top: buffered readers, decoders' windows and the
/// 16 MiB that `bnn_io::read::read_bounded` may reserve before data arrives.
pub const CAP: usize = 40 << 20;

/// Stack of the thread a check runs on. A parser's stack must not grow with
/// its input: a recursion per nesting level overflows the 8 MiB main
/// thread only at depths that take tens of kilobytes to write (a `.npy`
/// header of 15,000 `[` did), which the fuzzer, whose inputs stay near its
/// 4 KiB `-max_len`, never writes. On this small stack the same recursion
/// overflows a few thousand levels deep, within reach of the fuzzer, while
/// every bounded parse has room to spare.
pub const STACK: usize = 256 << 10;

/// Runs `f` within the budget of an input of `len` bytes: [`PER_BYTE`]
/// times `len` plus [`CAP`], on a thread of [`STACK`] bytes of stack. A
/// panic in `f` is raised again here, with its message.
pub fn bounded<T: Send>(len: usize, f: impl FnOnce() -> T + Send) -> T {
    let limit = len.saturating_mul(PER_BYTE).saturating_add(CAP);
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("bounded".into())
            .stack_size(STACK)
            .spawn_scoped(scope, || within(limit, f).0)
            .expect("cannot start the check's thread");
        match worker.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `f` with at most `limit` live bytes on this thread and returns its
/// result with the peak it reached. An allocation past the limit fails, which
/// aborts the process with the size it asked for.
pub fn within<T>(limit: usize, f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    LIMIT.with(|c| c.set(limit));
    let lift = Lift;
    let out = f();
    drop(lift);
    (out, PEAK.with(Cell::get))
}

/// Lifts the budget when dropped, also when `f` unwinds.
struct Lift;

impl Drop for Lift {
    fn drop(&mut self) {
        let _ = LIMIT.try_with(|c| c.set(usize::MAX));
    }
}

/// Charges `size` bytes; false when that breaks the budget.
fn charge(size: usize) -> bool {
    let Ok(limit) = LIMIT.try_with(Cell::get) else {
        return true;
    };
    // A failing check must be able to report itself: panic messages and
    // backtraces are not the parser's allocations.
    if limit == usize::MAX || std::thread::panicking() {
        return true;
    }
    let live = LIVE.with(Cell::get).saturating_add(size);
    if live > limit {
        // Written without allocating: the allocator is the caller.
        let _ = std::io::stderr()
            .write_all(b"allocation over the parser's memory budget (see fuzz/src/budget.rs)\n");
        return false;
    }
    LIVE.with(|c| c.set(live));
    PEAK.with(|c| c.set(c.get().max(live)));
    true
}

/// Returns `size` bytes to the budget.
fn refund(size: usize) {
    let _ = LIVE.try_with(|c| c.set(c.get().saturating_sub(size)));
}

/// The system allocator with per-thread accounting.
pub struct Counting;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the accounting only decides whether to forward an
// allocation or report failure with a null pointer, which the contract allows.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !charge(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !charge(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        refund(layout.size());
        // SAFETY: `ptr` came from `System` with this layout (every
        // allocation is forwarded to it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !charge(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `dealloc`, and the caller's new size, unchanged.
        let out = unsafe { System.realloc(ptr, layout, new_size) };
        if out.is_null() {
            refund(new_size.saturating_sub(layout.size()));
        } else if new_size < layout.size() {
            refund(layout.size() - new_size);
        }
        out
    }
}
