//! A bounded reader of the protobuf wire format, and the parts of the ONNX
//! messages the importer reads (field numbers from `onnx.proto`).
//!
//! Hand-written rather than generated (prost with derived structs would
//! also do): the file is untrusted, and here every count and length is
//! checked against the bytes actually present before anything is
//! allocated, tensor payloads stay borrowed slices of the file until a
//! layer asks for their values, and subgraphs (`If`/`Loop` bodies, which
//! the importer refuses anyway) are skipped unparsed, so nothing recurses
//! on the input's nesting. Unknown fields are skipped, as protobuf wants.

use crate::Error;

/// Most nodes in a graph, initializers, graph inputs and outputs.
pub const MAX_NODES: usize = 100_000;
/// Most attributes, inputs or outputs of one node.
pub const MAX_PER_NODE: usize = 4096;
/// Most dimensions of a tensor.
pub const MAX_DIMS: usize = 8;
/// Longest name kept (node, tensor, op, domain); longer is an error.
pub const MAX_NAME: usize = 4096;

/// One field's value as found on the wire.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    /// The integer and the bytes that encode it (for repeated varints
    /// that are not packed, which are kept as those bytes).
    Varint(u64, &'a [u8]),
    Fixed32(&'a [u8]),
    Fixed64(&'a [u8]),
    Bytes(&'a [u8]),
}

/// Reads fields from one message; `base` is the message's offset in the
/// file, so errors say where.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize, what: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            what,
        }
    }

    fn truncated(&self, why: &str) -> Error {
        Error::new(format!(
            "truncated or corrupt protobuf in {} at byte {}: {why}",
            self.what,
            self.base + self.pos
        ))
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.truncated("varint runs past the end"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.truncated("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Error> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(self.truncated(&format!("field of {n} bytes, {left} left")));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>, usize)>, Error> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        if number == 0 {
            return Err(self.truncated("field number 0"));
        }
        let at = self.base + self.pos;
        let value = match wire {
            0 => {
                let start = self.pos;
                let v = self.varint()?;
                Value::Varint(v, &self.buf[start..self.pos])
            }
            1 => Value::Fixed64(self.take(8)?),
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => Value::Fixed32(self.take(4)?),
            other => {
                return Err(self.truncated(&format!("wire type {other} (groups are not ONNX)")))
            }
        };
        Ok(Some((number, value, at)))
    }
}

fn wrong(what: &str, number: u64, at: usize) -> Error {
    Error::new(format!(
        "corrupt protobuf in {what} at byte {at}: field {number} has the wrong wire type"
    ))
}

fn int(v: Value<'_>, what: &str, number: u64, at: usize) -> Result<i64, Error> {
    match v {
        Value::Varint(n, _) => Ok(n as i64),
        _ => Err(wrong(what, number, at)),
    }
}

fn bytes<'a>(v: Value<'a>, what: &str, number: u64, at: usize) -> Result<&'a [u8], Error> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(wrong(what, number, at)),
    }
}

fn string(v: Value<'_>, what: &str, number: u64, at: usize) -> Result<String, Error> {
    let b = bytes(v, what, number, at)?;
    if b.len() > MAX_NAME {
        return Err(Error::new(format!(
            "{what} at byte {at}: a name of {} bytes (at most {MAX_NAME})",
            b.len()
        )));
    }
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| Error::new(format!("{what} at byte {at}: a name that is not UTF-8")))
}

fn push<T>(list: &mut Vec<T>, item: T, max: usize, what: &str) -> Result<(), Error> {
    if list.len() >= max {
        return Err(Error::new(format!("more than {max} {what}")));
    }
    list.push(item);
    Ok(())
}

/// Offset of `part` within `whole` (both from the same file).
fn offset(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Elements of a repeated numeric field, kept as the wire bytes of its
/// packed runs or single values: counted and decoded only when used.
#[derive(Clone, Debug, Default)]
pub struct Repeated<'a> {
    pub runs: Vec<&'a [u8]>,
}

impl<'a> Repeated<'a> {
    fn add(&mut self, v: Value<'a>, fixed: Option<usize>) -> Result<(), Error> {
        let ok = match (v, fixed) {
            (Value::Bytes(b), _) => {
                self.runs.push(b);
                return Ok(());
            }
            (Value::Varint(_, b), None) => b,
            (Value::Fixed32(b), Some(4)) | (Value::Fixed64(b), Some(8)) => b,
            _ => return Err(Error::new("repeated field with the wrong wire type".into())),
        };
        self.runs.push(ok);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(|r| r.is_empty())
    }

    /// Varints held (a varint ends at each byte with the high bit clear).
    pub fn varint_count(&self) -> usize {
        self.runs
            .iter()
            .map(|r| r.iter().filter(|&&b| b & 0x80 == 0).count())
            .sum()
    }

    pub fn byte_len(&self) -> usize {
        self.runs.iter().map(|r| r.len()).sum()
    }

