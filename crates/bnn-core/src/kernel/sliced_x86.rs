//! The sparse bit-sliced layer (see `sliced`) on 512- and 256-bit vectors,
//! and the minority positions by `VPCOMPRESSW`.
//!
//! As in `x86_64`, nothing here checks CPU features: `Kernel::checked` has
//! confirmed them, and the dispatching method in `mod.rs` asserted the
//! slice lengths and that the positions come from a `Minority` of the
//! layer's width, so each is at most `inputs`. Loads and stores index
//! their slices, so a wrong index is a panic, never a stray read, with one
//! exception: whole-vector column loads, the hottest instruction of the
//! layer, rely on that invariant (a bounds check, index scaling and mask
//! per column cost more than the two full adders each column feeds).

use std::arch::x86_64::*;

use super::SlicedArgs;

use super::cpu::Level;

pub fn has_popcnt_bmi1() -> bool {
    Level::Bmi.on()
}

pub fn has_vbmi2() -> bool {
    Level::Vbmi2.on()
}

pub fn minority_avx512(x: &[u64], inputs: usize, idx: &mut [u16]) -> (usize, usize, bool) {
    // SAFETY: the caller checked `has_vbmi2` (AVX-512 with VPOPCNTQ, and
    // VBMI2).
    unsafe { minority_vbmi2(x, inputs, idx) }
}

pub fn fire_avx512(a: &SlicedArgs<'_>, idx: &[u16], ones: usize, zeros: bool, out: &mut [u64]) {
    // SAFETY: the caller checked avx512f.
    unsafe { avx512::fire(a, idx, ones, zeros, out) }
}

pub fn fire_lines_avx512(
    a: &SlicedArgs<'_>,
    idx: &[u16],
    ones: usize,
    zeros: bool,
    out: &mut [u64],
) {
    // SAFETY: the caller checked avx512f.
    unsafe { avx512::fire_lines(a, idx, ones, zeros, out) }
}

pub fn fire_lines_avx2(a: &SlicedArgs<'_>, idx: &[u16], ones: usize, zeros: bool, out: &mut [u64]) {
    // SAFETY: the caller checked avx2.
    unsafe { avx2::fire_lines(a, idx, ones, zeros, out) }
}

