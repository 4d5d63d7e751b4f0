//! x86-64 SIMD kernels. All `unsafe` code of the engine lives in this file
//! and in `sliced_x86` (the sparse layer).
//!
//! Each public function here checks nothing itself: `Kernel::checked` has
//! already confirmed the CPU features at run time, and the slice lengths were
//! asserted by the dispatching method in `mod.rs`. Those two facts are what
//! every `// SAFETY:` line below relies on.

use std::arch::x86_64::*;

use crate::rule::DecisionRule;

use super::{
    FireArgs, OutputArgs, PixelGroups, PixelPairs, LANES, PIXEL_GROUP, PIXEL_LANES, TILE_BLOCKS,
};

use super::cpu::Level;

pub fn has_avx512_vnni() -> bool {
    Level::Vnni.on()
}

pub fn pack_pixels_avx512(pixels: &[u8], threshold: u8, out: &mut [u64]) {
    // SAFETY: the caller checked avx512f + avx512bw; out holds one word per
    // 64 pixels (rounded up), asserted by the caller.
    unsafe { pack_pixels_avx512_impl(pixels, threshold, out) }
}

/// One unsigned byte compare per 64 pixels yields the word directly.
///
/// # Safety
/// The CPU has the features this function enables, and `out` holds one word per 64 pixels, rounded up.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_pixels_avx512_impl(pixels: &[u8], threshold: u8, out: &mut [u64]) {
    let t = _mm512_set1_epi8(threshold as i8);
    for (i, word) in out.iter_mut().enumerate() {
        let start = i * 64;
        let left = pixels.len() - start;
        let mask: __mmask64 = if left >= 64 {
            u64::MAX
        } else {
            (1u64 << left) - 1
        };
        // SAFETY: the mask limits the load to the `left` bytes that remain.
        let v = unsafe { _mm512_maskz_loadu_epi8(mask, pixels.as_ptr().add(start).cast()) };
        *word = _mm512_cmpge_epu8_mask(v, t) & mask;
    }
}

pub fn pack_pixel_rows_avx512(pixels: &[u8], per: usize, threshold: u8, out: &mut [u64]) {
    // SAFETY: the caller checked avx512f + avx512bw, and that out holds
    // words_for(per) words per image.
    unsafe { pack_pixel_rows_avx512_impl(pixels, per, threshold, out) }
}

/// # Safety
/// The CPU has the features this function enables, and `out` holds `words_for(per)` words per image of `per` pixels.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_pixel_rows_avx512_impl(pixels: &[u8], per: usize, threshold: u8, out: &mut [u64]) {
    let wpr = crate::bits::words_for(per);
    for (image, words) in pixels.chunks_exact(per).zip(out.chunks_exact_mut(wpr)) {
        // SAFETY: as above, per image.
        unsafe { pack_pixels_avx512_impl(image, threshold, words) };
    }
}

pub fn pack_pixel_rows_avx2(pixels: &[u8], per: usize, threshold: u8, out: &mut [u64]) {
    // SAFETY: the caller checked avx2, and that out holds words_for(per)
    // words per image.
    unsafe { pack_pixel_rows_avx2_impl(pixels, per, threshold, out) }
}

/// # Safety
/// The CPU has the features this function enables, and `out` holds `words_for(per)` words per image of `per` pixels.
#[target_feature(enable = "avx2")]
unsafe fn pack_pixel_rows_avx2_impl(pixels: &[u8], per: usize, threshold: u8, out: &mut [u64]) {
    let wpr = crate::bits::words_for(per);
    for (image, words) in pixels.chunks_exact(per).zip(out.chunks_exact_mut(wpr)) {
        // SAFETY: as above, per image.
        unsafe { pack_pixels_avx2_impl(image, threshold, words) };
    }
}

pub fn pack_pixels_avx2(pixels: &[u8], threshold: u8, out: &mut [u64]) {
    // SAFETY: the caller checked avx2; out holds one word per 64 pixels.
    unsafe { pack_pixels_avx2_impl(pixels, threshold, out) }
}

/// `max(p, t) == p` is the unsigned `p >= t` AVX2 lacks; `movemask` then
/// gathers 32 results at a time.
///
/// # Safety
/// The CPU has the features this function enables, and `out` holds one word per 64 pixels, rounded up.
#[target_feature(enable = "avx2")]
unsafe fn pack_pixels_avx2_impl(pixels: &[u8], threshold: u8, out: &mut [u64]) {
    let t = _mm256_set1_epi8(threshold as i8);
    let whole = pixels.len() / 64;
    for (i, word) in out[..whole].iter_mut().enumerate() {
        // SAFETY: word i < whole covers bytes 64·i .. 64·i + 64 of pixels.
        let (lo, hi) = unsafe {
            let p = pixels.as_ptr().add(i * 64);
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        let lo = _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(lo, t), lo)) as u32;
        let hi = _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(hi, t), hi)) as u32;
        *word = u64::from(lo) | u64::from(hi) << 32;
    }
    if whole < out.len() {
        crate::bits::pack_pixels(&pixels[whole * 64..], threshold, &mut out[whole..]);
    }
}

// ---------------------------------------------------------------- AVX-512

pub fn xor_popcount_avx512(a: &[u64], b: &[u64]) -> u32 {
    // SAFETY: the caller checked avx512f + avx512vpopcntdq; a.len() == b.len().
    unsafe { xor_popcount_avx512_impl(a, b) }
}

/// # Safety
/// The CPU has the features this function enables, and `a` and `b` are equally long.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn xor_popcount_avx512_impl(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len();
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask8 = if left >= 8 { 0xff } else { (1u8 << left) - 1 };
        // SAFETY: the mask limits the loads to the `left` words that remain
        // in both slices; masked-off lanes are not read.
        let (va, vb) = unsafe {
            (
                _mm512_maskz_loadu_epi64(mask, a.as_ptr().add(i).cast()),
                _mm512_maskz_loadu_epi64(mask, b.as_ptr().add(i).cast()),
            )
        };
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(va, vb)));
        i += 8;
    }
    _mm512_reduce_add_epi64(acc) as u32
}

