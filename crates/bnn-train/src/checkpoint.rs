//! The training state after an epoch, saved atomically so that an
//! interrupted run (Ctrl-C, a crash) leaves the previous checkpoint whole,
//! and loaded with every length checked against the file before use.
//!
//! Layout (little-endian): magic `BNNCKPT\n`, version u32, JSON metadata
//! (u32 length + bytes: configuration, epoch, history, clips, best epoch),
//! tensor count u32, then per tensor a u32 name length, the name, a u64
//! element count and the f32 values, closed by a CRC-32 of all before it.

use std::path::Path;

use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{io_at, Result, TrainError};
use crate::metrics::EpochMetrics;
use crate::net::Network;
use crate::optim::OptimState;

const MAGIC: &[u8; 8] = b"BNNCKPT\n";
const VERSION: u32 = 1;
/// Larger than any checkpoint this trainer writes for MNIST-sized models.
const MAX_BYTES: u64 = 1 << 34;

/// Everything needed to continue a run exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub config: TrainConfig,
    pub net: Network,
    pub optim: OptimState,
    pub epochs_done: usize,
    /// STE clips for the next epoch.
    pub clips: Vec<f32>,
    /// Best epoch so far by validation accuracy, and its parameters.
    pub best: Option<Best>,
    pub history: Vec<EpochMetrics>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    pub epoch: usize,
    pub val_accuracy: f64,
    pub net: Network,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    config: TrainConfig,
    epochs_done: usize,
    steps: u64,
    /// f32 bit patterns, so that they survive the text format exactly.
    clip_bits: Vec<u32>,
    best_epoch: Option<usize>,
    /// f64 bit pattern: the comparison with later epochs must see exactly
    /// the value the uninterrupted run saw.
    best_val_bits: u64,
    history: Vec<EpochMetrics>,
}

/// Serialises the state.
pub fn to_bytes(state: &TrainState) -> Vec<u8> {
    let meta = Meta {
        config: state.config.clone(),
        epochs_done: state.epochs_done,
        steps: state.optim.steps,
        clip_bits: state.clips.iter().map(|c| c.to_bits()).collect(),
        best_epoch: state.best.as_ref().map(|b| b.epoch),
        best_val_bits: state.best.as_ref().map_or(0, |b| b.val_accuracy.to_bits()),
        history: state.history.clone(),
    };
    let meta = serde_json::to_vec(&meta).expect("metadata serialises");
    let mut tensors: Vec<(String, &[f32])> = Vec::new();
    for (i, t) in state.net.tensors.iter().enumerate() {
        tensors.push((format!("param/{}", t.name), &t.data));
        if !state.optim.m[i].is_empty() {
            tensors.push((format!("m/{}", t.name), &state.optim.m[i]));
        }
        if !state.optim.v[i].is_empty() {
            tensors.push((format!("v/{}", t.name), &state.optim.v[i]));
        }
    }
    if let Some(best) = &state.best {
        for t in &best.net.tensors {
            tensors.push((format!("best/{}", t.name), &t.data));
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.write_u32::<LE>(VERSION).unwrap();
    out.write_u32::<LE>(meta.len() as u32).unwrap();
    out.extend_from_slice(&meta);
    out.write_u32::<LE>(tensors.len() as u32).unwrap();
    for (name, data) in tensors {
        out.write_u32::<LE>(name.len() as u32).unwrap();
        out.extend_from_slice(name.as_bytes());
        out.write_u64::<LE>(data.len() as u64).unwrap();
        for &v in data {
            out.write_f32::<LE>(v).unwrap();
        }
    }
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).unwrap();
    out
}

/// Writes the state atomically.
pub fn save(state: &TrainState, path: &Path) -> Result<()> {
    bnn_io::write::write_file(path, &to_bytes(state)).map_err(io_at(path))
}

/// Reads and checks a checkpoint.
pub fn load(path: &Path) -> Result<TrainState> {
    let meta = std::fs::metadata(path).map_err(io_at(path))?;
    if meta.len() > MAX_BYTES {
        return Err(bad(
            path,
            format!("{} bytes is too large for a checkpoint", meta.len()),
        ));
    }
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    from_bytes(&bytes, path)
}

fn bad(path: &Path, problem: impl Into<String>) -> TrainError {
    let mut problem = problem.into();
    // A problem may quote the file's own bytes (a JSON parser's message);
    // escaped, it stays on one line.
    if problem.contains(char::is_control) {
        problem = problem.escape_debug().to_string();
    }
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        problem,
    }
}

