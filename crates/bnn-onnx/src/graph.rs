//! The checks between parsing and matching: versions, where every node's
//! inputs come from, a topological order (cycles refused), and tensor
//! values decoded with their element counts checked against the bytes
//! present, external data included.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use crate::wire::{Graph, Model, Tensor};
use crate::{quote, Error};

/// Oldest default-domain opset accepted: 11 settled the semantics the
/// matcher relies on (`Pad` with its pads as an input, `Gemm` with an
/// optional `C`, negative axes).
pub const MIN_OPSET: i64 = 11;
/// Oldest IR version accepted (ONNX 1.7): earlier files put the
/// initializers among the graph inputs.
pub const MIN_IR: i64 = 7;
/// Most elements of one tensor.
pub const MAX_ELEMENTS: usize = 1 << 26;

/// A tensor's dimensions and values, in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: Vec<f64>,
}

impl Const {
    pub fn scalar(v: f64) -> Const {
        Const {
            dims: Vec::new(),
            data: vec![v],
        }
    }
}

/// Checks the versions and the graph's wiring; returns the graph and its
/// nodes in an order where each comes after everything it reads.
pub fn check<'m, 'a>(model: &'m Model<'a>) -> Result<(&'m Graph<'a>, Vec<usize>), Error> {
    if model.ir_version < MIN_IR {
        return Err(Error::new(format!(
            "IR version {} is older than {MIN_IR} (ONNX 1.7); re-export with a newer exporter",
            model.ir_version
        )));
    }
    let default = model
        .opsets
        .iter()
        .filter(|(d, _)| d.is_empty() || d == "ai.onnx")
        .map(|&(_, v)| v)
        .max();
    match default {
        None => return Err(Error::new("no default-domain opset is imported".into())),
        Some(v) if v < MIN_OPSET => {
            return Err(Error::new(format!(
                "opset {v} is older than {MIN_OPSET}; re-export with opset_version >= {MIN_OPSET}"
            )))
        }
        Some(_) => {}
    }
    let Some(graph) = &model.graph else {
        return Err(Error::new("the model holds no graph".into()));
    };
    if graph.sparse_initializers > 0 {
        return Err(Error::new("sparse initializers are not supported".into()));
    }
    let mut known: HashSet<&str> = HashSet::new();
    for i in &graph.inputs {
        known.insert(&i.name);
    }
    for t in &graph.initializers {
        known.insert(&t.name);
    }
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let domain_known = node.domain.is_empty()
            || node.domain == "ai.onnx"
            || model.opsets.iter().any(|(d, _)| *d == node.domain);
        if !domain_known {
            return Err(Error::new(format!(
                "{}: domain {} is not among the model's opset imports",
                describe(graph, i),
                quote(&node.domain)
            )));
        }
        for out in node.outputs.iter().filter(|o| !o.is_empty()) {
            if known.contains(out.as_str()) || producer.insert(out, i).is_some() {
                return Err(Error::new(format!(
                    "{}: output {} is defined twice",
                    describe(graph, i),
                    quote(out)
                )));
            }
        }
    }
    // Kahn's algorithm over the producer edges.
    let mut waiting = vec![0usize; graph.nodes.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for input in node.inputs.iter().filter(|n| !n.is_empty()) {
            if let Some(&p) = producer.get(input.as_str()) {
                waiting[i] += 1;
                readers[p].push(i);
            } else if !known.contains(input.as_str()) {
                return Err(Error::new(format!(
                    "{}: input {} is not produced by any node, initializer or graph input",
                    describe(graph, i),
                    quote(input)
                )));
            }
        }
    }
    let mut ready: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| waiting[i] == 0)
        .rev()
        .collect();
    let mut order = Vec::with_capacity(graph.nodes.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(r);
            }
        }
    }
    if order.len() < graph.nodes.len() {
        let stuck = (0..graph.nodes.len())
            .find(|&i| waiting[i] > 0)
            .expect("some node is left");
        return Err(Error::new(format!(
            "{} is on a cycle: its inputs depend on its own output",
            describe(graph, stuck)
        )));
    }
    Ok((graph, order))
}

