//! A protobuf writer for ONNX graphs: the exporter ([`crate::export`])
//! writes its files with it, and the tests and fuzz seeds build graphs by
//! hand with it, without Python. It writes only what [`crate::wire`]
//! reads, with the same field numbers.

/// One message being written.
#[derive(Clone, Debug, Default)]
pub struct Msg(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    pub fn new() -> Msg {
        Msg::default()
    }

    pub fn int(mut self, field: u64, v: i64) -> Msg {
        varint(&mut self.0, field << 3);
        varint(&mut self.0, v as u64);
        self
    }

    pub fn bytes(mut self, field: u64, b: &[u8]) -> Msg {
        varint(&mut self.0, (field << 3) | 2);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn str(self, field: u64, s: &str) -> Msg {
        self.bytes(field, s.as_bytes())
    }

    pub fn msg(self, field: u64, m: &Msg) -> Msg {
        self.bytes(field, &m.0)
    }

    pub fn float(mut self, field: u64, v: f32) -> Msg {
        varint(&mut self.0, (field << 3) | 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn packed_ints(self, field: u64, vs: &[i64]) -> Msg {
        let mut b = Vec::new();
        for &v in vs {
            varint(&mut b, v as u64);
        }
        self.bytes(field, &b)
    }
}

/// A float tensor with its values as `raw_data`.
pub fn tensor(name: &str, dims: &[i64], values: &[f32]) -> Msg {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Msg::new()
        .packed_ints(1, dims)
        .int(2, 1)
        .str(8, name)
        .bytes(9, &raw)
}

/// An int64 tensor with its values in `int64_data`.
pub fn int_tensor(name: &str, dims: &[i64], values: &[i64]) -> Msg {
    Msg::new()
        .packed_ints(1, dims)
        .int(2, 7)
        .str(8, name)
        .packed_ints(7, values)
}

pub fn attr_int(name: &str, v: i64) -> Msg {
    Msg::new().str(1, name).int(3, v).int(20, 2)
}

pub fn attr_float(name: &str, v: f32) -> Msg {
    Msg::new().str(1, name).float(2, v).int(20, 1)
}

pub fn attr_ints(name: &str, vs: &[i64]) -> Msg {
    Msg::new().str(1, name).packed_ints(8, vs).int(20, 7)
}

pub fn attr_str(name: &str, v: &str) -> Msg {
    Msg::new().str(1, name).str(4, v).int(20, 3)
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: &[Msg]) -> Msg {
    let mut m = Msg::new();
    for i in inputs {
        m = m.str(1, i);
    }
    for o in outputs {
        m = m.str(2, o);
    }
    m = m.str(3, name).str(4, op);
    for a in attrs {
        m = m.msg(5, a);
    }
    m
}

/// A float graph input or output; `None` dims are symbolic (`N`).
pub fn value_info(name: &str, dims: &[Option<i64>]) -> Msg {
    typed_value_info(name, 1, dims)
}

/// A graph input or output of ONNX element type `elem` (1 float, 2
/// uint8, 7 int64); `None` dims are symbolic (`N`).
pub fn typed_value_info(name: &str, elem: i64, dims: &[Option<i64>]) -> Msg {
    let mut shape = Msg::new();
    for d in dims {
        let dim = match d {
            Some(v) => Msg::new().int(1, *v),
            None => Msg::new().str(2, "N"),
        };
        shape = shape.msg(1, &dim);
    }
    let tensor_type = Msg::new().int(1, elem).msg(2, &shape);
    Msg::new()
        .str(1, name)
        .msg(2, &Msg::new().msg(1, &tensor_type))
}

pub fn graph(nodes: &[Msg], initializers: &[Msg], inputs: &[Msg], outputs: &[Msg]) -> Msg {
    named_graph("graph", "", nodes, initializers, inputs, outputs)
}

/// A graph with its name and doc string.
pub fn named_graph(
    name: &str,
    doc: &str,
    nodes: &[Msg],
    initializers: &[Msg],
    inputs: &[Msg],
    outputs: &[Msg],
) -> Msg {
    let mut g = Msg::new().str(2, name);
    if !doc.is_empty() {
        g = g.str(10, doc);
    }
    for n in nodes {
        g = g.msg(1, n);
    }
    for t in initializers {
        g = g.msg(5, t);
    }
    for i in inputs {
        g = g.msg(11, i);
    }
    for o in outputs {
        g = g.msg(12, o);
    }
    g
}

/// A model of IR version `ir` importing the default opset `opset`.
pub fn model(ir: i64, opset: i64, graph: &Msg) -> Vec<u8> {
    produced_model(ir, opset, "bnn-onnx tests", "", graph)
}

/// A model as [`model`] writes it, naming its producer and version.
pub fn produced_model(ir: i64, opset: i64, producer: &str, version: &str, graph: &Msg) -> Vec<u8> {
    let opset = Msg::new().str(1, "").int(2, opset);
    let mut m = Msg::new().int(1, ir).msg(8, &opset).str(2, producer);
    if !version.is_empty() {
        m = m.str(3, version);
    }
    m.msg(7, graph).0
}
