//! SGD, SGD with momentum and Adam over the network's tensors, with the
//! latent-weight clip of binary training.

use rayon::prelude::*;

use crate::config::{ModelKind, Optimizer};
use crate::net::{Network, Role};

/// Optimizer state: per tensor, the first and second moments (empty when
/// unused), and the number of steps taken.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimState {
    /// First moments (momentum's velocity, Adam's mean), one per tensor.
    pub m: Vec<Vec<f32>>,
    /// Adam's second moments, one per tensor.
    pub v: Vec<Vec<f32>>,
    /// Updates taken: Adam's bias correction depends on it.
    pub steps: u64,
}

/// Elements per parallel chunk; updates are element-wise, so chunking never
/// changes results.
const CHUNK: usize = 1 << 14;

impl OptimState {
    /// Zero moments for `net`'s trainable tensors, sized for `optimizer`.
    pub fn new(net: &Network, optimizer: Optimizer) -> Self {
        let sized = |used: bool| -> Vec<Vec<f32>> {
            net.tensors
                .iter()
                .map(|t| {
                    if used && t.role.trainable() {
                        vec![0.0; t.data.len()]
                    } else {
                        Vec::new()
                    }
                })
                .collect()
        };
        let (m, v) = match optimizer {
            Optimizer::Sgd => (sized(false), sized(false)),
            Optimizer::Momentum { .. } => (sized(true), sized(false)),
            Optimizer::Adam { .. } => (sized(true), sized(true)),
        };
        OptimState { m, v, steps: 0 }
    }

    /// One update with learning rate `lr`.
    pub fn apply(&mut self, net: &mut Network, grads: &[Vec<f32>], optimizer: Optimizer, lr: f32) {
        self.steps += 1;
        let clip = net.kind == ModelKind::Binary;
        let t = self.steps as i32;
        for (i, tensor) in net.tensors.iter_mut().enumerate() {
            if !tensor.role.trainable() {
                continue;
            }
            let clip_this = clip && tensor.role == Role::Weight;
            let w = &mut tensor.data;
            let zeros;
            let g = if grads[i].is_empty() {
                zeros = vec![0.0; w.len()];
                &zeros
            } else {
                &grads[i]
            };
            match optimizer {
                Optimizer::Sgd => {
                    w.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .for_each(|(w, g)| {
                            for (w, &g) in w.iter_mut().zip(g) {
                                *w = finish(*w - lr * g, clip_this);
                            }
                        });
                }
                Optimizer::Momentum { momentum } => {
                    w.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .zip(self.m[i].par_chunks_mut(CHUNK))
                        .for_each(|((w, g), m)| {
                            for ((w, &g), m) in w.iter_mut().zip(g).zip(m) {
                                *m = momentum * *m + g;
                                *w = finish(*w - lr * *m, clip_this);
                            }
                        });
                }
                Optimizer::Adam { beta1, beta2, eps } => {
                    let c1 = 1.0 - beta1.powi(t);
                    let c2 = 1.0 - beta2.powi(t);
                    let (m, v) = (&mut self.m[i], &mut self.v[i]);
                    w.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .zip(m.par_chunks_mut(CHUNK))
                        .zip(v.par_chunks_mut(CHUNK))
                        .for_each(|(((w, g), m), v)| {
                            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
                                *m = beta1 * *m + (1.0 - beta1) * g;
                                *v = beta2 * *v + (1.0 - beta2) * g * g;
                                let step = lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                                *w = finish(*w - step, clip_this);
                            }
                        });
                }
            }
        }
    }
}

#[inline]
fn finish(w: f32, clip: bool) -> f32 {
    if clip {
        w.clamp(-1.0, 1.0)
    } else {
        w
    }
}
