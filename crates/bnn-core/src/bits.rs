//! Packed ±1 vectors and matrices.
//!
//! Bit convention, used everywhere in the engine and in the model file: bit
//! `i % 64` of word `i / 64` is 1 for +1 and 0 for −1. Unused tail bits of the
//! last word of a row are always 0, so that XOR-ing two padded rows adds
//! nothing to the popcount and `dot = n − 2·popcount(x ⊕ w)` holds with the
//! true length `n`.

use crate::error::{Error, Result};

/// Bits in one storage word.
pub const WORD_BITS: usize = 64;

/// Number of `u64` words needed for `bits` bits.
#[inline]
pub const fn words_for(bits: usize) -> usize {
    bits.div_ceil(WORD_BITS)
}

/// Mask of the valid bits in the last word of a `bits`-long row.
#[inline]
pub const fn tail_mask(bits: usize) -> u64 {
    match bits % WORD_BITS {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

/// Packs u8 pixels into bits: `p >= threshold` → 1 (+1).
///
/// With the default threshold 128 this is exactly the seed's
/// `sign((p/255 − 0.5)/0.5)` with `sign(0) = +1`. This is the portable path
/// (SWAR: eight pixels per `u64` step, no per-bit loop); the SIMD kernels
/// have their own ([`crate::Kernel::pack_pixels`]), tested against this one.
pub fn pack_pixels(pixels: &[u8], threshold: u8, out: &mut [u64]) {
    assert_eq!(out.len(), words_for(pixels.len()), "output word count");
    let mut chunks = pixels.chunks_exact(WORD_BITS);
    for (word, chunk) in out.iter_mut().zip(&mut chunks) {
        let mut w = 0u64;
        for (i, eight) in chunk.chunks_exact(8).enumerate() {
            let bytes = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
            w |= ge_bits8(bytes, threshold) << (8 * i);
        }
        *word = w;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = 0u64;
        for (i, &p) in rest.iter().enumerate() {
            w |= u64::from(p >= threshold) << i;
        }
        out[out.len() - 1] = w;
    }
}

const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit `i` set iff byte `i` of `bytes` is `>= t`, for eight bytes at once.
///
/// Low seven bits first: `(p | 0x80) − (t & 0x7f)` cannot borrow across
/// bytes, and its high bit says `p & 0x7f >= t & 0x7f`. Then the high bits
/// decide: for `t >= 128` both `p >= 128` and the low test must hold, for
/// `t < 128` either suffices. A multiply gathers the eight high bits.
#[inline(always)]
fn ge_bits8(bytes: u64, t: u8) -> u64 {
    let low_t = u64::from(t & 0x7f) * 0x0101_0101_0101_0101;
    let low_ge = ((bytes | HIGH) - low_t) & HIGH;
    let ge = if t >= 128 {
        bytes & low_ge
    } else {
        (bytes | low_ge) & HIGH
    };
    ((ge >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Packs f32 values by sign: `v >= 0` → 1 (+1), as the seed's `sign` does
/// (so −0.0 and +0.0 both give +1; NaN gives −1).
pub fn pack_signs(values: &[f32], out: &mut [u64]) {
    assert_eq!(out.len(), words_for(values.len()), "output word count");
    for (word, chunk) in out.iter_mut().zip(values.chunks(WORD_BITS)) {
        let mut w = 0u64;
        for (i, &v) in chunk.iter().enumerate() {
            w |= u64::from(v >= 0.0) << i;
        }
        *word = w;
    }
}

/// Packs ±1 integers. Any other value is an error, since silently mapping it
/// would hide a corrupt weight.
pub fn pack_pm1(values: &[i8], out: &mut [u64]) -> Result<()> {
    assert_eq!(out.len(), words_for(values.len()), "output word count");
    for (word_index, (word, chunk)) in out.iter_mut().zip(values.chunks(WORD_BITS)).enumerate() {
        let mut w = 0u64;
        for (i, &v) in chunk.iter().enumerate() {
            match v {
                1 => w |= 1 << i,
                -1 => {}
                other => {
                    return Err(Error::InvalidModel(format!(
                        "value {other} at index {} is not ±1",
                        word_index * WORD_BITS + i
                    )))
                }
            }
        }
        *word = w;
    }
    Ok(())
}

/// Unpacks `n` bits into ±1 values.
pub fn unpack_pm1(words: &[u64], n: usize) -> Vec<i8> {
    assert!(words.len() >= words_for(n), "too few words for {n} bits");
    (0..n).map(|i| if bit(words, i) { 1 } else { -1 }).collect()
}

/// Reads bit `i` of a packed row.
#[inline]
pub fn bit(words: &[u64], i: usize) -> bool {
    words[i / WORD_BITS] >> (i % WORD_BITS) & 1 == 1
}

/// The 64 bits of `src` starting at bit `offset` (bits past the end read 0).
#[inline]
fn bits_at(src: &[u64], offset: usize) -> u64 {
    let (w, s) = (offset / WORD_BITS, offset % WORD_BITS);
    let lo = src.get(w).copied().unwrap_or(0);
    if s == 0 {
        lo
    } else {
        lo >> s | src.get(w + 1).copied().unwrap_or(0) << (WORD_BITS - s)
    }
}

/// ORs `len` bits of `src`, starting at bit `from`, into `dst` at bit `to`
/// (the destination bits are expected zero): the gather of bit im2col and
/// of compacting word-padded rows into one bit stream, a word at a time
/// rather than a bit at a time.
#[inline]
pub fn or_bits(src: &[u64], from: usize, dst: &mut [u64], to: usize, len: usize) {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(WORD_BITS);
        let v = bits_at(src, from + done) & tail_mask(n);
        let (w, s) = ((to + done) / WORD_BITS, (to + done) % WORD_BITS);
        dst[w] |= v << s;
        if s != 0 && s + n > WORD_BITS {
            dst[w + 1] |= v >> (WORD_BITS - s);
        }
        done += n;
    }
}

/// The rows of a matrix as one continuous bit stream (row `j` at bit
/// `j·cols`), without the per-row padding: the compact on-disk layout.
pub fn to_stream(m: &BitMatrix) -> Vec<u64> {
    let total = m.rows * m.cols;
    let mut out = vec![0u64; words_for(total)];
    for r in 0..m.rows {
        let start = r * m.cols;
        for (i, &word) in m.row(r).iter().enumerate() {
            let at = start + i * WORD_BITS;
            let (w, s) = (at / WORD_BITS, at % WORD_BITS);
            out[w] |= word << s;
            if s != 0 && w + 1 < out.len() {
                out[w + 1] |= word >> (WORD_BITS - s);
            }
        }
    }
    out
}

/// The inverse of [`to_stream`]; the stream's bits past `rows·cols` must be 0.
pub fn from_stream(rows: usize, cols: usize, stream: &[u64]) -> Result<BitMatrix> {
    let total = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::InvalidModel("matrix size overflows".into()))?;
    if stream.len() != words_for(total) {
        return Err(Error::InvalidModel(format!(
            "{} words for a {rows}x{cols} bit stream, expected {}",
            stream.len(),
            words_for(total)
        )));
    }
    if stream.last().is_some_and(|&w| w & !tail_mask(total) != 0) {
        return Err(Error::InvalidModel(format!(
            "bits set beyond the {total} weights"
        )));
    }
    let mut m = BitMatrix::new(rows, cols);
    let mask = tail_mask(cols);
    for r in 0..rows {
        let start = r * cols;
        let row = m.row_mut(r);
        let last = row.len() - 1;
        for (i, word) in row.iter_mut().enumerate() {
            *word = bits_at(stream, start + i * WORD_BITS);
        }
        row[last] &= mask;
    }
    Ok(m)
}

/// A row-major matrix of packed ±1 values: `rows` rows of `cols` bits, each
/// row padded to whole words with zero bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitMatrix {
    rows: usize,
    cols: usize,
    words_per_row: usize,
    words: Vec<u64>,
}

impl BitMatrix {
    /// All −1.
    pub fn new(rows: usize, cols: usize) -> Self {
        let words_per_row = words_for(cols);
        BitMatrix {
            rows,
            cols,
            words_per_row,
            words: vec![0; rows * words_per_row],
        }
    }

    /// From row-major f32 values by sign (`v >= 0` → +1).
    pub fn from_signs(rows: usize, cols: usize, values: &[f32]) -> Result<Self> {
        check_len(rows, cols, values.len())?;
        let mut m = BitMatrix::new(rows, cols);
        if cols > 0 {
            for (r, row) in values.chunks_exact(cols).enumerate() {
                pack_signs(row, m.row_mut(r));
            }
        }
        Ok(m)
    }

    /// From row-major ±1 integers; anything else is an error.
    pub fn from_pm1(rows: usize, cols: usize, values: &[i8]) -> Result<Self> {
        check_len(rows, cols, values.len())?;
        let mut m = BitMatrix::new(rows, cols);
        if cols > 0 {
            for (r, row) in values.chunks_exact(cols).enumerate() {
                // Name the row without a second "invalid model: " prefix.
                pack_pm1(row, m.row_mut(r)).map_err(|e| match e {
                    Error::InvalidModel(problem) => {
                        Error::InvalidModel(format!("row {r}: {problem}"))
                    }
                    other => other,
                })?;
            }
        }
        Ok(m)
    }

    /// From already packed words; tail bits must be zero.
    pub fn from_words(rows: usize, cols: usize, words: Vec<u64>) -> Result<Self> {
        let words_per_row = words_for(cols);
        if words.len() != rows * words_per_row {
            return Err(Error::InvalidModel(format!(
                "{} words for a {rows}x{cols} bit matrix, expected {}",
                words.len(),
                rows * words_per_row
            )));
        }
        let m = BitMatrix {
            rows,
            cols,
            words_per_row,
            words,
        };
        if let Some(r) =
            (0..rows).find(|&r| m.row(r).last().is_some_and(|&w| w & !tail_mask(cols) != 0))
        {
            return Err(Error::InvalidModel(format!(
                "row {r} has bits set beyond column {cols}"
            )));
        }
        Ok(m)
    }

    /// Number of rows (neurons, for a layer's weights).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bits per row (inputs, for a layer's weights), padding excluded.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `u64` words a row takes: `cols` rounded up to whole words.
    pub fn words_per_row(&self) -> usize {
        self.words_per_row
    }

    /// All words, row after row.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// All words, mutable; callers keep tail bits zero.
    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// The packed words of row `r`, bit 1 = +1.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[u64] {
        &self.words[r * self.words_per_row..(r + 1) * self.words_per_row]
    }

    /// Row `r`'s words, mutable; callers keep the bits past `cols` zero,
    /// which every popcount relies on.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row_mut(&mut self, r: usize) -> &mut [u64] {
        &mut self.words[r * self.words_per_row..(r + 1) * self.words_per_row]
    }

    /// True for +1.
    pub fn get(&self, r: usize, c: usize) -> bool {
        assert!(c < self.cols);
        bit(self.row(r), c)
    }

    /// Sets element `(r, c)` to +1 (`plus_one`) or −1.
    ///
    /// # Panics
    /// If `c >= cols` or `r >= rows`.
    pub fn set(&mut self, r: usize, c: usize, plus_one: bool) {
        assert!(c < self.cols);
        let word = &mut self.row_mut(r)[c / WORD_BITS];
        let mask = 1u64 << (c % WORD_BITS);
        if plus_one {
            *word |= mask;
        } else {
            *word &= !mask;
        }
    }

    /// Row-major ±1 values.
    pub fn to_pm1(&self) -> Vec<i8> {
        (0..self.rows)
            .flat_map(|r| unpack_pm1(self.row(r), self.cols))
            .collect()
    }
}