/// Popcounts of `R` rows against `N` consecutive interleaved blocks, in
/// 8-lane accumulators. Each input word is broadcast once for all `N` blocks
/// and each weight line (word k of 8 neurons) is loaded once for all `R`
/// rows, which halves the loads per popcount against one row at a time.
///
/// # Safety
/// The CPU has the features this function enables; `x` points to `R` rows of `wpr` words, and `w` to `N` interleaved blocks of `wpr·8` words.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
#[inline]
unsafe fn blocks_avx512<const R: usize, const N: usize>(
    x: *const u64,
    wpr: usize,
    w: *const u64,
) -> [[__m512i; N]; R] {
    let mut acc = [[_mm512_setzero_si512(); N]; R];
    for k in 0..wpr {
        // SAFETY: k < wpr; rows 0..R start at x + r·wpr, and block j, word k
        // lies at (j·wpr + k)·8 .. +8 inside the N blocks that start at `w`.
        unsafe {
            let mut xv = [_mm512_setzero_si512(); R];
            for (r, v) in xv.iter_mut().enumerate() {
                *v = _mm512_set1_epi64(*x.add(r * wpr + k) as i64);
            }
            for j in 0..N {
                let wv = _mm512_loadu_si512(w.add((j * wpr + k) * LANES).cast());
                for (row, &xr) in acc.iter_mut().zip(&xv) {
                    let pop = _mm512_popcnt_epi64(_mm512_xor_si512(xr, wv));
                    row[j] = _mm512_add_epi64(row[j], pop);
                }
            }
        }
    }
    acc
}

pub fn scores_classes_avx512(a: &OutputArgs<'_>, scores: &mut [f32], classes: &mut [usize]) {
    // SAFETY: the caller checked avx512f, that 0 < bias.len() <= 16 and
    // bias.len() <= padded, pops ≥ rows·padded and scores = rows·bias.len().
    unsafe { scores_classes_avx512_impl(a, scores, classes) }
}

/// One masked vector of up to 16 classes a row. The arithmetic is the
/// scalar reference's, lane by lane (`cvtdq2ps` rounds as `as f32` does,
/// and the scores are finite), so the scores are the same bits; the
/// decision takes the first lane equal to the maximum (ties to the lowest
/// class, as the scalar compare-select does) or the first non-negative one.
///
/// # Safety
/// The CPU has the features this function enables; `0 < bias.len() <= 16`, `bias.len() <= padded`, `pops` holds `classes.len()·padded` counts and `scores` `classes.len()·bias.len()` values.
#[target_feature(enable = "avx512f")]
unsafe fn scores_classes_avx512_impl(
    a: &OutputArgs<'_>,
    scores: &mut [f32],
    classes: &mut [usize],
) {
    let (pops, padded, bias) = (a.pops, a.padded, a.bias);
    let c = bias.len();
    let live = ((1u32 << c) - 1) as __mmask16;
    // SAFETY: the mask limits the load to the c entries of bias.
    let b = unsafe { _mm512_maskz_loadu_ps(live, bias.as_ptr()) };
    let n = _mm512_set1_epi32(a.inputs as i32);
    let row = |r: usize| {
        // SAFETY: row r < rows reads pops r·padded .. r·padded + c, within
        // rows·padded as c <= padded.
        let p = unsafe { _mm512_maskz_loadu_epi32(live, pops.as_ptr().add(r * padded).cast()) };
        let d = _mm512_sub_epi32(n, _mm512_add_epi32(p, p));
        _mm512_add_ps(_mm512_cvtepi32_ps(d), b)
    };
    let out = scores.as_mut_ptr();
    for (r, class) in classes.iter_mut().enumerate() {
        let s = row(r);
        // SAFETY: row r's scores are r·c .. r·c + c of rows·c.
        unsafe { _mm512_mask_storeu_ps(out.add(r * c), live, s) };
        let hits = match a.rule {
            DecisionRule::Scores => {
                let top = _mm512_set1_ps(_mm512_mask_reduce_max_ps(live, s));
                _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(live, s, top)
            }
            DecisionRule::Seed => {
                _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(live, s, _mm512_setzero_ps())
            }
        };
        *class = if hits == 0 {
            0
        } else {
            hits.trailing_zeros() as usize
        };
    }
}

pub fn block_popcounts_avx512(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    // SAFETY: features checked by the caller; lengths asserted by the caller:
    // xs ≥ rows·wpr, weights = blocks·wpr·8, out ≥ rows·blocks·8.
    unsafe { block_popcounts_avx512_impl(xs, rows, wpr, weights, blocks, out) }
}

