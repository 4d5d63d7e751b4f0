//! One image's minority positions, as the sliced kernels take them.
//!
//! Only the kernel module writes a [`Minority`] ([`super::Kernel::minority`]),
//! and the listers mask the tail bits of the last word, so every position
//! is below `inputs` and the padding is `inputs` itself (the zero column).
//! The SIMD forms of the sliced layer load whole column vectors unchecked
//! on the strength of that, and the dispatch only has to compare
//! [`Minority::inputs`] with the layer's. Before this type, the dispatch
//! proved it again with a fold over every position of every image; the
//! fold showed as 10 % of a 784-512-10 batch's profile, but dropping it
//! gained only about 1 % end to end (the fold was where the wait for the
//! just-stored positions landed), so the type is kept for the guarantee,
//! not the speed.

/// The positions of an image's minority bits (its 1 bits, or its 0 bits
/// when those are fewer), in order, padded with the zero column's index to
/// a whole number of groups of 8.
#[derive(Clone, Debug, Default)]
pub(crate) struct Minority {
    /// The positions, then the padding, then room for the listers' whole
    /// vector stores (64 entries).
    pub(super) idx: Vec<u16>,
    /// Positions and padding.
    pub(super) len: usize,
    pub(super) inputs: usize,
    pub(super) ones: usize,
    pub(super) zeros: bool,
}

impl Minority {
    /// The positions and the padding: a multiple of 8 entries, each at
    /// most [`Minority::inputs`].
    pub(crate) fn positions(&self) -> &[u16] {
        &self.idx[..self.len]
    }

    /// The image's width in bits.
    pub(crate) fn inputs(&self) -> usize {
        self.inputs
    }

    /// The image's count of 1 bits.
    pub(crate) fn ones(&self) -> usize {
        self.ones
    }

    /// Whether the positions are the image's 0 bits.
    pub(crate) fn zeros(&self) -> bool {
        self.zeros
    }

    /// Room for `entries` positions and the 64 beyond them that the
    /// listers' whole-vector stores may write; the lister's part.
    pub(super) fn make_room(&mut self, entries: usize) {
        let need = entries + 64;
        if self.idx.len() < need {
            self.idx.resize(need, 0);
        }
    }

    /// Records a listing of `len` positions and pads it; the lister's part.
    /// It writes 8 padding entries whatever `len` (within the room of
    /// [`Minority::make_room`]): one vector store, where a fill of the 0
    /// to 7 entries needed was a call to `memset` per image.
    pub(super) fn finish(&mut self, len: usize, inputs: usize, ones: usize, zeros: bool) {
        let padded = len.next_multiple_of(8);
        self.idx[len..len + 8].fill(inputs as u16);
        self.len = padded;
        self.inputs = inputs;
        self.ones = ones;
        self.zeros = zeros;
    }
}