fn check_len(rows: usize, cols: usize, len: usize) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(n) if n == len => Ok(()),
        _ => Err(Error::InvalidModel(format!(
            "{len} values for a {rows}x{cols} matrix"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitvec::prelude::*;

    /// The packers agree with an independent bit vector built one bit at a
    /// time, for lengths around the word size, and never set a tail bit.
    #[test]
    // bitvec 1.0's own `BitVec::push` breaks Stacked Borrows (Miri reports
    // a retag of a zero-size tag inside bitvec), so this oracle cannot run
    // under Miri; the packers it checks are run there by the other tests.
    #[cfg_attr(miri, ignore = "bitvec 1.0 violates Stacked Borrows itself")]
    fn packers_match_bitvec_and_keep_tails_zero() {
        for n in [0usize, 1, 7, 63, 64, 65, 127, 128, 129, 511, 784, 1000] {
            let pixels: Vec<u8> = (0..n).map(|i| ((i * 37 + 11) % 256) as u8).collect();
            let mut words = vec![0u64; words_for(n)];
            pack_pixels(&pixels, 128, &mut words);
            let mut expected: BitVec<u64, Lsb0> = BitVec::new();
            for &p in &pixels {
                expected.push(p >= 128);
            }
            expected.resize(words.len() * 64, false);
            assert_eq!(words.as_slice(), expected.as_raw_slice(), "n = {n}");
            if n % 64 != 0 {
                assert_eq!(words[words.len() - 1] & !tail_mask(n), 0, "tail of n = {n}");
            }

            let floats: Vec<f32> = pixels
                .iter()
                .map(|&p| (p as f32 / 255.0 - 0.5) / 0.5)
                .collect();
            let mut from_floats = vec![0u64; words_for(n)];
            pack_signs(&floats, &mut from_floats);
            assert_eq!(
                from_floats, words,
                "seed scaling agrees with threshold 128, n = {n}"
            );

            let pm1 = unpack_pm1(&words, n);
            let mut again = vec![0u64; words_for(n)];
            pack_pm1(&pm1, &mut again).unwrap();
            assert_eq!(again, words);
        }
    }

    #[test]
    fn swar_compare_is_exact_for_all_bytes_and_thresholds() {
        for t in 0..=255u8 {
            for base in (0..256usize).step_by(8) {
                let bytes: Vec<u8> = (0..8)
                    .map(|i| ((base + i * 37 + t as usize) % 256) as u8)
                    .collect();
                let got = ge_bits8(u64::from_le_bytes(bytes.clone().try_into().unwrap()), t);
                let want = bytes
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (i, &p)| w | u64::from(p >= t) << i);
                assert_eq!(got, want, "t = {t}, bytes {bytes:?}");
            }
        }
    }

    #[test]
    fn stream_round_trip() {
        for (rows, cols) in [(1, 1), (3, 70), (5, 64), (7, 129), (512, 784), (10, 512)] {
            let values: Vec<i8> = (0..rows * cols)
                .map(|i| if (i * 7919) % 5 < 2 { 1 } else { -1 })
                .collect();
            let m = BitMatrix::from_pm1(rows, cols, &values).unwrap();
            let stream = to_stream(&m);
            assert_eq!(stream.len(), words_for(rows * cols));
            for (i, &v) in values.iter().enumerate() {
                assert_eq!(bit(&stream, i), v == 1, "{rows}x{cols} bit {i}");
            }
            assert_eq!(from_stream(rows, cols, &stream).unwrap(), m);
        }
        let mut stream = to_stream(&BitMatrix::new(3, 5));
        stream[0] |= 1 << 15;
        assert_eq!(
            from_stream(3, 5, &stream).unwrap_err().to_string(),
            "invalid model: bits set beyond the 15 weights"
        );
        assert_eq!(
            from_stream(3, 5, &[0, 0]).unwrap_err().to_string(),
            "invalid model: 2 words for a 3x5 bit stream, expected 1"
        );
    }

    #[test]
    fn threshold_is_inclusive() {
        let mut w = [0u64; 1];
        pack_pixels(&[127, 128, 0, 255], 128, &mut w);
        assert_eq!(w[0], 0b1010);
        pack_pixels(&[0, 1], 0, &mut w);
        assert_eq!(w[0], 0b11);
    }

    #[test]
    fn zero_sign_is_plus_one() {
        let mut w = [0u64; 1];
        pack_signs(&[0.0, -0.0, -1e-30, f32::NAN], &mut w);
        assert_eq!(w[0], 0b0011);
    }

    #[test]
    fn pm1_rejects_other_values() {
        let mut w = [0u64; 1];
        let err = pack_pm1(&[1, -1, 0], &mut w).unwrap_err().to_string();
        assert!(err.contains("index 2"), "{err}");
        assert_eq!(
            BitMatrix::from_pm1(2, 2, &[1, 1, 1, 2])
                .unwrap_err()
                .to_string(),
            "invalid model: row 1: value 2 at index 1 is not ±1"
        );
        assert_eq!(
            BitMatrix::from_pm1(2, 2, &[1, 1, 1])
                .unwrap_err()
                .to_string(),
            "invalid model: 3 values for a 2x2 matrix"
        );
    }

    #[test]
    fn matrix_get_set_and_tail_check() {
        let mut m = BitMatrix::new(3, 70);
        m.set(1, 69, true);
        m.set(2, 0, true);
        assert!(m.get(1, 69) && m.get(2, 0) && !m.get(0, 0));
        m.set(2, 0, false);
        assert!(!m.get(2, 0));
        let pm1 = m.to_pm1();
        assert_eq!(BitMatrix::from_pm1(3, 70, &pm1).unwrap(), m);
        let mut words = m.words().to_vec();
        words[1] |= 1 << 10; // column 74 of row 0 does not exist
        assert_eq!(
            BitMatrix::from_words(3, 70, words.clone())
                .unwrap_err()
                .to_string(),
            "invalid model: row 0 has bits set beyond column 70"
        );
        words.pop();
        assert_eq!(
            BitMatrix::from_words(3, 70, words).unwrap_err().to_string(),
            "invalid model: 5 words for a 3x70 bit matrix, expected 6"
        );
    }
}
