//! Words that start on a cache line.
//!
//! The sliced kernels load a whole column of the transposed weights as one
//! vector: 64 bytes for 512 neurons. A `Vec<u64>` is only 8-byte aligned:
//! the tables measured started 0, 16, 32 or 48 bytes past a line (16
//! always for blocks of 128 KiB and more, which glibc maps with a 16-byte
//! header), and off a line every such load straddles two lines: twice the
//! L1 accesses and, for the columns the cache does not hold, twice the
//! fetches. Starting the table on a line boundary made the sparse layer
//! faster at every density measured; docs/PERFORMANCE.md, "Sparse against
//! dense layers", has the figures and their command.

/// One cache line of words. `repr(C)` over `[u64; 8]` with the line's
/// alignment: 64 bytes, no padding.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Line([u64; 8]);

/// `len` words stored in whole cache lines, the first word on a line
/// boundary; the words past `len` in the last line are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    lines: Vec<Line>,
    len: usize,
}

impl Lines {
    /// `len` zero words.
    pub(crate) fn zeroed(len: usize) -> Lines {
        Lines {
            lines: vec![Line::default(); len.div_ceil(8)],
            len,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn words(&self) -> &[u64] {
        // SAFETY: `Line` is `repr(C)` over `[u64; 8]` with size 64 and no
        // padding, so the vector's lines are `8 · lines.len()` contiguous,
        // initialised, suitably aligned `u64`s, and `len` is at most that.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u64>(), self.len) }
    }

    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `words`, and the borrow of `self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u64>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words start on a line, keep what is written, and a clone is
    /// aligned and equal too.
    #[test]
    fn words_start_on_a_line() {
        for len in [0usize, 1, 7, 8, 9, 785 * 8, 1025 * 16] {
            let mut l = Lines::zeroed(len);
            assert_eq!((l.len(), l.is_empty()), (len, len == 0));
            assert_eq!(l.words().len(), len);
            assert!(l.words().iter().all(|&w| w == 0));
            for (i, w) in l.words_mut().iter_mut().enumerate() {
                *w = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            }
            let c = l.clone();
            for v in [&l, &c] {
                assert_eq!(v.words().as_ptr() as usize % 64, 0, "{len}");
                assert!(v
                    .words()
                    .iter()
                    .enumerate()
                    .all(|(i, &w)| w == (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            }
            assert_eq!(c, l);
        }
    }
}