/// Parses a checkpoint; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<TrainState> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad(path, "not a training checkpoint (wrong magic bytes)"));
    }
    if bytes.len() < MAGIC.len() + 4 + 4 {
        return Err(bad(path, "truncated header"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(crc.try_into().expect("four bytes"));
    if crc32fast::hash(body) != stored {
        return Err(bad(path, "checksum mismatch (corrupt or truncated)"));
    }
    let mut r = std::io::Cursor::new(&body[MAGIC.len()..]);
    let truncated = |_| bad(path, "truncated");
    let version = r.read_u32::<LE>().map_err(truncated)?;
    if version != VERSION {
        return Err(bad(
            path,
            format!("unsupported checkpoint version {version}"),
        ));
    }
    let meta_len = r.read_u32::<LE>().map_err(truncated)? as usize;
    let meta_bytes = take(&mut r, meta_len).ok_or_else(|| bad(path, "truncated metadata"))?;
    let meta: Meta =
        serde_json::from_slice(meta_bytes).map_err(|e| bad(path, format!("metadata: {e}")))?;
    meta.config
        .validate()
        .map_err(|e| bad(path, format!("stored configuration: {e}")))?;
    let count = r.read_u32::<LE>().map_err(truncated)?;
    let mut tensors = std::collections::HashMap::new();
    for _ in 0..count {
        let name_len = r.read_u32::<LE>().map_err(truncated)? as usize;
        let name = take(&mut r, name_len).ok_or_else(|| bad(path, "truncated tensor name"))?;
        let name =
            String::from_utf8(name.to_vec()).map_err(|_| bad(path, "tensor name is not UTF-8"))?;
        if name.chars().any(char::is_control) {
            return Err(bad(path, "tensor name holds control characters"));
        }
        let len = r.read_u64::<LE>().map_err(truncated)?;
        let remaining = (body.len() as u64).saturating_sub(MAGIC.len() as u64 + r.position());
        if len.checked_mul(4).is_none_or(|b| b > remaining) {
            return Err(bad(
                path,
                format!("tensor {name}: {len} values exceed the file"),
            ));
        }
        let raw = take(&mut r, len as usize * 4).expect("length checked");
        let data: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("four bytes")))
            .collect();
        if tensors.contains_key(&name) {
            return Err(bad(path, format!("tensor {name} appears twice")));
        }
        tensors.insert(name, data);
    }
    let trailing = body.len() as u64 - MAGIC.len() as u64 - r.position();
    if trailing > 0 {
        return Err(bad(
            path,
            format!("{trailing} bytes of trailing data after the last tensor"),
        ));
    }
    let config = meta.config;
    // The structure comes from the configuration; the values from the file.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let template = Network::new(&config, &mut rng);
    let mut fill = |prefix: &str, net: &mut Network| -> Result<()> {
        for t in &mut net.tensors {
            let key = format!("{prefix}/{}", t.name);
            let data = tensors
                .remove(&key)
                .ok_or_else(|| bad(path, format!("missing tensor {key}")))?;
            if data.len() != t.data.len() {
                return Err(bad(
                    path,
                    format!(
                        "tensor {key} has {} values, expected {}",
                        data.len(),
                        t.data.len()
                    ),
                ));
            }
            t.data = data;
        }
        Ok(())
    };
    let mut net = template.clone();
    fill("param", &mut net)?;
    let best = match meta.best_epoch {
        Some(epoch) => {
            let mut b = template.clone();
            fill("best", &mut b)?;
            Some(Best {
                epoch,
                val_accuracy: f64::from_bits(meta.best_val_bits),
                net: b,
            })
        }
        None => None,
    };
    let mut optim = OptimState::new(&net, config.optimizer);
    optim.steps = meta.steps;
    for (prefix, slots) in [("m", &mut optim.m), ("v", &mut optim.v)] {
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_empty() {
                continue;
            }
            let key = format!("{prefix}/{}", net.tensors[i].name);
            let data = tensors
                .remove(&key)
                .ok_or_else(|| bad(path, format!("missing tensor {key}")))?;
            if data.len() != slot.len() {
                return Err(bad(path, format!("tensor {key} has the wrong length")));
            }
            *slot = data;
        }
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(bad(path, format!("unexpected tensor {extra}")));
    }
    if meta.epochs_done > config.epochs || meta.history.len() != meta.epochs_done {
        return Err(bad(path, "epoch count and history disagree"));
    }
    let clips: Vec<f32> = meta.clip_bits.iter().map(|&b| f32::from_bits(b)).collect();
    if clips.len() != crate::step::ste_sites(&config) {
        return Err(bad(path, "wrong number of STE clips"));
    }
    Ok(TrainState {
        config,
        net,
        optim,
        epochs_done: meta.epochs_done,
        clips,
        best,
        history: meta.history,
    })
}

fn take<'a>(r: &mut std::io::Cursor<&'a [u8]>, n: usize) -> Option<&'a [u8]> {
    let start = r.position() as usize;
    let end = start.checked_add(n)?;
    let slice = r.get_ref().get(start..end)?;
    r.set_position(end as u64);
    Some(slice)
}
