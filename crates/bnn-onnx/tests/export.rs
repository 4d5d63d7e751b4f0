//! `export` then `import`: every shipped model, and built models with what
//! the shipped ones lack (flipped and constant neurons, a binary-input
//! CNN padded with −1, valid padding, pooled flipped channels, the seed
//! rule), must come back as the same model. ONNX Runtime runs the same
//! exports in `crates/bnn-py/tests/test_onnx_export.py`.

use std::path::PathBuf;

use bnn_core::conv::{Conv2d, Layer, Padding};
use bnn_core::{BinaryDense, BitMatrix, DecisionRule, InputEncoding, InputShape, Model, Threshold};
use bnn_onnx::encode::{self, attr_int, node, tensor, typed_value_info, value_info};
use bnn_onnx::export::export;
use bnn_onnx::import_bytes;

fn weights_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../weights")
}

/// Exports `model`, imports the bytes, and checks the model came back.
fn round_trip(model: &Model, what: &str) {
    let exported = export(model, "bnn", "test").unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = import_bytes(&exported.bytes, None).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(back.warnings.is_empty(), "{what}: {:?}", back.warnings);
    assert_eq!(back.score_scale, 1.0, "{what}");
    assert_eq!(back.model.rule(), model.rule(), "{what}");
    assert_eq!(back.model.input_shape(), model.input_shape(), "{what}");
    assert_eq!(back.model, *model, "{what}: the imported model differs");
}

#[test]
fn every_shipped_model_comes_back() {
    let mut seen = 0;
    for entry in std::fs::read_dir(weights_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bnn") {
            continue;
        }
        let file = bnn_core::format::load(&path).unwrap();
        round_trip(&file.model, &path.display().to_string());
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} models in weights/");
}

/// ±1 values from a fixed pattern.
fn pm1(n: usize, seed: u64) -> Vec<i8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x & 1 == 1 {
                1
            } else {
                -1
            }
        })
        .collect()
}

/// Thresholds of every kind: flipped, not, and out of reach either way
/// (constant neurons).
fn thresholds(n: usize, inputs: usize, seed: u64) -> Vec<Threshold> {
    let span = inputs as i32;
    (0..n)
        .map(|j| {
            let v = (j as i32 * 7 + seed as i32) % (span + 1) - span / 2;
            match j % 5 {
                0 | 1 => Threshold::at_least(v),
                2 => Threshold::at_most(v),
                3 if j % 2 == 0 => Threshold::at_least(span + 1),
                _ => Threshold::at_most(-span - 1),
            }
        })
        .collect()
}

fn conv(k: usize, c: usize, n: usize, padding: Padding, seed: u64) -> Layer {
    let w = BitMatrix::from_pm1(n, k * k * c, &pm1(n * k * k * c, seed)).unwrap();
    let bound = if seed == 1 {
        255 * k * k * c
    } else {
        k * k * c
    };
    Layer::Conv(Conv2d::new(k, c, padding, w, thresholds(n, bound, seed)).unwrap())
}

fn hidden(inputs: usize, n: usize, seed: u64) -> Layer {
    let w = BitMatrix::from_pm1(n, inputs, &pm1(n * inputs, seed)).unwrap();
    Layer::Dense(BinaryDense::hidden(w, thresholds(n, inputs, seed)).unwrap())
}

fn scores(inputs: usize, n: usize, seed: u64) -> Layer {
    let w = BitMatrix::from_pm1(n, inputs, &pm1(n * inputs, seed)).unwrap();
    let bias = (0..n).map(|j| j as f32 * 0.25 - 1.0).collect();
    Layer::Dense(BinaryDense::output(w, bias).unwrap())
}

#[test]
fn built_models_with_every_kind_of_layer_come_back() {
    let rules = [DecisionRule::Scores, DecisionRule::Seed];
    // A binary-input CNN over 3 channels: −1 padding on the input bits, a
    // pooled convolution whose flipped channels pool as AND, valid padding.
    for rule in rules {
        let model = Model::from_layers(
            InputShape::new(9, 8, 3),
            InputEncoding::Binary { threshold: 90 },
            vec![
                conv(3, 3, 12, Padding::Same, 2),
                Layer::MaxPool,
                conv(3, 12, 10, Padding::Valid, 3),
                conv(1, 10, 9, Padding::Valid, 4),
                hidden(2 * 2 * 9, 17, 5),
                scores(17, 4, 6),
            ],
            rule,
        )
        .unwrap();
        round_trip(&model, &format!("binary CNN, rule {rule}"));
    }
    // A u8-input CNN with a same first convolution (zero padding), then a
    // binary same convolution (−1 padding), pooled.
    let model = Model::from_layers(
        InputShape::new(10, 10, 2),
        InputEncoding::U8,
        vec![
            conv(3, 2, 8, Padding::Same, 1),
            conv(5, 8, 6, Padding::Same, 7),
            Layer::MaxPool,
            scores(5 * 5 * 6, 3, 8),
        ],
        DecisionRule::Scores,
    )
    .unwrap();
    round_trip(&model, "u8 CNN");
    // MLPs: binary and u8 input, flat and with a shape, one layer or more.
    for (shape, encoding) in [
        (InputShape::flat(30), InputEncoding::Binary { threshold: 0 }),
        (
            InputShape::new(5, 3, 2),
            InputEncoding::Binary { threshold: 255 },
        ),
        (InputShape::new(5, 3, 2), InputEncoding::U8),
    ] {
        for rule in rules {
            let model = Model::from_layers(
                shape,
                encoding,
                vec![hidden(30, 20, 9), hidden(20, 11, 10), scores(11, 5, 11)],
                rule,
            )
            .unwrap();
            round_trip(&model, &format!("MLP {shape} {encoding:?} {rule}"));
            let model = Model::from_layers(shape, encoding, vec![scores(30, 5, 12)], rule).unwrap();
            round_trip(&model, &format!("one layer {shape} {encoding:?} {rule}"));
        }
    }
}