    pub fn varints(&self) -> Result<Vec<i64>, Error> {
        let mut out = Vec::with_capacity(self.varint_count());
        for run in &self.runs {
            let mut r = Reader::new(run, 0, "a packed integer list");
            while r.pos < run.len() {
                out.push(r.varint()? as i64);
            }
        }
        Ok(out)
    }

    /// Fixed-width little-endian values of `width` bytes; `None` when the
    /// bytes are not whole values.
    pub fn fixed(&self, width: usize) -> Option<Vec<&'a [u8]>> {
        let mut out = Vec::with_capacity(self.byte_len() / width);
        for run in &self.runs {
            if run.len() % width != 0 {
                return None;
            }
            out.extend(run.chunks_exact(width));
        }
        Some(out)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Model<'a> {
    pub ir_version: i64,
    /// (domain, version) of each operator set imported.
    pub opsets: Vec<(String, i64)>,
    pub graph: Option<Graph<'a>>,
    pub has_functions: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Graph<'a> {
    pub nodes: Vec<Node<'a>>,
    pub initializers: Vec<Tensor<'a>>,
    pub sparse_initializers: usize,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

#[derive(Clone, Debug, Default)]
pub struct Node<'a> {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub attributes: Vec<Attribute<'a>>,
}

#[derive(Clone, Debug, Default)]
pub struct Attribute<'a> {
    pub name: String,
    pub f: Option<f32>,
    pub i: Option<i64>,
    pub s: Option<&'a [u8]>,
    pub t: Option<Tensor<'a>>,
    pub floats: Repeated<'a>,
    pub ints: Repeated<'a>,
    /// A graph, tensors list or other kinds the importer never reads.
    pub other: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Tensor<'a> {
    pub name: String,
    pub dims: Vec<i64>,
    pub data_type: i32,
    pub raw: Option<&'a [u8]>,
    pub float_data: Repeated<'a>,
    pub int32_data: Repeated<'a>,
    pub int64_data: Repeated<'a>,
    pub double_data: Repeated<'a>,
    pub external: Vec<(String, String)>,
    pub data_location: i64,
    pub has_segment: bool,
}

/// A graph input or output: its name, element type and dimensions
/// (`None` for a symbolic one such as the batch size).
#[derive(Clone, Debug, Default)]
pub struct ValueInfo {
    pub name: String,
    pub elem_type: i32,
    pub dims: Option<Vec<Option<i64>>>,
}

/// Parses a whole `ModelProto`.
pub fn parse_model(file: &[u8]) -> Result<Model<'_>, Error> {
    let mut m = Model::default();
    let mut r = Reader::new(file, 0, "the model");
    while let Some((n, v, at)) = r.field()? {
        match n {
            1 => m.ir_version = int(v, "the model", n, at)?,
            8 => {
                let b = bytes(v, "the model", n, at)?;
                let mut o = Reader::new(b, offset(file, b), "an opset import");
                let (mut domain, mut version) = (String::new(), 0);
                while let Some((n, v, at)) = o.field()? {
                    match n {
                        1 => domain = string(v, "an opset import", n, at)?,
                        2 => version = int(v, "an opset import", n, at)?,
                        _ => {}
                    }
                }
                push(&mut m.opsets, (domain, version), 1000, "opset imports")?;
            }
            7 => {
                let b = bytes(v, "the model", n, at)?;
                m.graph = Some(parse_graph(file, b)?);
            }
            25 => m.has_functions = true,
            _ => {}
        }
    }
    Ok(m)
}

fn parse_graph<'a>(file: &'a [u8], b: &'a [u8]) -> Result<Graph<'a>, Error> {
    let mut g = Graph::default();
    let mut r = Reader::new(b, offset(file, b), "the graph");
    while let Some((n, v, at)) = r.field()? {
        match n {
            1 => {
                let node = parse_node(file, bytes(v, "the graph", n, at)?)?;
                push(&mut g.nodes, node, MAX_NODES, "nodes")?;
            }
            5 => {
                let t = parse_tensor(file, bytes(v, "the graph", n, at)?)?;
                push(&mut g.initializers, t, MAX_NODES, "initializers")?;
            }
            15 => g.sparse_initializers += 1,
            11 | 12 => {
                let info = parse_value_info(file, bytes(v, "the graph", n, at)?)?;
                let list = if n == 11 {
                    &mut g.inputs
                } else {
                    &mut g.outputs
                };
                push(list, info, MAX_NODES, "graph inputs or outputs")?;
            }
            _ => {}
        }
    }
    Ok(g)
}

fn parse_node<'a>(file: &'a [u8], b: &'a [u8]) -> Result<Node<'a>, Error> {
    const W: &str = "a node";
    let mut node = Node::default();
    let mut r = Reader::new(b, offset(file, b), W);
    while let Some((n, v, at)) = r.field()? {
        match n {
            1 => push(
                &mut node.inputs,
                string(v, W, n, at)?,
                MAX_PER_NODE,
                "node inputs",
            )?,
            2 => push(
                &mut node.outputs,
                string(v, W, n, at)?,
                MAX_PER_NODE,
                "node outputs",
            )?,
            3 => node.name = string(v, W, n, at)?,
            4 => node.op_type = string(v, W, n, at)?,
            7 => node.domain = string(v, W, n, at)?,
            5 => {
                let a = parse_attribute(file, bytes(v, W, n, at)?)?;
                push(&mut node.attributes, a, MAX_PER_NODE, "node attributes")?;
            }
            _ => {}
        }
    }
    Ok(node)
}

