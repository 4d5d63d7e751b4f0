//! Many images at once: per chunk of images, one GEMM per layer.
//!
//! A chunk's pixels become an `rows × inputs` f32 matrix (one table look-up
//! per byte) in a buffer reused across chunks; each layer is then
//! `X · Wᵀ` through `ndarray`'s `general_mat_mul`, i.e. `matrixmultiply`'s
//! sgemm with the AVX-512, FMA or AVX micro-kernel chosen at run time, with
//! `Wᵀ` stored row-major once at model construction so packing it reads
//! contiguous rows. Bias and activation are one pass over the product.
//!
//! Chunks go to rayon, so the caller's thread count is the whole story:
//! `matrixmultiply`'s own `threading` feature would split each GEMM over a
//! second, separate pool, and on a whole batch it measured no faster than
//! independent chunks. A BLAS backend is not offered: ndarray's `blas`
//! feature needs a system BLAS or a long from-source C build, and on the
//! 784×512 layer the fastest pure-Rust sgemm tried was only about 10%
//! ahead of this one.
//!
//! A network with convolutions runs them on small groups of images (see
//! [`crate::conv`]: the group's im2col rows stacked, one GEMM per layer, so
//! the layer's weights are packed once per group, not once per image) and
//! stacks the flattened last maps into the chunk's matrix for the dense
//! layers.
//!
//! The GEMM computes each output element the same way whatever the number
//! of rows, so results depend only on each image, never on how the work was
//! split: any chunking or thread count gives the same bits.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::conv::ConvScratch;
use crate::error::Fp32Error;
use crate::model::Fp32Model;

/// Images per unit of batch work. Large enough that packing a layer's
/// weights is amortised over many rows, small enough that a chunk's
/// activations stay in L2 and two threads get many units; measured best
/// among 64..1024 for 784-512-10.
pub const CHUNK: usize = 256;

/// The smallest chunk a batch is cut into to give every thread work: below
/// it the GEMM's fixed costs start to dominate.
const MIN_CHUNK: usize = 64;

/// Reusable buffers for one chunk: the input matrix and two activation
/// matrices that the layers alternate between.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
    conv: ConvScratch,
}

/// Rows the convolutions' GEMMs aim for: enough that packing a layer's
/// weights is spread over many rows, few enough that a group's maps stay
/// in L2.
const CONV_ROWS: usize = 1024;

impl Fp32Model {
    /// Images whose convolutions share one GEMM per layer: enough for
    /// [`CONV_ROWS`] rows in the layer with the fewest output positions.
    fn conv_group(&self) -> usize {
        let fewest = self
            .convs()
            .iter()
            .map(|c| {
                let (h, w) = c.conv_size();
                h * w
            })
            .min()
            .unwrap_or(1);
        CONV_ROWS.div_ceil(fewest).clamp(1, 16)
    }

    /// Classifies a batch of images (`input_len()` bytes each). `threads`:
    /// `None` runs on rayon's global pool, `Some(n)` on a pool of `n`
    /// threads built for this call (0 lets rayon choose).
    pub fn predict_batch(
        &self,
        pixels: &[u8],
        threads: Option<usize>,
    ) -> Result<Vec<usize>, Fp32Error> {
        Ok(self.predict_batch_scores(pixels, threads)?.0)
    }

    /// Classes and scores of a batch: `scores[i·num_classes() + c]`.
    pub fn predict_batch_scores(
        &self,
        pixels: &[u8],
        threads: Option<usize>,
    ) -> Result<(Vec<usize>, Vec<f32>), Fp32Error> {
        let per = self.input_len();
        if !pixels.len().is_multiple_of(per) {
            return Err(Fp32Error::InputLength {
                got: pixels.len(),
                per_image: per,
            });
        }
        let c = self.num_classes();
        let mut scores = vec![0f32; pixels.len() / per * c];
        let images = pixels.len() / per;
        let run = || {
            // A batch smaller than a chunk per thread is shared out evenly.
            let chunk = images
                .div_ceil(rayon::current_num_threads())
                .clamp(MIN_CHUNK, CHUNK);
            pixels
                .par_chunks(chunk * per)
                .zip(scores.par_chunks_mut(chunk * c))
                .for_each_init(Scratch::default, |s, (px, sc)| self.run_chunk(px, s, sc));
        };
        bnn_core::threads::with_threads(threads, run).map_err(|e| Fp32Error::Threads {
            threads: threads.unwrap_or(0),
            reason: e.to_string(),
        })?;
        let classes = scores
            .chunks_exact(c)
            .map(|s| self.rule().decide(s))
            .collect();
        Ok((classes, scores))
    }

    /// The forward pass over one chunk, scores written to `out`.
    fn run_chunk(&self, pixels: &[u8], s: &mut Scratch, out: &mut [f32]) {
        let rows = pixels.len() / self.input_len();
        s.x.clear();
        if self.convs().is_empty() {
            s.x.extend(pixels.iter().map(|&p| self.table[usize::from(p)]));
        } else {
            let group = self.conv_group();
            for images in pixels.chunks(group * self.input_len()) {
                let x = images.iter().map(|&p| self.table[usize::from(p)]);
                let count = images.len() / self.input_len();
                let convs = self.convs();
                let flat = s
                    .conv
                    .run(convs, &self.conv_transposed, self.hidden(), count, x);
                s.x.extend_from_slice(flat);
            }
        }
        let last = self.layers().len() - 1;
        for (i, (layer, wt)) in self.layers().iter().zip(&self.transposed).enumerate() {
            let x = ArrayView2::from_shape((rows, layer.inputs), &s.x[..rows * layer.inputs])
                .expect("buffer holds rows × inputs");
            let y = if i == last {
                &mut out[..rows * layer.outputs]
            } else {
                s.y.resize(rows * layer.outputs, 0.0);
                &mut s.y[..]
            };
            let mut yv = ArrayViewMut2::from_shape((rows, layer.outputs), &mut *y)
                .expect("buffer holds rows × outputs");
            // beta = 0: the product is written, not accumulated, and the
            // bias is added after it, so a sum of integers stays exact.
            general_mat_mul(1.0, &x, wt, 0.0, &mut yv);
            if i == last {
                for row in y.chunks_exact_mut(layer.outputs) {
                    for (v, &b) in row.iter_mut().zip(&layer.bias) {
                        *v += b;
                    }
                }
            } else {
                let act = self.hidden();
                for row in y.chunks_exact_mut(layer.outputs) {
                    for (v, &b) in row.iter_mut().zip(&layer.bias) {
                        *v = act.apply(*v + b);
                    }
                }
                std::mem::swap(&mut s.x, &mut s.y);
            }
        }
    }
}
