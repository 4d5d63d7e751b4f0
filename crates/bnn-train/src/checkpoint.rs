//! The training state after an epoch, saved atomically so that an
//! interrupted run (Ctrl-C, a crash) leaves the previous checkpoint whole,
//! and loaded with every length checked against the file before use.
//!
//! Layout (little-endian): magic `BNNCKPT\n`, version u32, JSON metadata
//! (u32 length + bytes: configuration, epoch, history, clips, best epoch),
//! tensor count u32, then per tensor a u32 name length, the name, a u64
//! element count and the f32 values, closed by a CRC-32 of all before it.

use std::path::Path;

use bnn_core::format::Parse;
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
    /// The run's configuration; a resumed run must not change it.
    pub config: TrainConfig,
    /// The latent parameters after the last finished epoch.
    pub net: Network,
    /// The optimizer's moments, so the next step is the one the run
    /// would have taken.
    pub optim: OptimState,
    /// Epochs finished; the next epoch is `epochs_done + 1`.
    pub epochs_done: usize,
    /// STE clips for the next epoch.
    pub clips: Vec<f32>,
    /// Best epoch so far by validation accuracy, and its parameters.
    pub best: Option<Best>,
    /// The metrics of every finished epoch, in order.
    pub history: Vec<EpochMetrics>,
}

/// The epoch with the best validation accuracy so far: the model a run
/// with validation exports.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// Its validation accuracy, 0.0..=1.0.
    pub val_accuracy: f64,
    /// Its parameters.
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

/// Reads and checks a checkpoint, reading no further than its own lengths
/// say it reaches (see [`bnn_io::read::read_file`]).
pub fn load(path: &Path) -> Result<TrainState> {
    use bnn_io::read::ReadFailure;
    let want = |b: &[u8]| bnn_core::format::want(extent(b), |&total| total);
    let bytes =
        bnn_io::read::read_file(path, MAX_BYTES, want).map_err(|failure| match failure {
            ReadFailure::Io(error) => io_at(path)(error),
            ReadFailure::Problem(problem) => bad(path, problem),
        })?;
    from_bytes(&bytes, path)
}

fn bad(path: &Path, problem: impl Into<String>) -> TrainError {
    let problem = problem.into();
    // A problem may quote the file's own bytes (a JSON parser's message);
    // escaped, it stays on one line and safe to print.
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        problem: bnn_io::text::printable(&problem).into_owned(),
    }
}

/// Largest accepted metadata (configuration and history as JSON).
const MAX_META: u64 = 1 << 24;
/// Largest accepted number of tensors, and length of a tensor's name.
const MAX_TENSORS: u32 = 1 << 16;
const MAX_NAME: u64 = 1 << 10;

/// Walks the lengths of a checkpoint to find its total size, checksum
/// included, without reading any value.
fn extent(bytes: &[u8]) -> std::result::Result<u64, Parse> {
    bnn_core::format::check_magic(bytes, MAGIC, "a training checkpoint")?;
    let have = bytes.len() as u64;
    let short =
        |need: u64, what: &str| Parse::short(bytes.len(), need, format!("{what} needs {need}"));
    let u32_at =
        |at: u64| u32::from_le_bytes(bytes[at as usize..at as usize + 4].try_into().expect("4"));
    if have < 16 {
        return Err(short(16, "the header"));
    }
    let version = u32_at(8);
    if version != VERSION {
        return Err(Parse::Bad(format!(
            "unsupported checkpoint version {version} (this build reads {VERSION})"
        )));
    }
    let meta_len = u64::from(u32_at(12));
    if meta_len > MAX_META {
        return Err(Parse::Bad(format!(
            "metadata of {meta_len} bytes exceeds {MAX_META}"
        )));
    }
    let mut pos = 16 + meta_len;
    if have < pos + 4 {
        return Err(short(pos + 4, "the metadata"));
    }
    let count = u32_at(pos);
    if count > MAX_TENSORS {
        return Err(Parse::Bad(format!(
            "{count} tensors exceed the limit of {MAX_TENSORS}"
        )));
    }
    pos += 4;
    for i in 0..count {
        if have < pos + 4 {
            return Err(short(pos + 4, &format!("tensor {}", i + 1)));
        }
        let name_len = u64::from(u32_at(pos));
        if name_len > MAX_NAME {
            return Err(Parse::Bad(format!(
                "tensor {} has a name of {name_len} bytes",
                i + 1
            )));
        }
        let len_at = pos + 4 + name_len;
        if have < len_at + 8 {
            return Err(short(len_at + 8, &format!("tensor {}", i + 1)));
        }
        let at = len_at as usize;
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        pos = len
            .checked_mul(4)
            .and_then(|data| (len_at + 8).checked_add(data))
            .filter(|&end| end <= MAX_BYTES)
            .ok_or_else(|| {
                Parse::Bad(format!(
                    "tensor {} claims {len} values, beyond the largest accepted checkpoint",
                    i + 1
                ))
            })?;
    }
    Ok(pos + 4)
}

/// Parses a checkpoint; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<TrainState> {
    let total = extent(bytes).map_err(|p| bad(path, p.into_problem()))?;
    let body_end =
        bnn_core::format::check_length_and_crc(bytes, total).map_err(|p| bad(path, p))?;
    let body = &bytes[..body_end];
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TrainState {
        let mut config = crate::recipe("seed").unwrap();
        config.hidden = vec![3];
        config.limit_train = Some(600);
        config.validation = 100;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let net = Network::new(&config, &mut rng);
        let optim = OptimState::new(&net, config.optimizer);
        TrainState {
            clips: vec![config.ste_clip; crate::step::ste_sites(&config)],
            config,
            optim,
            net,
            epochs_done: 0,
            best: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn the_lengths_give_the_exact_size_and_every_prefix_asks_for_more() {
        let bytes = to_bytes(&state());
        assert_eq!(extent(&bytes).ok(), Some(bytes.len() as u64));
        // Each prefix either asks for more bytes, past what it has, or has
        // reached the end the lengths give; it never claims to be invalid.
        for len in 0..bytes.len() {
            match extent(&bytes[..len]) {
                Err(Parse::Short { need, .. }) => assert!(need > len as u64, "{len}"),
                Ok(total) => assert_eq!(total, bytes.len() as u64, "{len}"),
                Err(Parse::Bad(p)) => panic!("prefix of {len} bytes: {p}"),
            }
            let e = from_bytes(&bytes[..len], Path::new("c.ckpt")).unwrap_err();
            assert!(e.to_string().contains("truncated"), "{len}: {e}");
        }
        let long = [bytes.clone(), vec![0]].concat();
        let e = from_bytes(&long, Path::new("c.ckpt")).unwrap_err();
        assert!(e.to_string().contains("1 bytes of trailing data"), "{e}");
        // The data limits come back with the configuration.
        let back = from_bytes(&bytes, Path::new("c.ckpt")).unwrap();
        assert_eq!(back.config.limit_train, Some(600));
        assert_eq!(back, state());
    }

    #[test]
    fn lying_lengths_are_refused_from_the_header() {
        let bytes = to_bytes(&state());
        let mut meta = bytes.clone();
        meta[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(extent(&meta), Err(Parse::Bad(p)) if p.contains("metadata of")));
        let mut version = bytes.clone();
        version[8] = 9;
        assert!(matches!(extent(&version), Err(Parse::Bad(p)) if p.contains("version 9")));
        assert!(matches!(extent(&[0u8; 64]), Err(Parse::Bad(p)) if p.contains("wrong magic")));
    }
}