fn parse_attribute<'a>(file: &'a [u8], b: &'a [u8]) -> Result<Attribute<'a>, Error> {
    const W: &str = "an attribute";
    let mut a = Attribute::default();
    let mut r = Reader::new(b, offset(file, b), W);
    while let Some((n, v, at)) = r.field()? {
        match n {
            1 => a.name = string(v, W, n, at)?,
            2 => match v {
                Value::Fixed32(b) => a.f = Some(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
                _ => return Err(wrong(W, n, at)),
            },
            3 => a.i = Some(int(v, W, n, at)?),
            4 => a.s = Some(bytes(v, W, n, at)?),
            5 => a.t = Some(parse_tensor(file, bytes(v, W, n, at)?)?),
            7 => a.floats.add(v, Some(4)).map_err(|e| e.at(W, at))?,
            8 => a.ints.add(v, None).map_err(|e| e.at(W, at))?,
            6 | 9 | 10 | 11 | 14 | 15 | 22 | 23 => a.other = true,
            _ => {}
        }
    }
    Ok(a)
}

fn parse_tensor<'a>(file: &'a [u8], b: &'a [u8]) -> Result<Tensor<'a>, Error> {
    const W: &str = "a tensor";
    let mut t = Tensor::default();
    let mut r = Reader::new(b, offset(file, b), W);
    let mut dims = Repeated::default();
    while let Some((n, v, at)) = r.field()? {
        match n {
            1 => {
                dims.add(v, None).map_err(|e| e.at(W, at))?;
                if dims.varint_count() > MAX_DIMS {
                    return Err(Error::new(format!(
                        "a tensor at byte {at} has more than {MAX_DIMS} dimensions"
                    )));
                }
            }
            2 => t.data_type = int(v, W, n, at)? as i32,
            3 => t.has_segment = true,
            4 => t.float_data.add(v, Some(4)).map_err(|e| e.at(W, at))?,
            5 => t.int32_data.add(v, None).map_err(|e| e.at(W, at))?,
            7 => t.int64_data.add(v, None).map_err(|e| e.at(W, at))?,
            10 => t.double_data.add(v, Some(8)).map_err(|e| e.at(W, at))?,
            8 => t.name = string(v, W, n, at)?,
            9 => t.raw = Some(bytes(v, W, n, at)?),
            13 => {
                let e = bytes(v, W, n, at)?;
                let mut er = Reader::new(e, offset(file, e), "an external data entry");
                let (mut key, mut value) = (String::new(), String::new());
                while let Some((n, v, at)) = er.field()? {
                    match n {
                        1 => key = string(v, "an external data entry", n, at)?,
                        2 => value = string(v, "an external data entry", n, at)?,
                        _ => {}
                    }
                }
                push(&mut t.external, (key, value), 64, "external data entries")?;
            }
            14 => t.data_location = int(v, W, n, at)?,
            _ => {}
        }
    }
    t.dims = dims.varints()?;
    Ok(t)
}

fn parse_value_info(file: &[u8], b: &[u8]) -> Result<ValueInfo, Error> {
    const W: &str = "a graph input or output";
    let mut info = ValueInfo::default();
    let mut r = Reader::new(b, offset(file, b), W);
    while let Some((n, v, at)) = r.field()? {
        match n {
            1 => info.name = string(v, W, n, at)?,
            2 => {
                // TypeProto: tensor_type = 1 → elem_type = 1, shape = 2 →
                // dim = 1 → dim_value = 1 | dim_param = 2.
                let tb = bytes(v, W, n, at)?;
                let mut tr = Reader::new(tb, offset(file, tb), W);
                while let Some((n, v, at)) = tr.field()? {
                    if n != 1 {
                        continue;
                    }
                    let tt = bytes(v, W, n, at)?;
                    let mut ttr = Reader::new(tt, offset(file, tt), W);
                    while let Some((n, v, at)) = ttr.field()? {
                        match n {
                            1 => info.elem_type = int(v, W, n, at)? as i32,
                            2 => {
                                let sb = bytes(v, W, n, at)?;
                                let mut sr = Reader::new(sb, offset(file, sb), W);
                                let mut dims = Vec::new();
                                while let Some((n, v, at)) = sr.field()? {
                                    if n != 1 {
                                        continue;
                                    }
                                    let db = bytes(v, W, n, at)?;
                                    let mut dr = Reader::new(db, offset(file, db), W);
                                    let mut value = None;
                                    while let Some((n, v, at)) = dr.field()? {
                                        if n == 1 {
                                            value = Some(int(v, W, n, at)?);
                                        }
                                    }
                                    push(&mut dims, value, MAX_DIMS, "dimensions of an input")?;
                                }
                                info.dims = Some(dims);
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}
