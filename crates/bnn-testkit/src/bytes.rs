//! Deterministic pseudo-random bytes: a failing run reproduces exactly from
//! its seed, with no generator state shared between tests.

/// SplitMix64: tiny, fast, and good enough to fill test images.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// `n` bytes from `seed`.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; n];
    SplitMix(seed).fill(&mut out);
    out
}