/// `node 'name' (Op)`, or `node #i (Op)` for an unnamed node.
pub fn describe(graph: &Graph<'_>, i: usize) -> String {
    let node = &graph.nodes[i];
    if node.name.is_empty() {
        format!("node #{i} ({})", quote(&node.op_type))
    } else {
        format!("node {} ({})", quote(&node.name), quote(&node.op_type))
    }
}

/// Bytes per element of the data types decoded, with their names.
fn element(data_type: i32) -> Option<(usize, &'static str)> {
    Some(match data_type {
        1 => (4, "float"),
        2 => (1, "uint8"),
        3 => (1, "int8"),
        4 => (2, "uint16"),
        5 => (2, "int16"),
        6 => (4, "int32"),
        7 => (8, "int64"),
        9 => (1, "bool"),
        11 => (8, "double"),
        12 => (4, "uint32"),
        _ => return None,
    })
}

/// A tensor's values. `what` names it in errors ("initializer 'W'");
/// `dir` is the model's directory, where external data may sit (`None`:
/// external data refused).
pub fn decode(t: &Tensor<'_>, dir: Option<&Path>, what: &str) -> Result<Const, Error> {
    let Some((width, type_name)) = element(t.data_type) else {
        return Err(Error::new(format!(
            "{what}: data type {} is not supported (float, double and integer tensors are)",
            t.data_type
        )));
    };
    if t.has_segment {
        return Err(Error::new(format!(
            "{what}: segmented tensors are not supported"
        )));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut count: usize = 1;
    for &d in &t.dims {
        let ok = usize::try_from(d).ok().filter(|&d| d <= MAX_ELEMENTS);
        let Some(d) = ok else {
            return Err(Error::new(format!("{what}: dimension {d} is out of range")));
        };
        count = count.saturating_mul(d);
        dims.push(d);
    }
    if count > MAX_ELEMENTS {
        return Err(Error::new(format!(
            "{what}: dims {:?} hold {count} elements (at most {MAX_ELEMENTS})",
            t.dims
        )));
    }
    let lying = |held: usize| {
        Error::new(format!(
            "{what}: lying shape: dims {:?} say {count} elements but the data holds {held} {type_name} values",
            t.dims
        ))
    };
    let external;
    let raw: Option<&[u8]> = if t.data_location == 1 {
        external = read_external(t, dir, what, count.saturating_mul(width))?;
        Some(&external)
    } else {
        t.raw
    };
    let typed_present = !(t.float_data.is_empty()
        && t.int32_data.is_empty()
        && t.int64_data.is_empty()
        && t.double_data.is_empty());
    let data: Vec<f64> = if let Some(raw) = raw {
        if typed_present {
            return Err(Error::new(format!(
                "{what}: holds both raw_data and typed data"
            )));
        }
        if raw.len() % width != 0 || raw.len() / width != count {
            return Err(lying(raw.len() / width));
        }
        raw.chunks_exact(width)
            .map(|b| le_value(t.data_type, b))
            .collect()
    } else {
        match t.data_type {
            1 => {
                let held = t.float_data.byte_len() / 4;
                let values = t.float_data.fixed(4).filter(|_| held == count);
                values
                    .ok_or_else(|| lying(held))?
                    .into_iter()
                    .map(|b| le_value(1, b))
                    .collect()
            }
            11 => {
                let held = t.double_data.byte_len() / 8;
                let values = t.double_data.fixed(8).filter(|_| held == count);
                values
                    .ok_or_else(|| lying(held))?
                    .into_iter()
                    .map(|b| le_value(11, b))
                    .collect()
            }
            7 => {
                let held = t.int64_data.varint_count();
                if held != count {
                    return Err(lying(held));
                }
                t.int64_data
                    .varints()?
                    .into_iter()
                    .map(|v| v as f64)
                    .collect()
            }
            _ => {
                let held = t.int32_data.varint_count();
                if held != count {
                    return Err(lying(held));
                }
                // int32_data holds every narrow integer type, as int32.
                t.int32_data
                    .varints()?
                    .into_iter()
                    .map(|v| f64::from(v as i32))
                    .collect()
            }
        }
    };
    Ok(Const { dims, data })
}

fn le_value(data_type: i32, b: &[u8]) -> f64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    match data_type {
        1 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        11 => f64::from_le_bytes(w),
        2 | 9 => f64::from(b[0]),
        3 => f64::from(b[0] as i8),
        4 => f64::from(u16::from_le_bytes([b[0], b[1]])),
        5 => f64::from(i16::from_le_bytes([b[0], b[1]])),
        6 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        12 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        7 => i64::from_le_bytes(w) as f64,
        _ => unreachable!("element() lists the decoded types"),
    }
}

