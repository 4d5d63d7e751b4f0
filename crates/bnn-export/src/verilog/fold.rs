//! How `P` weight words per cycle are spread over a layer, FINN-style: SIMD
//! words of one row side by side, PE neurons side by side, `SIMD × PE ≤ P`
//! lanes in all. One folding serves every layer, so the lanes, their adder
//! trees and the weight memory's width are fixed; a layer whose row or
//! neuron count is no multiple of SIMD or PE idles the spare lanes of its
//! last chunk or group (their weight words are 0 and so is the activation
//! they see, so they count nothing).

/// One layer under the folding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFold {
    /// Input bits per neuron.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// Weight words of one neuron's row.
    pub words_per_row: usize,
    /// Cycles per neuron group: `⌈words per row / SIMD⌉`.
    pub chunks: usize,
    /// Neuron groups: `⌈outputs / PE⌉`.
    pub groups: usize,
    /// Whether the layer emits bits (thresholds) rather than scores.
    pub hidden: bool,
}

impl LayerFold {
    /// Cycles of work for the whole layer: `chunks × groups`.
    pub fn cycles(&self) -> usize {
        self.chunks * self.groups
    }
}

/// Registered levels of 4-input adders that reduce `leaves` values to one.
pub fn tree_levels(leaves: usize) -> usize {
    let (mut n, mut levels) = (leaves, 0);
    while n > 1 {
        n = n.div_ceil(4);
        levels += 1;
    }
    levels
}

/// Cycles from one accepted `start` to the next when images stream back to
/// back, counting only the compute (the other bounds are in `Geometry`):
/// every layer's cycles, `gap` idle cycles between layers, and two cycles
/// before the image register may be overwritten (see `rtl`).
pub fn compute_interval(layers: &[LayerFold], gap: usize) -> usize {
    layers.iter().map(LayerFold::cycles).sum::<usize>() + (layers.len() - 1) * gap + 2
}

/// Idle cycles between layers: a layer's first activation read (stage 2)
/// must come after the previous layer's last write (at the end of stage
/// `3 + tree levels`).
pub fn gap(tree_levels: usize) -> usize {
    tree_levels + 1
}

/// A layer as the folding sees it: `(inputs, outputs, words per row,
/// hidden)`.
pub type Shape = (usize, usize, usize, bool);

/// SIMD, PE and every layer under them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// Words of one row read per cycle.
    pub simd: usize,
    /// Neurons computed per cycle.
    pub pe: usize,
    /// Every layer under this SIMD and PE, in order.
    pub layers: Vec<LayerFold>,
}

impl Fold {
    fn new(layers: &[Shape], simd: usize, pe: usize) -> Self {
        let layers = layers
            .iter()
            .map(|&(inputs, outputs, wpr, hidden)| LayerFold {
                inputs,
                outputs,
                words_per_row: wpr,
                chunks: wpr.div_ceil(simd),
                groups: outputs.div_ceil(pe),
                hidden,
            })
            .collect();
        Fold { simd, pe, layers }
    }
}

/// The folding of `layers` with at most `parallel` lanes: the one with the
/// shortest interval, then the fewest lanes, then the smallest SIMD
/// (narrower activation multiplexers).
pub fn choose(layers: &[Shape], parallel: usize, word: usize) -> Fold {
    let max_wpr = layers.iter().map(|l| l.2).max().unwrap_or(1);
    let max_out = layers.iter().map(|l| l.1).max().unwrap_or(1);
    let mut best: Option<((usize, usize, usize), Fold)> = None;
    for simd in 1..=parallel.min(max_wpr) {
        let pe = (parallel / simd).min(max_out);
        let fold = Fold::new(layers, simd, pe);
        let interval = compute_interval(&fold.layers, gap(tree_levels(simd * word / 8)));
        let key = (interval, simd * pe, simd);
        if best.as_ref().is_none_or(|b| key < b.0) {
            best = Some((key, fold));
        }
    }
    best.expect("parallel >= 1 and every layer has a row").1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: [Shape; 2] = [(784, 512, 13, true), (512, 10, 8, false)];

    #[test]
    fn one_lane_is_one_word_per_cycle() {
        let Fold {
            simd,
            pe,
            layers: f,
        } = choose(&MNIST, 1, 64);
        assert_eq!((simd, pe), (1, 1));
        assert_eq!(
            f.iter().map(LayerFold::cycles).sum::<usize>(),
            512 * 13 + 10 * 8
        );
    }

    /// Eighty lanes: a whole 13-word row per neuron, six neurons at once.
    #[test]
    fn eighty_lanes_fold_whole_rows() {
        let Fold {
            simd,
            pe,
            layers: f,
        } = choose(&MNIST, 80, 64);
        assert_eq!((simd, pe), (13, 6));
        assert_eq!((f[0].cycles(), f[1].cycles()), (86, 2));
        assert_eq!(
            compute_interval(&f, gap(tree_levels(13 * 8))),
            86 + 2 + 5 + 2
        );
    }

    #[test]
    fn lanes_never_exceed_the_request_or_the_model() {
        for p in [1, 2, 3, 7, 8, 13, 14, 32, 64, 100, 1000, 1 << 20] {
            let Fold {
                simd,
                pe,
                layers: f,
            } = choose(&MNIST, p, 64);
            assert!(simd * pe <= p && simd <= 13 && pe <= 512, "P {p}");
            for l in &f {
                assert!(l.chunks * simd >= l.words_per_row && l.groups * pe >= l.outputs);
            }
        }
    }

    #[test]
    fn tree_depths() {
        assert_eq!(tree_levels(1), 0);
        assert_eq!(tree_levels(4), 1);
        assert_eq!(tree_levels(8), 2);
        assert_eq!(tree_levels(16), 2);
        assert_eq!(tree_levels(104), 4);
    }
}