/// Rows two at a time and blocks two at a time, as in `fire_avx512_impl`:
/// each weight line serves both rows and each broadcast word both blocks.
/// One row and one block at a time, an output layer of 10 neurons (two
/// blocks) made twice the loads for the same popcounts.
///
/// # Safety
/// The CPU has the features this function enables; `xs` holds `rows·wpr` words, `weights` `blocks·wpr·8` and `out` `rows·blocks·8` counts.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn block_popcounts_avx512_impl(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    let store = |out: &mut [u32], r: usize, b: usize, acc: __m512i| {
        let at = (r * blocks + b) * LANES;
        let narrow = _mm512_cvtepi64_epi32(acc);
        // SAFETY: the 8 u32 at `at` are inside `out` (the slice index).
        unsafe { _mm256_storeu_si256(out[at..at + LANES].as_mut_ptr().cast(), narrow) };
    };
    let mut r = 0;
    while r < rows {
        let two = rows - r >= 2;
        let mut b = 0;
        while b < blocks {
            let pair = blocks - b >= 2;
            // SAFETY: rows r (and r + 1 when `two`) are < rows and blocks
            // b (and b + 1 when `pair`) are < blocks, inside the slices whose
            // lengths the caller asserted.
            let (x, w) = unsafe {
                (
                    xs.as_ptr().add(r * wpr),
                    weights.as_ptr().add(b * wpr * LANES),
                )
            };
            match (two, pair) {
                (true, true) => {
                    // SAFETY: as above.
                    let [[a0, a1], [b0, b1]] = unsafe { blocks_avx512::<2, 2>(x, wpr, w) };
                    store(out, r, b, a0);
                    store(out, r, b + 1, a1);
                    store(out, r + 1, b, b0);
                    store(out, r + 1, b + 1, b1);
                }
                (true, false) => {
                    // SAFETY: as above.
                    let [[a0], [b0]] = unsafe { blocks_avx512::<2, 1>(x, wpr, w) };
                    store(out, r, b, a0);
                    store(out, r + 1, b, b0);
                }
                (false, true) => {
                    // SAFETY: as above.
                    let [[a0, a1]] = unsafe { blocks_avx512::<1, 2>(x, wpr, w) };
                    store(out, r, b, a0);
                    store(out, r, b + 1, a1);
                }
                (false, false) => {
                    // SAFETY: as above.
                    let [[a0]] = unsafe { blocks_avx512::<1, 1>(x, wpr, w) };
                    store(out, r, b, a0);
                }
            }
            b += if pair { 2 } else { 1 };
        }
        r += if two { 2 } else { 1 };
    }
}

pub fn fire_avx512(a: &FireArgs<'_>, out: &mut [u64]) {
    // SAFETY: features checked by the caller; lengths asserted by the caller.
    unsafe { fire_avx512_impl(a, out) }
}

/// # Safety
/// The CPU has the features this function enables, and the lengths of `a` and `out` are those `Kernel::fire` asserts.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn fire_avx512_impl(a: &FireArgs<'_>, out: &mut [u64]) {
    let wpr = a.wpr;
    for tile in (0..a.blocks).step_by(TILE_BLOCKS) {
        let end = (tile + TILE_BLOCKS).min(a.blocks);
        let mut r = 0;
        while r < a.rows {
            // Two rows at a time share every weight load; an odd last row
            // goes alone.
            let two = a.rows - r >= 2;
            let (mut word0, mut word1) = (0u64, 0u64);
            // Each row's set of limits (the same set unless the caller
            // gives rows their own).
            let set0 = a.limits_at(r);
            let set1 = if two { a.limits_at(r + 1) } else { set0 };
            let mut b = tile;
            while b < end {
                // Four blocks at a time share each broadcast input word.
                let step = if end - b >= 4 { 4 } else { 1 };
                // SAFETY: rows r (and r + 1 when `two`) are < rows, and blocks
                // b..b+step are < blocks, so inputs, weights and limits (in
                // each row's set, inside `limits`) are inside the slices
                // whose lengths the caller asserted.
                unsafe {
                    let x = a.xs.as_ptr().add(r * wpr);
                    let w = a.weights.as_ptr().add(b * wpr * LANES);
                    let shift = |j: usize| 8 * (b + j - tile);
                    match (two, step) {
                        (true, 4) => {
                            let [p0, p1] = blocks_avx512::<2, 4>(x, wpr, w);
                            for j in 0..4 {
                                word0 |=
                                    fire_mask(p0[j], a, set0 + (b + j) * LANES, b + j) << shift(j);
                                word1 |=
                                    fire_mask(p1[j], a, set1 + (b + j) * LANES, b + j) << shift(j);
                            }
                        }
                        (true, _) => {
                            let [[p0], [p1]] = blocks_avx512::<2, 1>(x, wpr, w);
                            word0 |= fire_mask(p0, a, set0 + b * LANES, b) << shift(0);
                            word1 |= fire_mask(p1, a, set1 + b * LANES, b) << shift(0);
                        }
                        (false, 4) => {
                            let [p0] = blocks_avx512::<1, 4>(x, wpr, w);
                            for (j, p) in p0.into_iter().enumerate() {
                                word0 |= fire_mask(p, a, set0 + (b + j) * LANES, b + j) << shift(j);
                            }
                        }
                        (false, _) => {
                            let [[p0]] = blocks_avx512::<1, 1>(x, wpr, w);
                            word0 |= fire_mask(p0, a, set0 + b * LANES, b) << shift(0);
                        }
                    }
                }
                b += step;
            }
            out[r * a.out_wpr + tile / TILE_BLOCKS] = word0;
            if two {
                out[(r + 1) * a.out_wpr + tile / TILE_BLOCKS] = word1;
            }
            r += if two { 2 } else { 1 };
        }
    }
}

/// The 8 firing bits of block `b`, whose limits begin at `at` in
/// `a.limits`: `(popcount <= limit) XOR flip`.
///
/// # Safety
/// The CPU has the features this function enables, `b` is below the blocks of `a`, and `a.limits` holds the 8 values at `at`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn fire_mask(pops: __m512i, a: &FireArgs<'_>, at: usize, b: usize) -> u64 {
    // SAFETY: the caller keeps at + 8 within limits.
    let limits = unsafe { _mm512_loadu_si512(a.limits.as_ptr().add(at).cast()) };
    u64::from(_mm512_cmple_epi64_mask(pops, limits) ^ a.flips[b])
}

// ------------------------------------------------------------------- AVX2

/// Per-byte popcounts of a 256-bit vector by two 16-entry table lookups
/// (one per nibble): AVX2 has no vector popcount instruction.
#[target_feature(enable = "avx2")]
#[inline]
fn popcount_bytes(v: __m256i) -> __m256i {
    let table = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3,
        3, 4,
    );
    let low = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(v, low);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
    _mm256_add_epi8(
        _mm256_shuffle_epi8(table, lo),
        _mm256_shuffle_epi8(table, hi),
    )
}