/// What the importer takes of the new patterns, and what it refuses.
#[test]
fn the_importer_reads_a_channels_last_input_and_a_classes_output() {
    let w: Vec<f32> = pm1(3 * 12, 3).into_iter().map(f32::from).collect();
    // Cast → Transpose(perm) → Where(x >= 128) → Flatten → Gemm; classes
    // as given.
    let build = |perm: &[i64], second: Option<bnn_onnx::encode::Msg>| {
        let mut nodes = vec![
            node("Cast", "cast", &["x"], &["xf"], &[attr_int("to", 1)]),
            node(
                "Transpose",
                "nchw",
                &["xf"],
                &["xt"],
                &[encode::attr_ints("perm", perm)],
            ),
            node("GreaterOrEqual", "ge", &["xt", "t"], &["c"], &[]),
            node("Where", "bits", &["c", "one", "minus"], &["xb"], &[]),
            node("Flatten", "flat", &["xb"], &["xv"], &[attr_int("axis", 1)]),
            node("Gemm", "fc", &["xv", "w"], &["y"], &[attr_int("transB", 1)]),
        ];
        let mut outputs = vec![value_info("y", &[None, Some(3)])];
        if let Some(n) = second {
            nodes.push(n);
            outputs.push(typed_value_info("k", 7, &[None]));
        }
        let inits = [
            tensor("t", &[], &[128.0]),
            tensor("one", &[], &[1.0]),
            tensor("minus", &[], &[-1.0]),
            tensor("w", &[3, 12], &w),
            tensor("zero", &[], &[0.0]),
        ];
        let g = encode::graph(
            &nodes,
            &inits,
            &[typed_value_info("x", 2, &[None, Some(2), Some(3), Some(2)])],
            &outputs,
        );
        import_bytes(&encode::model(7, 13, &g), None).map_err(|e| e.to_string())
    };
    let argmax = |input: &str, keepdims: i64| {
        node(
            "ArgMax",
            "am",
            &[input],
            &["k"],
            &[attr_int("axis", 1), attr_int("keepdims", keepdims)],
        )
    };
    let ok = build(&[0, 3, 1, 2], Some(argmax("y", 0))).unwrap();
    assert_eq!(ok.model.input_shape(), InputShape::new(2, 3, 2));
    assert_eq!(ok.model.rule(), DecisionRule::Scores);
    // The flattened NCHW map's columns are permuted to the engine's NHWC:
    // ONNX column (c, y, x) = c·6 + y·3 + x holds engine column
    // (y·3 + x)·2 + c.
    let signs = ok.model.layers()[0].weights().to_pm1();
    for j in 0..3 {
        for i in 0..12 {
            let (c, pos) = (i / 6, i % 6);
            assert_eq!(f32::from(signs[j * 12 + pos * 2 + c]), w[j * 12 + i]);
        }
    }
    let err = build(&[0, 2, 3, 1], None).unwrap_err();
    assert!(
        err.contains("only the (N, H, W, C) uint8 input may be transposed"),
        "{err}"
    );
    let err = build(&[0, 3, 1, 2], Some(argmax("y", 1))).unwrap_err();
    assert!(err.contains("the second must be the ArgMax"), "{err}");
    let err = build(
        &[0, 3, 1, 2],
        Some(node("Identity", "id", &["y"], &["k"], &[])),
    )
    .unwrap_err();
    assert!(err.contains("the second must be the ArgMax"), "{err}");
}

/// A per-class score scale exports as a `Mul` between the dot and the
/// bias, which the importer reads back into the same scale: on a binary
/// MLP, a u8 one-layer model (the pixel layer scores) and a zero-padded
/// CNN, with a class at scale 0.
#[test]
fn per_class_score_scales_come_back() {
    let scale = vec![0.5f32, 0.0, 1.0, 3.3125, 1.0e-3];
    let mlp = Model::from_layers(
        InputShape::flat(30),
        InputEncoding::Binary { threshold: 7 },
        vec![hidden(30, 20, 9), scores(20, 5, 11)],
        DecisionRule::Scores,
    )
    .unwrap();
    let one = Model::from_layers(
        InputShape::new(5, 3, 2),
        InputEncoding::U8,
        vec![scores(30, 5, 12)],
        DecisionRule::Seed,
    )
    .unwrap();
    let cnn = Model::from_layers(
        InputShape::new(6, 6, 1),
        InputEncoding::Binary { threshold: 100 },
        vec![
            conv(3, 1, 4, Padding::Zero, 2),
            Layer::MaxPool,
            scores(3 * 3 * 4, 5, 6),
        ],
        DecisionRule::Scores,
    )
    .unwrap();
    for (model, what) in [(mlp, "MLP"), (one, "u8 one layer"), (cnn, "CNN")] {
        let scaled = model.with_score_scale(scale.clone()).unwrap();
        let exported = export(&scaled, "bnn", "test").unwrap();
        let text = String::from_utf8_lossy(&exported.bytes);
        assert!(
            text.contains("score_scale"),
            "{what}: no scale in the graph"
        );
        round_trip(&scaled, what);
    }
}