/// The bytes of an external tensor: only from a regular file directly
/// or below the model's directory, named by a relative path without `..`,
/// reached through no symbolic link, and at most `want + 1` bytes of it
/// (one more than the shape needs, so that a longer stated length is
/// caught as a lying shape without reading it all).
fn read_external(
    t: &Tensor<'_>,
    dir: Option<&Path>,
    what: &str,
    want: usize,
) -> Result<Vec<u8>, Error> {
    let refuse = |why: &str| Error::new(format!("{what}: external data {why}"));
    let Some(dir) = dir else {
        return Err(refuse(
            "is refused: the model was given as bytes, not as a file beside its data",
        ));
    };
    let mut location = None;
    let (mut start, mut length) = (0u64, None);
    for (k, v) in &t.external {
        let number = || {
            v.parse::<u64>()
                .map_err(|_| refuse(&format!("{k} {} is not a number", quote(v))))
        };
        match k.as_str() {
            "location" => location = Some(v.as_str()),
            "offset" => start = number()?,
            "length" => length = Some(number()?),
            _ => {}
        }
    }
    let Some(location) = location else {
        return Err(refuse("names no location"));
    };
    let rel = Path::new(location);
    let plain = !location.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain {
        return Err(refuse(&format!(
            "location {} is refused: it must be a relative path inside the model's directory, without '..'",
            quote(location)
        )));
    }
    // No link anywhere on the way, so the file is where the path says.
    let mut walked = dir.to_path_buf();
    for c in rel.components() {
        walked.push(c);
        match std::fs::symlink_metadata(&walked) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(&format!(
                    "location {} is refused: it goes through a symbolic link",
                    quote(location)
                )))
            }
            Ok(_) => {}
            Err(e) => {
                return Err(refuse(&format!("file {}: {e}", quote(location))));
            }
        }
    }
    let path = dir.join(rel);
    let meta =
        std::fs::metadata(&path).map_err(|e| refuse(&format!("file {}: {e}", quote(location))))?;
    if !meta.is_file() {
        return Err(refuse(&format!(
            "location {} is not a regular file",
            quote(location)
        )));
    }
    if start > meta.len() {
        return Err(refuse(&format!(
            "offset {start} is beyond the end of {} ({} bytes)",
            quote(location),
            meta.len()
        )));
    }
    let available = meta.len() - start;
    let take = length.unwrap_or(available);
    if take > available {
        return Err(refuse(&format!(
            "length {take} at offset {start} runs past the end of {} ({} bytes)",
            quote(location),
            meta.len()
        )));
    }
    let mut file = std::fs::File::open(&path).map_err(|e| refuse(&format!("{e}")))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| refuse(&format!("{e}")))?;
    let mut buf = Vec::new();
    let limit = take.min(want as u64 + 1);
    bnn_io::read::read_bounded(&mut file.take(limit), limit, &mut buf)
        .map_err(|e| refuse(&format!("{e}")))?;
    Ok(buf)
}