pub fn xor_popcount_avx2(a: &[u64], b: &[u64]) -> u32 {
    // SAFETY: the caller checked avx2; a.len() == b.len().
    unsafe { xor_popcount_avx2_impl(a, b) }
}

/// # Safety
/// The CPU has the features this function enables, and `a` and `b` are equally long.
#[target_feature(enable = "avx2")]
unsafe fn xor_popcount_avx2_impl(a: &[u64], b: &[u64]) -> u32 {
    let whole = a.len() / 4 * 4;
    let mut acc = _mm256_setzero_si256();
    for i in (0..whole).step_by(4) {
        // SAFETY: i + 4 <= whole <= len of both slices.
        let (va, vb) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(i).cast()),
                _mm256_loadu_si256(b.as_ptr().add(i).cast()),
            )
        };
        let bytes = popcount_bytes(_mm256_xor_si256(va, vb));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
    }
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` is 32 bytes, the size of one unaligned store.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
    let tail: u32 = a[whole..]
        .iter()
        .zip(&b[whole..])
        .map(|(x, w)| (x ^ w).count_ones())
        .sum();
    lanes.iter().sum::<u64>() as u32 + tail
}

/// Popcounts of one row against one interleaved block: two 4-lane halves
/// with byte accumulators, widened by `vpsadbw` before they can overflow
/// (31 words × at most 8 per byte < 256).
///
/// # Safety
/// The CPU has the features this function enables; `x` points to `wpr` words, and `w` to one interleaved block of `wpr·8` words.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block_avx2(x: *const u64, wpr: usize, w: *const u64) -> (__m256i, __m256i) {
    let zero = _mm256_setzero_si256();
    let (mut lo64, mut hi64) = (zero, zero);
    let mut k = 0;
    while k < wpr {
        let stop = (k + 31).min(wpr);
        let (mut lo8, mut hi8) = (zero, zero);
        while k < stop {
            // SAFETY: k < wpr; word k of the block is 8 words at w + k·8.
            unsafe {
                let xv = _mm256_set1_epi64x(*x.add(k) as i64);
                let w0 = _mm256_loadu_si256(w.add(k * LANES).cast());
                let w1 = _mm256_loadu_si256(w.add(k * LANES + 4).cast());
                lo8 = _mm256_add_epi8(lo8, popcount_bytes(_mm256_xor_si256(xv, w0)));
                hi8 = _mm256_add_epi8(hi8, popcount_bytes(_mm256_xor_si256(xv, w1)));
            }
            k += 1;
        }
        lo64 = _mm256_add_epi64(lo64, _mm256_sad_epu8(lo8, zero));
        hi64 = _mm256_add_epi64(hi64, _mm256_sad_epu8(hi8, zero));
    }
    (lo64, hi64)
}

pub fn block_popcounts_avx2(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    // SAFETY: features checked by the caller; lengths asserted by the caller.
    unsafe { block_popcounts_avx2_impl(xs, rows, wpr, weights, blocks, out) }
}

/// # Safety
/// The CPU has the features this function enables; `xs` holds `rows·wpr` words, `weights` `blocks·wpr·8` and `out` `rows·blocks·8` counts.
#[target_feature(enable = "avx2")]
unsafe fn block_popcounts_avx2_impl(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    for r in 0..rows {
        for b in 0..blocks {
            let mut pops = [0u64; LANES];
            // SAFETY: row r and block b are in bounds (caller's asserts);
            // `pops` holds the two 32-byte stores.
            unsafe {
                let (lo, hi) = block_avx2(
                    xs.as_ptr().add(r * wpr),
                    wpr,
                    weights.as_ptr().add(b * wpr * LANES),
                );
                _mm256_storeu_si256(pops.as_mut_ptr().cast(), lo);
                _mm256_storeu_si256(pops.as_mut_ptr().add(4).cast(), hi);
            }
            let o = (r * blocks + b) * LANES;
            for (dst, p) in out[o..o + LANES].iter_mut().zip(pops) {
                *dst = p as u32;
            }
        }
    }
}

pub fn fire_avx2(a: &FireArgs<'_>, out: &mut [u64]) {
    // SAFETY: features checked by the caller; lengths asserted by the caller.
    unsafe { fire_avx2_impl(a, out) }
}

/// # Safety
/// The CPU has the features this function enables, and the lengths of `a` and `out` are those `Kernel::fire` asserts.
#[target_feature(enable = "avx2")]
unsafe fn fire_avx2_impl(a: &FireArgs<'_>, out: &mut [u64]) {
    let wpr = a.wpr;
    for tile in (0..a.blocks).step_by(TILE_BLOCKS) {
        let end = (tile + TILE_BLOCKS).min(a.blocks);
        for r in 0..a.rows {
            let mut word = 0u64;
            let set = a.limits_at(r);
            for b in tile..end {
                // SAFETY: r < rows and b < blocks (caller's asserts), so the
                // row, the block's weights and its 8 limits in row r's set
                // (inside `limits`, asserted) are in bounds.
                let mask = unsafe {
                    let (lo, hi) = block_avx2(
                        a.xs.as_ptr().add(r * wpr),
                        wpr,
                        a.weights.as_ptr().add(b * wpr * LANES),
                    );
                    let lim = a.limits.as_ptr().add(set + b * LANES);
                    let over_lo = _mm256_cmpgt_epi64(lo, _mm256_loadu_si256(lim.cast()));
                    let over_hi = _mm256_cmpgt_epi64(hi, _mm256_loadu_si256(lim.add(4).cast()));
                    let over = _mm256_movemask_pd(_mm256_castsi256_pd(over_lo))
                        | _mm256_movemask_pd(_mm256_castsi256_pd(over_hi)) << 4;
                    (!over as u8) ^ a.flips[b]
                };
                word |= u64::from(mask) << (8 * (b - tile));
            }
            out[r * a.out_wpr + tile / TILE_BLOCKS] = word;
        }
    }
}

// ----------------------------------------------------------- pixel layers

/// Bytes of one pixel-layer line: 4 pixels' weights for one block.
const PIXEL_LINE: usize = PIXEL_LANES * PIXEL_GROUP;

pub fn pixel_fire_avx512(dots: &[i32], cuts: &[i32], flips: &[u16], out: &mut [u64]) {
    // SAFETY: the caller checked avx512f and asserted dots.len() ==
    // cuts.len() == flips.len()·16 and out.len()·4 >= flips.len().
    unsafe { pixel_fire_avx512_impl(dots, cuts, flips, out) }
}

/// One compare per block of 16 neurons gives its 16 bits.
///
/// # Safety
/// The CPU has the features this function enables; `dots` and `cuts` hold `flips.len()·16` values, and `out` `flips.len() / 4` words at least.
#[target_feature(enable = "avx512f")]
unsafe fn pixel_fire_avx512_impl(dots: &[i32], cuts: &[i32], flips: &[u16], out: &mut [u64]) {
    out.fill(0);
    for (b, &flip) in flips.iter().enumerate() {
        // SAFETY: b < flips.len(), so the 16 values at b·16 are inside both.
        let mask = unsafe {
            let d = _mm512_loadu_si512(dots.as_ptr().add(b * PIXEL_LANES).cast());
            let c = _mm512_loadu_si512(cuts.as_ptr().add(b * PIXEL_LANES).cast());
            _mm512_cmpge_epi32_mask(d, c)
        };
        out[b / 4] |= u64::from(mask ^ flip) << (16 * (b % 4));
    }
}

/// The 64 pixels at `start` (fewer at the end of the image, the rest
/// read as zero).
///
/// # Safety
/// The CPU has the features this function enables, and `start <= image.len()`.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn load_pixels(image: &[u8], start: usize) -> __m512i {
    let left = image.len() - start;
    let mask = if left >= 64 {
        u64::MAX
    } else {
        (1u64 << left) - 1
    };
    // SAFETY: the mask covers only bytes start .. image.len(); the masked
    // bytes are not read.
    unsafe { _mm512_maskz_loadu_epi8(mask, image.as_ptr().add(start).cast()) }
}

/// Group indices `first .. first + 16`.
#[target_feature(enable = "avx512f")]
#[inline]
fn group_indices(first: usize) -> __m512i {
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    _mm512_add_epi32(iota, _mm512_set1_epi32(first as i32))
}

/// Appends the lanes of `v` that `keep` selects to `list` at `*at`, as
/// one whole-vector store.
///
/// # Safety
/// `list` holds `*at + 16` entries at least.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn append(list: &mut [u32], at: usize, keep: __mmask16, v: __m512i) {
    debug_assert!(at + PIXEL_LANES <= list.len());
    // SAFETY: the caller guarantees 16 entries at `at`.
    unsafe {
        _mm512_storeu_si512(
            list.as_mut_ptr().add(at).cast(),
            _mm512_maskz_compress_epi32(keep, v),
        )
    }
}

pub fn pixel_groups_avx512(image: &[u8], out: &mut PixelGroups) {
    assert!(out.a.len() >= image.len().div_ceil(PIXEL_GROUP) + PIXEL_LANES);
    assert!(out.index.len() == out.a.len());
    // SAFETY: the caller checked avx512f + avx512bw + popcnt; the lists hold 16
    // entries past the image's groups (asserted above).
    unsafe { pixel_groups_avx512_impl(image, out) }
}

/// 16 groups a step: `VPTESTMD` marks the non-zero ones, `VPCOMPRESSD`
/// packs their pixels and indices; no branch per group.
///
/// # Safety
/// The CPU has the features this function enables, and both lists of `out` hold 16 entries past the image's groups.
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn pixel_groups_avx512_impl(image: &[u8], out: &mut PixelGroups) {
    let (mut n, mut sum) = (0, _mm512_setzero_si512());
    for start in (0..image.len()).step_by(64) {
        // SAFETY: start < image.len(); before this step at most one entry
        // per group was listed, so n <= start/4 and the lists hold 16
        // entries at n.
        unsafe {
            let v = load_pixels(image, start);
            sum = _mm512_add_epi64(sum, _mm512_sad_epu8(v, _mm512_setzero_si512()));
            let keep = _mm512_test_epi32_mask(v, v);
            append(&mut out.a, n, keep, v);
            append(&mut out.index, n, keep, group_indices(start / PIXEL_GROUP));
            n += keep.count_ones() as usize;
        }
    }
    out.len = n;
    out.sum = _mm512_reduce_add_epi64(sum) as u32;
}

pub fn pixel_pair_groups_avx512(a: &[u8], b: &[u8], out: &mut PixelPairs) {
    let room = a.len().div_ceil(PIXEL_GROUP) + PIXEL_LANES;
    assert!(a.len() == b.len() && out.both.b.len() >= room);
    for list in [&out.both, &out.only_a, &out.only_b] {
        assert!(list.a.len() >= room && list.index.len() >= room);
    }
    // SAFETY: the caller checked avx512f + avx512bw + popcnt; every list holds 16
    // entries past the images' groups (asserted above).
    unsafe { pixel_pair_groups_avx512_impl(a, b, out) }
}

/// As [`pixel_groups_avx512_impl`], with the two images' masks split
/// three ways.
///
/// # Safety
/// The CPU has the features this function enables; `a` and `b` are equally long, and every list of `out` holds 16 entries past the images' groups.
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn pixel_pair_groups_avx512_impl(a: &[u8], b: &[u8], out: &mut PixelPairs) {
    let (mut n_both, mut n_a, mut n_b) = (0, 0, 0);
    let (mut sum_a, mut sum_b) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for start in (0..a.len()).step_by(64) {
        // SAFETY: as in `pixel_groups_avx512_impl`, for each list.
        unsafe {
            let (va, vb) = (load_pixels(a, start), load_pixels(b, start));
            sum_a = _mm512_add_epi64(sum_a, _mm512_sad_epu8(va, _mm512_setzero_si512()));
            sum_b = _mm512_add_epi64(sum_b, _mm512_sad_epu8(vb, _mm512_setzero_si512()));
            let (ma, mb) = (
                _mm512_test_epi32_mask(va, va),
                _mm512_test_epi32_mask(vb, vb),
            );
            let idx = group_indices(start / PIXEL_GROUP);
            let (both, only_a, only_b) = (ma & mb, ma & !mb, mb & !ma);
            append(&mut out.both.a, n_both, both, va);
            append(&mut out.both.b, n_both, both, vb);
            append(&mut out.both.index, n_both, both, idx);
            append(&mut out.only_a.a, n_a, only_a, va);
            append(&mut out.only_a.index, n_a, only_a, idx);
            append(&mut out.only_b.a, n_b, only_b, vb);
            append(&mut out.only_b.index, n_b, only_b, idx);
            n_both += both.count_ones() as usize;
            n_a += only_a.count_ones() as usize;
            n_b += only_b.count_ones() as usize;
        }
    }
    out.both.len = n_both;
    out.only_a.len = n_a;
    out.only_b.len = n_b;
    out.sums = [sum_a, sum_b].map(|s| _mm512_reduce_add_epi64(s) as u32);
}

pub fn pixel_dots_avx512(groups: &PixelGroups, weights: &[i8], blocks: usize, dots: &mut [i32]) {
    if has_avx512_vnni() {
        // SAFETY: avx512f + avx512vnni checked just above; the caller
        // asserted weights = total groups·blocks·64 bytes, every listed
        // group index below the total, and dots = blocks·16 values.
        unsafe { pixel_dots_vnni_impl(groups, weights, blocks, dots) }
    } else {
        // AVX-512 CPUs without VNNI (before Ice Lake) all have AVX2.
        pixel_dots_avx2(groups, weights, blocks, dots)
    }
}

/// # Safety
/// The CPU has the features this function enables; `weights` holds `groups·blocks·64` bytes, every listed group index is below `groups`, and `dots` holds `blocks·16` values.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn pixel_dots_vnni_impl(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    dots: &mut [i32],
) {
    let mut j = 0;
    while j < blocks {
        // SAFETY: blocks j..j + N are < blocks (the step is chosen so), so
        // both the weight lines and the sums at j·16.. are in bounds.
        unsafe {
            let d = dots.as_mut_ptr();
            j += match blocks - j {
                16.. => pixel_chunk_vnni::<16>(groups, weights, blocks, j, d),
                8.. => pixel_chunk_vnni::<8>(groups, weights, blocks, j, d),
                4.. => pixel_chunk_vnni::<4>(groups, weights, blocks, j, d),
                _ => pixel_chunk_vnni::<1>(groups, weights, blocks, j, d),
            };
        }
    }
}

/// Adds one image's listed groups to `N` blocks of sums held in registers:
/// per group one broadcast and `N` `VPDPBUSD` (u8 pixels × i8 weights, 4
/// products summed per 32-bit lane).
///
/// # Safety
/// Every index is below the layer's groups and `b + N <= blocks`.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn add_groups<const N: usize>(
    sums: &mut [__m512i; N],
    fours: &[u32],
    index: &[u32],
    weights: &[i8],
    blocks: usize,
    b: usize,
) {
    let line = blocks * PIXEL_LINE;
    for (&four, &g) in fours.iter().zip(index) {
        let x = _mm512_set1_epi32(four as i32);
        // SAFETY: g < total groups and b + N <= blocks, so the N lines at
        // g·line + (b + j)·64 lie inside `weights`.
        unsafe {
            let w = weights.as_ptr().add(g as usize * line + b * PIXEL_LINE);
            for (j, v) in sums.iter_mut().enumerate() {
                let wv = _mm512_loadu_si512(w.add(j * PIXEL_LINE).cast());
                *v = _mm512_dpbusd_epi32(*v, x, wv);
            }
        }
    }
}

/// Stores `N` blocks of sums at block `b` of `dots`.
///
/// # Safety
/// `dots` holds `(b + N)·16` values.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_sums<const N: usize>(sums: [__m512i; N], dots: *mut i32, b: usize) {
    for (j, v) in sums.into_iter().enumerate() {
        // SAFETY: block b + j < b + N, inside `dots` by the caller's promise.
        unsafe { _mm512_storeu_si512(dots.add((b + j) * PIXEL_LANES).cast(), v) };
    }
}

/// `N` blocks (16·N neurons) of one image over its listed groups.
///
/// # Safety
/// The CPU has the features this function enables; `b + N <= blocks`, every listed index is below the layer's groups, and `dots` holds `blocks·16` values.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn pixel_chunk_vnni<const N: usize>(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    b: usize,
    dots: *mut i32,
) -> usize {
    let mut sums = [_mm512_setzero_si512(); N];
    // SAFETY: the caller guarantees b + N <= blocks, valid indices and
    // blocks·16 values at `dots`.
    unsafe {
        add_groups(&mut sums, groups.a(), groups.index(), weights, blocks, b);
        store_sums(sums, dots, b);
    }
    N
}

pub fn pixel_dots_avx2(groups: &PixelGroups, weights: &[i8], blocks: usize, dots: &mut [i32]) {
    // SAFETY: the caller checked avx2 (AVX-512 CPUs have it too); bounds as
    // in `pixel_dots_avx512`.
    unsafe { pixel_dots_avx2_impl(groups, weights, blocks, dots) }
}

/// # Safety
/// The CPU has the features this function enables; `weights` holds `groups·blocks·64` bytes, every listed group index is below `groups`, and `dots` holds `blocks·16` values.
#[target_feature(enable = "avx2")]
unsafe fn pixel_dots_avx2_impl(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    dots: &mut [i32],
) {
    let mut j = 0;
    while j < blocks {
        // SAFETY: blocks j..j + N are < blocks (the step is chosen so).
        unsafe {
            let d = dots.as_mut_ptr().add(j * PIXEL_LANES);
            j += match blocks - j {
                4.. => pixel_chunk_avx2::<4>(groups, weights, blocks, j, d),
                _ => pixel_chunk_avx2::<1>(groups, weights, blocks, j, d),
            };
        }
    }
}

/// `N` blocks over every listed group with `VPMADDUBSW` (u8 × i8, pairs
/// summed to i16: at most 2·255, no saturation) and `VPMADDWD` against
/// ones (pairs summed to i32): 16 neurons per block in two halves.
///
/// # Safety
/// The CPU has the features this function enables; `b + N <= blocks`, every listed index is below the layer's groups, and `dots` holds `blocks·16` values.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn pixel_chunk_avx2<const N: usize>(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    b: usize,
    dots: *mut i32,
) -> usize {
    let ones = _mm256_set1_epi16(1);
    let mut sums = [[_mm256_setzero_si256(); 2]; N];
    let line = blocks * PIXEL_LINE;
    for (&four, &g) in groups.a().iter().zip(groups.index()) {
        let x = _mm256_set1_epi32(four as i32);
        // SAFETY: as in `add_groups`: the N lines are inside `weights`.
        unsafe {
            let w = weights.as_ptr().add(g as usize * line + b * PIXEL_LINE);
            for (j, v) in sums.iter_mut().enumerate() {
                for (h, half) in v.iter_mut().enumerate() {
                    let wv = _mm256_loadu_si256(w.add(j * PIXEL_LINE + h * 32).cast());
                    let pairs = _mm256_maddubs_epi16(x, wv);
                    *half = _mm256_add_epi32(*half, _mm256_madd_epi16(pairs, ones));
                }
            }
        }
    }
    for (j, v) in sums.into_iter().enumerate() {
        for (h, half) in v.into_iter().enumerate() {
            // SAFETY: the caller guarantees N blocks of 16 sums at `dots`.
            unsafe { _mm256_storeu_si256(dots.add(j * PIXEL_LANES + h * 8).cast(), half) };
        }
    }
    N
}

/// Two images at once from their [`PixelPairs`], each pass over the
/// lists covering `NI` blocks from the `i8` weights and `NS` from the sign
/// bits (`signs[g·blocks + b]`, bit `4·l + i` set for a −1 weight).
pub fn pixel_pair_dots_vnni(
    pairs: &PixelPairs,
    weights: &[i8],
    signs: &[u64],
    blocks: usize,
    dots_a: &mut [i32],
    dots_b: &mut [i32],
) {
    // SAFETY: the caller checked avx512f + avx512bw + avx512vnni (the
    // pairing kernel) and asserted that weights and signs hold every group's blocks, every
    // listed index is below the groups, and both sum slices hold blocks·16
    // values.
    unsafe { pixel_pair_mixed_impl(pairs, weights, signs, blocks, dots_a, dots_b) }
}

/// Blocks per pass over a pair's lists from the `i8` lines, and from the
/// sign bits: the first cost L2 bandwidth (a 64-byte line each), the second
/// a `VPMOVM2B` on the vector pipes, and a mix keeps both busy (see the
/// kernel docs for the measurements).
const PAIR_LINE_BLOCKS: usize = 3;
const PAIR_SIGN_BLOCKS: usize = 5;

/// # Safety
/// The CPU has the features this function enables, and the lengths and indices are those `Kernel::pixel_pair_dots` asserts.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn pixel_pair_mixed_impl(
    pairs: &PixelPairs,
    weights: &[i8],
    signs: &[u64],
    blocks: usize,
    dots_a: &mut [i32],
    dots_b: &mut [i32],
) {
    let w = Weights {
        bytes: weights,
        signs,
        blocks,
    };
    let mut j = 0;
    while j < blocks {
        // SAFETY: blocks j..j + NI + NS are < blocks (the step is chosen so).
        unsafe {
            let (a, b) = (dots_a.as_mut_ptr(), dots_b.as_mut_ptr());
            j += if blocks - j >= PAIR_LINE_BLOCKS + PAIR_SIGN_BLOCKS {
                pixel_pair_mixed::<PAIR_LINE_BLOCKS, PAIR_SIGN_BLOCKS>(pairs, &w, j, a, b)
            } else {
                pixel_pair_mixed::<1, 0>(pairs, &w, j, a, b)
            };
        }
    }
}

/// One image over every block, each pass `SINGLE_LINE_BLOCKS` blocks from
/// the `i8` lines and `SINGLE_SIGN_BLOCKS` from the sign bits, as in
/// [`pixel_pair_dots_vnni`].
pub fn pixel_mixed_dots_vnni(
    groups: &PixelGroups,
    weights: &[i8],
    signs: &[u64],
    blocks: usize,
    dots: &mut [i32],
) {
    // SAFETY: as in `pixel_pair_dots_vnni`, for one list and one sum slice.
    unsafe { pixel_mixed_impl(groups, weights, signs, blocks, dots) }
}

const SINGLE_LINE_BLOCKS: usize = 6;
const SINGLE_SIGN_BLOCKS: usize = 10;

/// # Safety
/// The CPU has the features this function enables, and the lengths and indices are those `Kernel::pixel_mixed_dots` asserts.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn pixel_mixed_impl(
    groups: &PixelGroups,
    weights: &[i8],
    signs: &[u64],
    blocks: usize,
    dots: &mut [i32],
) {
    let w = Weights {
        bytes: weights,
        signs,
        blocks,
    };
    let mut j = 0;
    while j < blocks {
        // SAFETY: blocks j..j + NI + NS are < blocks (the step is chosen so).
        unsafe {
            j += if blocks - j >= SINGLE_LINE_BLOCKS + SINGLE_SIGN_BLOCKS {
                pixel_mixed::<SINGLE_LINE_BLOCKS, SINGLE_SIGN_BLOCKS>(
                    groups,
                    &w,
                    j,
                    dots.as_mut_ptr(),
                )
            } else {
                pixel_mixed::<1, 0>(groups, &w, j, dots.as_mut_ptr())
            };
        }
    }
}

/// # Safety
/// The CPU has the features this function enables; `b + NI + NS <= blocks`, every listed index is below the layer's groups, and `dots` holds `blocks·16` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn pixel_mixed<const NI: usize, const NS: usize>(
    groups: &PixelGroups,
    w: &Weights<'_>,
    b: usize,
    dots: *mut i32,
) -> usize {
    let mut acc = Mixed::<NI, NS>::new();
    // SAFETY: the caller guarantees b + NI + NS <= blocks, valid indices
    // and blocks·16 values at `dots`.
    unsafe {
        acc.add(groups, w, b);
        acc.store(groups.sum, dots, b);
    }
    NI + NS
}

/// A pixel layer's weights in both forms.
struct Weights<'a> {
    bytes: &'a [i8],
    signs: &'a [u64],
    blocks: usize,
}

/// Accumulators of one image: `NI` blocks of dots and `NS` blocks of
/// `−Σ_{w=−1} p`.
struct Mixed<const NI: usize, const NS: usize> {
    dots: [__m512i; NI],
    minus: [__m512i; NS],
}

impl<const NI: usize, const NS: usize> Mixed<NI, NS> {
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn new() -> Self {
        Mixed {
            dots: [_mm512_setzero_si512(); NI],
            minus: [_mm512_setzero_si512(); NS],
        }
    }

    /// Stores the dots of blocks `b .. b + NI + NS`.
    ///
    /// # Safety
    /// `out` holds `(b + NI + NS)·16` values.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(self, sum: u32, out: *mut i32, b: usize) {
        let sum = _mm512_set1_epi32(sum as i32);
        // SAFETY: the caller's promise.
        unsafe {
            for (j, v) in self.dots.into_iter().enumerate() {
                _mm512_storeu_si512(out.add((b + j) * PIXEL_LANES).cast(), v);
            }
            for (j, v) in self.minus.into_iter().enumerate() {
                let dot = _mm512_add_epi32(_mm512_add_epi32(v, v), sum);
                _mm512_storeu_si512(out.add((b + NI + j) * PIXEL_LANES).cast(), dot);
            }
        }
    }

    /// Adds one image's listed groups.
    ///
    /// # Safety
    /// Every index is below the layer's groups and `b + NI + NS <= blocks`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn add(&mut self, list: &PixelGroups, w: &Weights<'_>, b: usize) {
        for (&four, &g) in list.a().iter().zip(list.index()) {
            let x = _mm512_set1_epi32(four as i32);
            // SAFETY: g < groups and b + NI + NS <= blocks.
            unsafe {
                let (lines, signs) = w.at(g, b);
                for (j, v) in self.dots.iter_mut().enumerate() {
                    *v = _mm512_dpbusd_epi32(
                        *v,
                        x,
                        _mm512_loadu_si512(lines.add(j * PIXEL_LINE).cast()),
                    );
                }
                for (j, v) in self.minus.iter_mut().enumerate() {
                    *v = _mm512_dpbusd_epi32(*v, x, _mm512_movm_epi8(signs.add(NI + j).read()));
                }
            }
        }
    }
}

impl Weights<'_> {
    /// Pointers to block `b` of group `g` in both forms.
    ///
    /// # Safety
    /// `g` is below the layer's groups and `b < blocks`.
    #[inline]
    unsafe fn at(&self, g: u32, b: usize) -> (*const i8, *const u64) {
        let line = g as usize * self.blocks + b;
        // SAFETY: the caller's promise keeps both inside their slices.
        unsafe {
            (
                self.bytes.as_ptr().add(line * PIXEL_LINE),
                self.signs.as_ptr().add(line),
            )
        }
    }
}

/// # Safety
/// The CPU has the features this function enables; `b + NI + NS <= blocks`, every listed index is below the layer's groups, and both sum slices hold `blocks·16` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn pixel_pair_mixed<const NI: usize, const NS: usize>(
    pairs: &PixelPairs,
    w: &Weights<'_>,
    b: usize,
    dots_a: *mut i32,
    dots_b: *mut i32,
) -> usize {
    let (mut sa, mut sb) = (Mixed::<NI, NS>::new(), Mixed::<NI, NS>::new());
    let both = &pairs.both;
    for ((&fa, &fb), &g) in both.a().iter().zip(both.b()).zip(both.index()) {
        let (xa, xb) = (_mm512_set1_epi32(fa as i32), _mm512_set1_epi32(fb as i32));
        // SAFETY: g < groups and b + NI + NS <= blocks.
        unsafe {
            let (lines, signs) = w.at(g, b);
            for j in 0..NI {
                let wv = _mm512_loadu_si512(lines.add(j * PIXEL_LINE).cast());
                sa.dots[j] = _mm512_dpbusd_epi32(sa.dots[j], xa, wv);
                sb.dots[j] = _mm512_dpbusd_epi32(sb.dots[j], xb, wv);
            }
            for j in 0..NS {
                let wv = _mm512_movm_epi8(signs.add(NI + j).read());
                sa.minus[j] = _mm512_dpbusd_epi32(sa.minus[j], xa, wv);
                sb.minus[j] = _mm512_dpbusd_epi32(sb.minus[j], xb, wv);
            }
        }
    }
    // SAFETY: as above; both sum slices hold blocks·16 values.
    unsafe {
        sa.add(&pairs.only_a, w, b);
        sb.add(&pairs.only_b, w, b);
        sa.store(pairs.sums[0], dots_a, b);
        sb.store(pairs.sums[1], dots_b, b);
    }
    NI + NS
}