/// Rows of packed inputs through a hidden layer: each row's minority by
/// [`minority_vbmi2`], then [`avx512::fire_lines`], in one call per chunk.
pub fn fire_rows_vbmi2(
    a: &SlicedArgs<'_>,
    xs: &[u64],
    wpr: usize,
    m: &mut super::Minority,
    out: &mut [u64],
) {
    // SAFETY: the caller checked `has_vbmi2` (AVX-512 with VPOPCNTQ, and
    // VBMI2), that the layer takes `fire_lines` and that `m` has room for
    // a listing.
    unsafe { fire_rows_vbmi2_impl(a, xs, wpr, m, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,popcnt")]
fn fire_rows_vbmi2_impl(
    a: &SlicedArgs<'_>,
    xs: &[u64],
    wpr: usize,
    m: &mut super::Minority,
    out: &mut [u64],
) {
    for (x, o) in xs.chunks_exact(wpr).zip(out.chunks_exact_mut(a.cw)) {
        let (len, ones, zeros) = minority_vbmi2(x, a.inputs, &mut m.idx);
        m.finish(len, a.inputs, ones, zeros);
        avx512::fire_lines(a, m.positions(), ones, zeros, o);
    }
}

/// Images through a first hidden layer from their pixels: each image's
/// minority by [`minority_of_pixels_vbmi2`], then [`avx512::fire_lines`].
pub fn fire_pixel_rows_vbmi2(
    a: &SlicedArgs<'_>,
    pixels: &[u8],
    threshold: u8,
    m: &mut super::Minority,
    out: &mut [u64],
) {
    // SAFETY: the caller checked `has_vbmi2` (AVX-512 with VPOPCNTQ, and
    // VBMI2), that the layer takes `fire_lines` and that `m` has room for
    // `a.inputs` positions.
    unsafe { fire_pixel_rows_vbmi2_impl(a, pixels, threshold, m, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,popcnt")]
fn fire_pixel_rows_vbmi2_impl(
    a: &SlicedArgs<'_>,
    pixels: &[u8],
    threshold: u8,
    m: &mut super::Minority,
    out: &mut [u64],
) {
    for (image, o) in pixels
        .chunks_exact(a.inputs)
        .zip(out.chunks_exact_mut(a.cw))
    {
        let (len, ones, zeros) = minority_of_pixels_vbmi2(image, threshold, &mut m.idx);
        m.finish(len, a.inputs, ones, zeros);
        avx512::fire_lines(a, m.positions(), ones, zeros, o);
    }
}

pub fn fire_avx2(a: &SlicedArgs<'_>, idx: &[u16], ones: usize, zeros: bool, out: &mut [u64]) {
    // SAFETY: the caller checked avx2.
    unsafe { avx2::fire(a, idx, ones, zeros, out) }
}

pub fn sum_planes_avx512(a: &SlicedArgs<'_>, idx: &[u16], out: &mut [u64]) {
    // SAFETY: the caller checked avx512f.
    unsafe { avx512::sum_planes(a, idx, out) }
}

pub fn sum_planes_avx2(a: &SlicedArgs<'_>, idx: &[u16], out: &mut [u64]) {
    // SAFETY: the caller checked avx2.
    unsafe { avx2::sum_planes(a, idx, out) }
}

pub fn minority_bmi(x: &[u64], inputs: usize, idx: &mut [u16]) -> (usize, usize, bool) {
    // SAFETY: the caller checked popcnt and bmi1 (`has_popcnt_bmi1`).
    unsafe { minority_popcnt(x, inputs, idx) }
}

/// The ones in `x`, by `POPCNT` (the caller checked `has_popcnt_bmi1`).
pub fn ones_popcnt(x: &[u64]) -> usize {
    // SAFETY: the caller checked popcnt (`has_popcnt_bmi1`).
    unsafe { ones_with_popcnt(x) }
}

#[target_feature(enable = "popcnt")]
fn ones_with_popcnt(x: &[u64]) -> usize {
    x.iter().map(|w| w.count_ones() as usize).sum()
}

/// The `tzcnt` loop with the instructions its name says.
#[target_feature(enable = "popcnt,bmi1")]
fn minority_popcnt(x: &[u64], inputs: usize, idx: &mut [u16]) -> (usize, usize, bool) {
    super::sliced::minority(x, inputs, idx)
}

/// One `VPTERNLOGQ` per full-adder output and per borrow.
pub(crate) mod avx512 {
    use super::*;

    type V = __m512i;
    const W: usize = 8;

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn zero() -> V {
        _mm512_setzero_si512()
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn splat(bit: bool) -> V {
        _mm512_set1_epi64(-i64::from(bit))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn load(src: &[u64], at: usize, live: usize) -> V {
        let s = &src[at..at + live];
        // SAFETY: the mask limits the load to the `live` words of `s`.
        unsafe { _mm512_maskz_loadu_epi64(((1u32 << live) - 1) as u8, s.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn store(dst: &mut [u64], at: usize, live: usize, v: V) {
        let d = &mut dst[at..at + live];
        // SAFETY: the mask limits the store to the `live` words of `d`.
        unsafe { _mm512_mask_storeu_epi64(d.as_mut_ptr().cast(), ((1u32 << live) - 1) as u8, v) }
    }

    /// Words `at .. at + live` of a column, `at = position·cw + offset`
    /// with `offset + live <= cw`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn load_column(src: &[u64], at: usize, live: usize) -> V {
        if live == W {
            debug_assert!(at + W <= src.len());
            // SAFETY: positions come from a `Minority` (each <= inputs) of
            // the layer's width and `Kernel::check_sliced` asserted
            // src.len() == (inputs + 1)·cw, so at + W <= src.len().
            unsafe { _mm512_loadu_si512(src.as_ptr().add(at).cast()) }
        } else {
            load(src, at, live)
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn and(a: V, b: V) -> V {
        _mm512_and_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor(a: V, b: V) -> V {
        _mm512_xor_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn xor3(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi64::<0x96>(a, b, c)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn maj(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi64::<0xE8>(a, b, c)
    }

    /// `maj(¬v, c, b)`: the truth table of `maj` with its first input
    /// inverted (bits of 0xE8 read at `a ^ 1`).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn borrow_of(v: V, c: V, b: V) -> V {
        _mm512_ternarylogic_epi64::<0x8E>(v, c, b)
    }

    crate::kernel::sliced::sliced_kernel!(#[target_feature(enable = "avx512f")]);
}

/// Plain and/xor/or: a full adder is five operations.
pub(crate) mod avx2 {
    use super::*;

    type V = __m256i;
    const W: usize = 4;

    #[target_feature(enable = "avx2")]
    #[inline]
    fn zero() -> V {
        _mm256_setzero_si256()
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn splat(bit: bool) -> V {
        _mm256_set1_epi64x(-i64::from(bit))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn load(src: &[u64], at: usize, live: usize) -> V {
        let s = &src[at..at + live];
        if live == W {
            // SAFETY: `s` holds exactly 4 words.
            unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
        } else {
            let mut full = [0u64; W];
            full[..live].copy_from_slice(s);
            // SAFETY: `full` holds 4 words.
            unsafe { _mm256_loadu_si256(full.as_ptr().cast()) }
        }
    }

    /// As in the 512-bit form: whole vectors unchecked.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn load_column(src: &[u64], at: usize, live: usize) -> V {
        if live == W {
            debug_assert!(at + W <= src.len());
            // SAFETY: positions come from a `Minority` (each <= inputs) of
            // the layer's width and `Kernel::check_sliced` asserted
            // src.len() == (inputs + 1)·cw, so at + W <= src.len().
            unsafe { _mm256_loadu_si256(src.as_ptr().add(at).cast()) }
        } else {
            load(src, at, live)
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn store(dst: &mut [u64], at: usize, live: usize, v: V) {
        let mut full = [0u64; W];
        // SAFETY: `full` holds 4 words.
        unsafe { _mm256_storeu_si256(full.as_mut_ptr().cast(), v) };
        dst[at..at + live].copy_from_slice(&full[..live]);
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn and(a: V, b: V) -> V {
        _mm256_and_si256(a, b)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor(a: V, b: V) -> V {
        _mm256_xor_si256(a, b)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn xor3(a: V, b: V, c: V) -> V {
        xor(xor(a, b), c)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn maj(a: V, b: V, c: V) -> V {
        _mm256_or_si256(and(a, b), and(c, _mm256_or_si256(a, b)))
    }

    /// `maj(¬v, c, b)`, with `andnot` doing the inversion for free.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn borrow_of(v: V, c: V, b: V) -> V {
        let not_v_and_c = _mm256_andnot_si256(v, c);
        let either = _mm256_or_si256(c, _mm256_andnot_si256(v, _mm256_set1_epi64x(-1)));
        _mm256_or_si256(not_v_and_c, and(b, either))
    }

    crate::kernel::sliced::sliced_kernel!(#[target_feature(enable = "avx2")]);
}

/// The listing of balanced images (more than 16 positions a word on
/// average, such as hidden activations): two `VPCOMPRESSW` of 16-bit
/// positions per word, with no test of the count. There the test
/// `minority_vbmi2` makes per word would be a coin toss for the branch
/// predictor, and mnist-deep ran 1–2 % slower with it.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,popcnt")]
fn list_by_halves(x: &[u64], side: super::sliced::Side, idx: &mut [u16]) -> (usize, usize, bool) {
    let step = _mm512_set1_epi16(32);
    let mut at = _mm512_set_epi16(
        31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9,
        8, 7, 6, 5, 4, 3, 2, 1, 0,
    );
    let mut len = 0;
    for w in 0..x.len() {
        let bits = side.word(x, w);
        for half in [bits as u32, (bits >> 32) as u32] {
            let packed = _mm512_maskz_compress_epi16(half, at);
            let out = &mut idx[len..len + 32];
            // SAFETY: `out` holds the 32 entries the store writes.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), packed) };
            len += half.count_ones() as usize;
            at = _mm512_add_epi16(at, step);
        }
    }
    (len, side.ones, side.zeros)
}

/// [`super::sliced::minority`] by `VPCOMPRESSB`: one compress per word of
/// the bit offsets within it (0..64, one byte each), widened to `u16` and
/// offset by the word's first position, in stores of 32 whole entries
/// (`idx` has 64 spare), kept up to the count: one compress a word where
/// 16-bit positions need two `VPCOMPRESSW`, which measured slower on the
/// MNIST test digits (docs/PERFORMANCE.md, "Why the kernels are as they
/// are"). Balanced images go to [`list_by_halves`].
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,popcnt")]
pub fn minority_vbmi2(x: &[u64], inputs: usize, idx: &mut [u16]) -> (usize, usize, bool) {
    let side = super::sliced::Side::of(x, inputs);
    let minority = if side.zeros {
        inputs - side.ones
    } else {
        side.ones
    };
    if minority > 16 * x.len() {
        return list_by_halves(x, side, idx);
    }
    let lanes = byte_lanes();
    let mut len = 0;
    for w in 0..x.len() {
        len = list_word(side.word(x, w), w, lanes, idx, len);
    }
    (len, side.ones, side.zeros)
}

/// The byte offsets 0..64, the values `VPCOMPRESSB` picks from.
#[target_feature(enable = "avx512f")]
#[inline]
fn byte_lanes() -> __m512i {
    _mm512_set_epi8(
        63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41,
        40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    )
}

/// Appends the positions of word `w`'s set `bits` at `idx[len..]` and
/// returns the new length: one byte compress, widened and offset by
/// `64·w`, in whole stores of 32 entries (`idx` must have 64 spare).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,popcnt")]
#[inline]
fn list_word(bits: u64, w: usize, lanes: __m512i, idx: &mut [u16], len: usize) -> usize {
    let offsets = _mm512_maskz_compress_epi8(bits, lanes);
    let first = _mm512_set1_epi16((w * 64) as i16);
    let low = _mm512_add_epi16(_mm512_cvtepu8_epi16(_mm512_castsi512_si256(offsets)), first);
    let out = &mut idx[len..len + 32];
    // SAFETY: `out` holds the 32 entries the store writes.
    unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), low) };
    let count = bits.count_ones() as usize;
    if count > 32 {
        let high = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64::<1>(offsets));
        let out = &mut idx[len + 32..len + 64];
        // SAFETY: `out` holds the 32 entries the store writes.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), _mm512_add_epi16(high, first)) };
    }
    len + count
}

/// [`minority_vbmi2`] of the bits `p >= threshold` of `pixels`, read
/// straight from the pixels: each 64-byte compare's mask feeds the
/// compress with no packed word stored and read back, and no count pass
/// before the listing. It lists the ones while counting them, as if they
/// were the minority (on digits they always are), and lists again from
/// the zeros when they were not; `idx` needs room for `pixels.len()`
/// positions and 64 spare.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,popcnt")]
pub fn minority_of_pixels_vbmi2(
    pixels: &[u8],
    threshold: u8,
    idx: &mut [u16],
) -> (usize, usize, bool) {
    let inputs = pixels.len();
    let t = _mm512_set1_epi8(threshold as i8);
    let ones_of = |w: usize| -> (u64, u64) {
        let left = inputs - w * 64;
        let live = if left >= 64 {
            u64::MAX
        } else {
            (1u64 << left) - 1
        };
        // SAFETY: the mask limits the load to the `left` pixels from 64·w.
        let v = unsafe { _mm512_maskz_loadu_epi8(live, pixels.as_ptr().add(w * 64).cast()) };
        (_mm512_cmpge_epu8_mask(v, t) & live, live)
    };
    let lanes = byte_lanes();
    let words = inputs.div_ceil(64);
    let mut len = 0;
    for w in 0..words {
        len = list_word(ones_of(w).0, w, lanes, idx, len);
    }
    let ones = len;
    if 2 * ones <= inputs {
        return (len, ones, false);
    }
    len = 0;
    for w in 0..words {
        let (bits, live) = ones_of(w);
        len = list_word(!bits & live, w, lanes, idx, len);
    }
    (len, ones, true)
}
