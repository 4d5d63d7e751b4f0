//! The sparse bit-sliced layer: count only the input's minority bits.
//!
//! For weight bits `w`, input bits `x` of `n` bits and `O` the positions
//! where `x` is 1, `popcount(x ⊕ w) = popcount(w) + |O| − 2·Σ_{i∈O} w_i`,
//! and over the zeros `Z`, `popcount(x ⊕ w) = 2·Σ_{i∈Z} w_i + |O| −
//! popcount(w)`. So a layer needs, per neuron, the sum of its weight bits
//! at the `k = min(|O|, n − |O|)` minority positions. With the weights
//! stored *transposed* (one column of `m` bits per input, one bit per
//! neuron), that is a vertical sum of `k` columns: carry-save adders
//! (Harley–Seal, 8 columns a step) add them into bit-sliced counters, a
//! plane per bit of the count, 64 neurons to a word. No neuron is ever
//! handled on its own.
//!
//! A hidden neuron fires when `(p <= L) XOR flip` for `p = popcount(x ⊕ w)`
//! and its popcount limit `L`. Over the ones, `p ≤ L ⇔ 2S + (n + 1 − k) ≥
//! popcount(w) − L + n + 1`; over the zeros, `p ≤ L ⇔ ¬(2Z + k ≥ L +
//! popcount(w) + 1)`. The right-hand sides are per-neuron constants kept
//! as bit planes (`ones_cut`, `zeros_cut`); the left-hand side is the
//! counter doubled (a shift of plane indices) plus a constant of the image.
//! One ripple adds the constant while a second ripple computes the borrow
//! of the comparison, and the borrow plane *is* the output, already packed
//! for the next layer. Padding neurons get cuts that never fire. (The lean
//! loop for whole vectors, `fire_lines`, instead starts its counter at half
//! the constant, so that only the borrow ripple is left.)
//!
//! The loop is written once, in [`sliced_kernel!`], and instantiated for
//! `u64` words here (the portable reference), and for 256- and 512-bit
//! vectors in `sliced_x86`, each over the same primitive operations: on
//! AVX-512 a full adder is two `VPTERNLOGQ`, on AVX2 and `u64` it is plain
//! and/xor/or.

use super::SlicedArgs;

/// Planes of a column sum: the sum of at most 32768 columns (the minority
/// of 65,535 inputs) fits 16 bits, and 17 planes hold it doubled.
pub(crate) const SUM_PLANES: usize = 17;

/// Planes above the five that [`column_sums!`] keeps in registers.
pub(crate) const HIGH_PLANES: usize = SUM_PLANES - 5;

/// Inputs a sliced layer takes at most: indices are `u16`.
pub const MAX_INPUTS: usize = u16::MAX as usize;

/// Inputs [`sliced_kernel!`]'s `fire_lines` takes at most: its minority,
/// at most 1023 columns, sums into the ten planes it keeps in registers.
pub(crate) const LINES_MAX_INPUTS: usize = 2047;

/// Planes of a layer's cuts and of `2·sum + constant`: enough for `2n + 2`.
pub(crate) fn cut_planes(inputs: usize) -> usize {
    (usize::BITS - (2 * inputs + 2).leading_zeros()) as usize
}

/// Bit planes of the sum of the columns `idx` (a whole number of groups of
/// 8; lists are padded with the zero column) over words `at .. at + live`
/// (`live <= W`) of every column: an expression, expanded in place because
/// a call (which `#[target_feature]` functions cannot force inline) moved
/// the planes through memory. The five low planes stay in registers and
/// are the expression's value, with the number of high planes reached;
/// the higher ones, in the caller's `high` (`HIGH_PLANES` uninitialised
/// vectors), take one carry per 32 columns, rippled only through the
/// planes the count of steps can have reached, and each is written before
/// it is first read. Leaving the rest unwritten matters: zeroing (and
/// moving) all of them was a `memset` and a `memcpy` of 1 KiB per image,
/// 6 % of a single-image call.
macro_rules! column_sums {
    ($a:expr, $idx:expr, $at:expr, $live:expr, $high:ident) => {{
        let (a, idx, at, live) = ($a, $idx, $at, $live);
        let mut low = [zero(); 3];
        let (mut eights, mut sixteens) = (zero(), zero());
        let (mut steps, mut reach) = (0usize, 0usize);
        let (mut e0, mut e1, mut e2) = (zero(), zero(), zero());
        let groups = idx.len() / 8;
        for (n, g) in idx.chunks_exact(8).enumerate() {
            let e = add8(columns8(a, g, at, live), &mut low);
            let last = n + 1 == groups;
            match n % 4 {
                0 => e0 = e,
                1 => e1 = e,
                2 => e2 = e,
                _ => {}
            }
            if n % 4 == 3 || last {
                // Groups missing from the last quad count zero.
                let q = n % 4;
                let e1 = if q >= 1 { e1 } else { zero() };
                let e2 = if q >= 2 { e2 } else { zero() };
                let e3 = if q == 3 { e } else { zero() };
                let (c16a, e8) = (maj(eights, e0, e1), xor3(eights, e0, e1));
                let (c16b, e8) = (maj(e8, e2, e3), xor3(e8, e2, e3));
                let (mut carry, e16) = (maj(sixteens, c16a, c16b), xor3(sixteens, c16a, c16b));
                eights = e8;
                sixteens = e16;
                steps += 1;
                if steps.is_power_of_two() {
                    $high[reach].write(zero());
                    reach += 1;
                }
                for h in &mut $high[..reach] {
                    // SAFETY: the planes below `reach` were written when
                    // reached.
                    let old = unsafe { h.assume_init() };
                    h.write(xor(old, carry));
                    carry = and(old, carry);
                }
            }
        }
        ([low[0], low[1], low[2], eights, sixteens], reach)
    }};
}
pub(crate) use column_sums;

/// The algorithm, instantiated over a vector type `V` of `W` words with
/// primitives `zero`, `splat`, `load`, `load_column` (a column's words,
/// whose position the dispatch has checked), `store`, `and`, `xor`, `xor3`,
/// `maj` and `borrow` (`maj(¬v, c, b)`) in scope at the call site.
macro_rules! sliced_kernel {
    ($(#[$attr:meta])*) => {
        /// Words `at .. at + live` of the 8 columns `g` names.
        $(#[$attr])*
        #[inline]
        fn columns8(a: &SlicedArgs<'_>, g: &[u16], at: usize, live: usize) -> [V; 8] {
            let col = |j: usize| load_column(a.columns, g[j] as usize * a.cw + at, live);
            [col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(7)]
        }

        /// One step of Harley–Seal: adds 8 columns into `ones`, `twos` and
        /// `fours`, and returns the carry of weight 8.
        $(#[$attr])*
        #[inline]
        fn add8(c: [V; 8], low: &mut [V; 3]) -> V {
            let [ones, twos, fours] = low;
            let (twos_a, o) = (maj(*ones, c[0], c[1]), xor3(*ones, c[0], c[1]));
            let (twos_b, o) = (maj(o, c[2], c[3]), xor3(o, c[2], c[3]));
            let (fours_a, t) = (maj(*twos, twos_a, twos_b), xor3(*twos, twos_a, twos_b));
            let (twos_a, o) = (maj(o, c[4], c[5]), xor3(o, c[4], c[5]));
            let (twos_b, o) = (maj(o, c[6], c[7]), xor3(o, c[6], c[7]));
            let (fours_b, t) = (maj(t, twos_a, twos_b), xor3(t, twos_a, twos_b));
            let (carry, f) = (maj(*fours, fours_a, fours_b), xor3(*fours, fours_a, fours_b));
            *ones = o;
            *twos = t;
            *fours = f;
            carry
        }

        /// A hidden layer's output bits for one image whose minority
        /// positions are `idx`; `ones` is the image's count of 1 bits and
        /// `zeros` says the minority is its zeros.
        $(#[$attr])*
        pub fn fire(a: &SlicedArgs<'_>, idx: &[u16], ones: usize, zeros: bool, out: &mut [u64]) {
            let (add, cut) = if zeros {
                (ones, a.zeros_cut)
            } else {
                (a.inputs + 1 - ones, a.ones_cut)
            };
            let keep = splat(!zeros);
            let mut high =
                [::core::mem::MaybeUninit::<V>::uninit(); $crate::kernel::sliced::HIGH_PLANES];
            let mut at = 0;
            while at < a.cw {
                let live = (a.cw - at).min(W);
                let (low, reach) = $crate::kernel::sliced::column_sums!(a, idx, at, live, high);
                let (mut carry, mut borrow) = (zero(), zero());
                for b in 0..a.planes {
                    let v = match b {
                        0 => zero(),
                        1..=5 => low[b - 1],
                        // SAFETY: planes below `reach` were written.
                        _ if b - 6 < reach => unsafe { high[b - 6].assume_init() },
                        _ => zero(),
                    };
                    let k = splat(add >> b & 1 == 1);
                    let sum = xor3(v, k, carry);
                    carry = maj(v, k, carry);
                    borrow = borrow_of(sum, load(cut, b * a.cw + at, live), borrow);
                }
                store(out, at, live, xor3(borrow, keep, load(a.flips, at, live)));
                at += W;
            }
        }

        /// [`fire`] for a layer whose columns are whole vectors (`cw` a
        /// multiple of `W`) and whose inputs are at most
        /// [`LINES_MAX_INPUTS`](crate::kernel::sliced::LINES_MAX_INPUTS):
        /// every plane of the sum then lives in a register, the four groups
        /// of a step are added without a branch, the ripple into the high
        /// planes has a fixed depth, and the counter starts at half the
        /// image's constant, so that the comparison is one borrow per plane
        /// instead of an add and a borrow. Each measured faster on the
        /// 784-512 layer of `mnist-512.bnn` (docs/PERFORMANCE.md, "Why the
        /// kernels are as they are").
        $(#[$attr])*
        pub fn fire_lines(
            a: &SlicedArgs<'_>,
            idx: &[u16],
            ones: usize,
            zeros: bool,
            out: &mut [u64],
        ) {
            debug_assert!(a.cw.is_multiple_of(W) && a.inputs <= $crate::kernel::sliced::LINES_MAX_INPUTS);
            let (add, cut) = if zeros {
                (ones, a.zeros_cut)
            } else {
                (a.inputs + 1 - ones, a.ones_cut)
            };
            let keep = splat(!zeros);
            let z = zero();
            let mut at = 0;
            while at < a.cw {
                let eight = |g: &[u16]| columns8(a, g, at, W);
                // Planes 1, 2, 4 (in `low`), 8, 16, then 32 to 1024. They
                // start at `add / 2`, so that the planes end at `S + add / 2`
                // and `2·S + add` is them shifted up one plane under the
                // parity of `add`: the comparison then needs no ripple of
                // its own. `S + add / 2 <= 3n / 4 + 1` fits them.
                let seed = add / 2;
                let bit = |b: usize| splat(seed >> b & 1 == 1);
                let mut low = [bit(0), bit(1), bit(2)];
                let (mut p8, mut p16) = (bit(3), bit(4));
                let mut high = [bit(5), bit(6), bit(7), bit(8), bit(9), bit(10)];
                // A half adder per plane, unrolled so that no plane leaves
                // its register.
                let ripple = |planes: &mut [V], mut carry: V| {
                    for p in planes.iter_mut() {
                        let old = *p;
                        *p = xor(old, carry);
                        carry = and(old, carry);
                    }
                };
                let mut steps = idx.chunks_exact(32);
                for g in &mut steps {
                    let e0 = add8(eight(&g[0..8]), &mut low);
                    let e1 = add8(eight(&g[8..16]), &mut low);
                    let e2 = add8(eight(&g[16..24]), &mut low);
                    let e3 = add8(eight(&g[24..32]), &mut low);
                    let (c16a, e8) = (maj(p8, e0, e1), xor3(p8, e0, e1));
                    let (c16b, e8) = (maj(e8, e2, e3), xor3(e8, e2, e3));
                    let (c32, e16) = (maj(p16, c16a, c16b), xor3(p16, c16a, c16b));
                    p8 = e8;
                    p16 = e16;
                    ripple(&mut high, c32);
                }
                for g in steps.remainder().chunks_exact(8) {
                    let e = add8(eight(g), &mut low);
                    let [h0, h1, h2, h3, h4, h5] = high;
                    let mut mid = [p8, p16, h0, h1, h2, h3, h4, h5];
                    ripple(&mut mid, e);
                    let [m8, m16, h0, h1, h2, h3, h4, h5] = mid;
                    (p8, p16, high) = (m8, m16, [h0, h1, h2, h3, h4, h5]);
                }
                let [h0, h1, h2, h3, h4, h5] = high;
                let doubled = [
                    splat(add & 1 == 1),
                    low[0],
                    low[1],
                    low[2],
                    p8,
                    p16,
                    h0,
                    h1,
                    h2,
                    h3,
                    h4,
                    h5,
                    z,
                    z,
                ];
                let mut borrow = z;
                for (b, &v) in doubled.iter().enumerate().take(a.planes) {
                    borrow = borrow_of(v, load(cut, b * a.cw + at, W), borrow);
                }
                store(out, at, W, xor3(borrow, keep, load(a.flips, at, W)));
                at += W;
            }
        }

        /// The bit planes of the column sums (plane `b` at `out[b·cw..]`),
        /// for layers that need each neuron's count.
        $(#[$attr])*
        pub fn sum_planes(a: &SlicedArgs<'_>, idx: &[u16], out: &mut [u64]) {
            let mut high =
                [::core::mem::MaybeUninit::<V>::uninit(); $crate::kernel::sliced::HIGH_PLANES];
            let mut at = 0;
            while at < a.cw {
                let live = (a.cw - at).min(W);
                let (low, reach) = $crate::kernel::sliced::column_sums!(a, idx, at, live, high);
                for b in 0..$crate::kernel::sliced::SUM_PLANES {
                    let v = match b {
                        0..=4 => low[b],
                        // SAFETY: planes below `reach` were written.
                        _ if b - 5 < reach => unsafe { high[b - 5].assume_init() },
                        _ => zero(),
                    };
                    store(&mut out[b * a.cw..(b + 1) * a.cw], at, live, v);
                }
                at += W;
            }
        }
    };
}
pub(crate) use sliced_kernel;

/// The portable form on `u64` words: the reference for the SIMD forms. Its
/// only `unsafe` is the shared loop's reading of the high planes it wrote.
/// Its `fire_lines` runs only in tests, against its `fire`: on single
/// words the general loop is the faster (see `Kernel::sliced_fire`).
#[allow(unsafe_code)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod portable {
    use super::SlicedArgs;

    type V = u64;
    const W: usize = 1;

    #[inline]
    fn zero() -> V {
        0
    }

    #[inline]
    fn splat(bit: bool) -> V {
        0u64.wrapping_sub(u64::from(bit))
    }

    #[inline]
    fn load(src: &[u64], at: usize, _live: usize) -> V {
        src[at]
    }

    #[inline]
    fn store(dst: &mut [u64], at: usize, _live: usize, v: V) {
        dst[at] = v;
    }

    #[inline]
    fn load_column(src: &[u64], at: usize, live: usize) -> V {
        load(src, at, live)
    }

    #[inline]
    fn and(a: V, b: V) -> V {
        a & b
    }

    #[inline]
    fn xor(a: V, b: V) -> V {
        a ^ b
    }

    #[inline]
    fn xor3(a: V, b: V, c: V) -> V {
        a ^ b ^ c
    }

    #[inline]
    fn maj(a: V, b: V, c: V) -> V {
        (a & b) | (c & (a | b))
    }

    /// The borrow out of `v − c − b_in`, bit by bit: `maj(¬v, c, b_in)`.
    #[inline]
    fn borrow_of(v: V, c: V, b: V) -> V {
        maj(!v, c, b)
    }

    super::sliced_kernel!();
}

/// Writes the minority positions of one image of `inputs` bits into `idx`,
/// in order, ignoring the bits beyond `inputs` in the last word; returns
/// how many, the count of 1 bits, and whether the minority is the zeros. A
/// `tzcnt` loop per word.
#[inline]
pub(crate) fn minority(x: &[u64], inputs: usize, idx: &mut [u16]) -> (usize, usize, bool) {
    let side = Side::of(x, inputs);
    let mut len = 0;
    for w in 0..x.len() {
        let mut bits = side.word(x, w);
        while bits != 0 {
            idx[len] = (w * 64) as u16 + bits.trailing_zeros() as u16;
            len += 1;
            bits &= bits - 1;
        }
    }
    (len, side.ones, side.zeros)
}

/// Which bits of an image the listers list: its count of 1 bits, whether
/// the minority is the zeros, and the live bits of the last word, so that
/// no position reaches `inputs` whatever the tail holds.
#[derive(Clone, Copy)]
pub(crate) struct Side {
    pub ones: usize,
    pub zeros: bool,
    last: usize,
    tail: u64,
}

impl Side {
    #[inline]
    pub(crate) fn of(x: &[u64], inputs: usize) -> Side {
        let last = x.len() - 1;
        let tail = crate::bits::tail_mask(inputs);
        let ones = x[..last]
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum::<usize>()
            + (x[last] & tail).count_ones() as usize;
        Side {
            ones,
            zeros: 2 * ones > inputs,
            last,
            tail,
        }
    }

    /// Word `w`'s listed bits.
    #[inline]
    pub(crate) fn word(self, x: &[u64], w: usize) -> u64 {
        let live = if w == self.last { self.tail } else { u64::MAX };
        let bits = if self.zeros { !x[w] } else { x[w] };
        bits & live
    }
}
