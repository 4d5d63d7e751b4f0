//! The reader and the matcher on protobuf bytes built by hand: a valid
//! model, and every hostile case the limits exist for.

use bnn_onnx::encode::{self, attr_int, node, tensor, value_info, Msg};
use bnn_onnx::{import_bytes, import_file};

/// ±1 weights from a fixed pattern.
fn pm1(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if (x >> 33) & 1 == 1 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// Sign(x − 127.5) → Gemm(16×8, transB) + bias → Sign → Gemm(3×16): a
/// binary-input MLP over 8 pixels.
fn mlp(bias1: f32, w1: Msg) -> Msg {
    let nodes = [
        node("Sub", "shift", &["x", "half"], &["xs"], &[]),
        node("Sign", "in_sign", &["xs"], &["xb"], &[]),
        node(
            "Gemm",
            "fc1",
            &["xb", "w1", "b1"],
            &["h"],
            &[attr_int("transB", 1)],
        ),
        node("Sign", "act1", &["h"], &["hb"], &[]),
        node(
            "Gemm",
            "fc2",
            &["hb", "w2"],
            &["y"],
            &[attr_int("transB", 1)],
        ),
    ];
    let inits = [
        tensor("half", &[], &[127.5]),
        w1,
        tensor("b1", &[16], &[bias1; 16]),
        tensor("w2", &[3, 16], &pm1(48, 2)),
    ];
    encode::graph(
        &nodes,
        &inits,
        &[value_info("x", &[None, Some(8)])],
        &[value_info("y", &[None, Some(3)])],
    )
}

fn valid() -> Vec<u8> {
    encode::model(8, 13, &mlp(0.5, tensor("w1", &[16, 8], &pm1(128, 1))))
}

/// The same network evaluated directly, in f64.
fn direct_scores(pixels: &[u8]) -> Vec<f64> {
    let (w1, w2) = (pm1(128, 1), pm1(48, 2));
    let x: Vec<f64> = pixels
        .iter()
        .map(|&p| if p as f64 >= 127.5 { 1.0 } else { -1.0 })
        .collect();
    let h: Vec<f64> = (0..16)
        .map(|j| {
            let z: f64 = (0..8).map(|i| f64::from(w1[j * 8 + i]) * x[i]).sum::<f64>() + 0.5;
            if z >= 0.0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    (0..3)
        .map(|c| (0..16).map(|j| f64::from(w2[c * 16 + j]) * h[j]).sum())
        .collect()
}

fn error(bytes: &[u8]) -> String {
    let e = import_bytes(bytes, None)
        .expect_err("must be refused")
        .to_string();
    assert!(
        !e.contains('\n') && e.len() <= 300,
        "not one short line: {e}"
    );
    e
}

#[test]
fn a_valid_model_imports_and_matches_the_graph() {
    let imported = import_bytes(&valid(), None).unwrap();
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_eq!(imported.model.input_threshold(), 128);
    assert_eq!(imported.model.arch(), "d16,d3");
    for seed in 0..50u64 {
        let pixels: Vec<u8> = pm1(8, seed + 10)
            .iter()
            .zip(0..)
            .map(|(s, i)| if *s > 0.0 { 128 + i } else { 127 - i })
            .collect();
        let want = direct_scores(&pixels);
        let got = imported
            .model
            .predict_batch_with(&pixels, Default::default())
            .unwrap();
        for (g, w) in got.scores.iter().zip(&want) {
            assert_eq!(f64::from(*g), *w);
        }
    }
}

#[test]
fn truncated_protobuf_is_refused_at_every_cut() {
    let bytes = valid();
    for cut in 1..bytes.len() {
        let e = import_bytes(&bytes[..cut], None);
        let Err(e) = e else {
            panic!("a model cut at byte {cut} of {} imported", bytes.len())
        };
        assert!(!e.to_string().contains('\n'));
    }
    assert!(error(&bytes[..bytes.len() - 3]).contains("truncated or corrupt protobuf"));
}

#[test]
fn lying_shape_names_the_initializer() {
    let w1 = tensor("w1", &[16, 8], &pm1(127, 1));
    let e = error(&encode::model(8, 13, &mlp(0.5, w1)));
    assert!(e.contains("initializer 'w1': lying shape: dims [16, 8] say 128 elements but the data holds 127 float values"), "{e}");
    // Typed float_data instead of raw_data, one value short too.
    let mut typed = Msg::new().packed_ints(1, &[16, 8]).int(2, 1).str(8, "w1");
    let floats: Vec<u8> = pm1(127, 1).iter().flat_map(|v| v.to_le_bytes()).collect();
    typed = typed.bytes(4, &floats);
    let e = error(&encode::model(8, 13, &mlp(0.5, typed)));
    assert!(e.contains("lying shape") && e.contains("127"), "{e}");
}

#[test]
fn typed_float_data_is_read() {
    let floats: Vec<u8> = pm1(128, 1).iter().flat_map(|v| v.to_le_bytes()).collect();
    let typed = Msg::new()
        .packed_ints(1, &[16, 8])
        .int(2, 1)
        .str(8, "w1")
        .bytes(4, &floats);
    let a = import_bytes(&encode::model(8, 13, &mlp(0.5, typed)), None).unwrap();
    let b = import_bytes(&valid(), None).unwrap();
    assert_eq!(a.model, b.model);
}

#[test]
fn old_opsets_and_ir_versions_are_refused() {
    let g = mlp(0.5, tensor("w1", &[16, 8], &pm1(128, 1)));
    assert!(error(&encode::model(8, 9, &g)).contains("opset 9 is older than 11"));
    assert!(error(&encode::model(6, 13, &g)).contains("IR version 6 is older than 7"));
}

#[test]
fn cycles_and_missing_inputs_name_the_node() {
    let inputs = [value_info("x", &[None, Some(8)])];
    let outputs = [value_info("y", &[None, Some(3)])];
    let cycle = encode::graph(
        &[
            node("Sign", "a", &["x"], &["p"], &[]),
            node("Add", "b", &["p", "y"], &["q"], &[]),
            node("Sign", "c", &["q"], &["y"], &[]),
        ],
        &[],
        &inputs,
        &outputs,
    );
    let e = error(&encode::model(8, 13, &cycle));
    assert!(e.contains("node 'b' ('Add') is on a cycle"), "{e}");
    let missing = encode::graph(
        &[node("Add", "lonely", &["x", "nope"], &["y"], &[])],
        &[],
        &inputs,
        &outputs,
    );
    let e = error(&encode::model(8, 13, &missing));
    assert!(
        e.contains("node 'lonely' ('Add'): input 'nope' is not produced"),
        "{e}"
    );
}

/// The MLP with `w1` stored outside the model, at `location`.
fn external(location: &str) -> Vec<u8> {
    let w1 = Msg::new()
        .packed_ints(1, &[16, 8])
        .int(2, 1)
        .str(8, "w1")
        .msg(13, &Msg::new().str(1, "location").str(2, location))
        .int(14, 1);
    encode::model(8, 13, &mlp(0.5, w1))
}

#[test]
fn external_data_only_from_beside_the_model() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let weights: Vec<u8> = pm1(128, 1).iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("w1.bin"), &weights).unwrap();
    std::fs::write(root.path().join("outside.bin"), &weights).unwrap();
    let good = dir.join("good.onnx");
    std::fs::write(&good, external("w1.bin")).unwrap();
    assert_eq!(
        import_file(&good).unwrap().model,
        import_bytes(&valid(), None).unwrap().model
    );
    // Given as bytes, nothing may be read from disk.
    assert!(error(&external("w1.bin")).contains("external data is refused"));
    let outside = root.path().join("outside.bin");
    for (name, location, why) in [
        ("up.onnx", "../outside.bin", "without '..'"),
        ("abs.onnx", outside.to_str().unwrap(), "without '..'"),
        ("link.onnx", "link.bin", "symbolic link"),
        ("gone.onnx", "missing.bin", "missing.bin"),
    ] {
        std::os::unix::fs::symlink(&outside, dir.join("link.bin")).ok();
        let path = dir.join(name);
        std::fs::write(&path, external(location)).unwrap();
        let e = import_file(&path).expect_err(name).to_string();
        assert!(
            e.contains("initializer 'w1': external data") && e.contains(why),
            "{name}: {e}"
        );
    }
    // A file shorter than the shape is a lying shape, not a short read.
    std::fs::write(dir.join("short.bin"), &weights[..100]).unwrap();
    let path = dir.join("short.onnx");
    std::fs::write(&path, external("short.bin")).unwrap();
    assert!(import_file(&path)
        .unwrap_err()
        .to_string()
        .contains("lying shape"));
}

#[test]
fn a_reachable_tie_is_warned_and_counted() {
    // Bias 2 over 8 ±1 inputs: a dot of −2 is reachable (8 is even), and
    // there Sign(0) = 0 in ONNX.
    let imported = import_bytes(
        &encode::model(8, 13, &mlp(2.0, tensor("w1", &[16, 8], &pm1(128, 1)))),
        None,
    )
    .unwrap();
    assert!(imported.may_tie());
    assert!(
        imported.warnings[0].contains("node 'act1' ('Sign'): 16 of 16 neurons"),
        "{:?}",
        imported.warnings
    );
    let images: Vec<u8> = (0..200u64)
        .flat_map(|s| {
            pm1(8, s)
                .into_iter()
                .map(|v| if v > 0.0 { 200 } else { 10 })
        })
        .collect();
    let counts = imported.count_ties(&images).unwrap();
    // Count directly: dots of −2.
    let w1 = pm1(128, 1);
    let (mut hits, mut images_hit) = (0u64, 0usize);
    for image in images.chunks(8) {
        let x: Vec<f32> = image
            .iter()
            .map(|&p| if p >= 128 { 1.0 } else { -1.0 })
            .collect();
        let n = (0..16)
            .filter(|&j| (0..8).map(|i| w1[j * 8 + i] * x[i]).sum::<f32>() == -2.0)
            .count();
        hits += n as u64;
        images_hit += usize::from(n > 0);
    }
    assert!(hits > 0);
    assert_eq!((counts[0].images, counts[0].values), (images_hit, hits));
    // A half-integer bias can never tie.
    assert!(!import_bytes(&valid(), None).unwrap().may_tie());
}

#[test]
fn refusals_name_node_and_op() {
    let nodes = [
        node("Sign", "s", &["x"], &["xb"], &[]),
        node("Gemm", "fc", &["xb", "w"], &["h"], &[attr_int("transB", 1)]),
        node("Relu", "r", &["h"], &["y"], &[]),
    ];
    let g = encode::graph(
        &nodes,
        &[tensor("w", &[3, 8], &pm1(24, 3))],
        &[value_info("x", &[None, Some(8)])],
        &[value_info("y", &[None, Some(3)])],
    );
    let e = error(&encode::model(8, 13, &g));
    assert!(
        e.starts_with("node 'r' ('Relu'): a float activation between binary layers"),
        "{e}"
    );
}

#[test]
fn weights_an_ulp_off_are_binary_and_a_percent_off_are_not() {
    let mut w = pm1(128, 1);
    w[5] = f32::from_bits(w[5].to_bits() - 1); // |w| one ulp below 1
    let a = import_bytes(
        &encode::model(8, 13, &mlp(0.5, tensor("w1", &[16, 8], &w))),
        None,
    )
    .unwrap();
    assert_eq!(a.model, import_bytes(&valid(), None).unwrap().model);
    w[5] *= 1.01;
    let e = error(&encode::model(8, 13, &mlp(0.5, tensor("w1", &[16, 8], &w))));
    assert!(
        e.contains("node 'fc1' ('Gemm'): weights of output 0 are not ±α"),
        "{e}"
    );
}

/// `mlp`'s network with its scores under a batch norm of per-class
/// `gamma` (then `Mul` by `mul`): the classes are scaled differently.
fn scaled_mlp(gamma: &[f32], mul: &[f32]) -> Vec<u8> {
    let nodes = [
        node("Sub", "shift", &["x", "half"], &["xs"], &[]),
        node("Sign", "in_sign", &["xs"], &["xb"], &[]),
        node(
            "Gemm",
            "fc1",
            &["xb", "w1", "b1"],
            &["h"],
            &[attr_int("transB", 1)],
        ),
        node("Sign", "act1", &["h"], &["hb"], &[]),
        node(
            "Gemm",
            "fc2",
            &["hb", "w2", "b2"],
            &["z"],
            &[attr_int("transB", 1)],
        ),
        node(
            "BatchNormalization",
            "bn",
            &["z", "gamma", "beta", "mean", "var"],
            &["n"],
            &[encode::attr_float("epsilon", 1e-5)],
        ),
        node("Mul", "times", &["n", "mul"], &["y"], &[]),
    ];
    let inits = [
        tensor("half", &[], &[127.5]),
        tensor("w1", &[16, 8], &pm1(128, 1)),
        tensor("b1", &[16], &[0.5; 16]),
        tensor("w2", &[3, 16], &pm1(48, 2)),
        tensor("b2", &[3], &[0.25, -1.0, 2.0]),
        tensor("gamma", &[3], gamma),
        tensor("beta", &[3], &[0.1, -0.3, 0.7]),
        tensor("mean", &[3], &[1.0, -2.0, 0.5]),
        tensor("var", &[3], &[4.0, 0.25, 2.0]),
        tensor("mul", &[3], mul),
    ];
    let g = encode::graph(
        &nodes,
        &inits,
        &[value_info("x", &[None, Some(8)])],
        &[value_info("y", &[None, Some(3)])],
    );
    encode::model(8, 13, &g)
}

/// The scaled network's logits in f64, from `direct_scores`' dots.
fn scaled_logits(pixels: &[u8], gamma: &[f32], mul: &[f32]) -> Vec<f64> {
    let (b2, beta, mean, var) = (
        [0.25, -1.0, 2.0],
        [0.1, -0.3, 0.7],
        [1.0, -2.0, 0.5],
        [4.0f32, 0.25, 2.0],
    );
    direct_scores(pixels)
        .iter()
        .enumerate()
        .map(|(k, &dot)| {
            let s = f64::from(gamma[k]) / (f64::from(var[k]) + f64::from(1e-5f32)).sqrt();
            ((dot + b2[k] - mean[k]) * s + beta[k]) * f64::from(mul[k])
        })
        .collect()
}

#[test]
fn classes_scaled_differently_keep_a_score_scale_per_class() {
    // Class 0 scaled up, class 1 negated (its weights flip), class 2 by 0
    // (a constant score).
    let (gamma, mul) = ([2.0f32, -0.5, 0.0], [1.0f32, 3.0, 1.0]);
    let imported = import_bytes(&scaled_mlp(&gamma, &mul), None).unwrap();
    let model = &imported.model;
    let scale = model.score_scale().expect("a per-class scale");
    assert_eq!(scale[2], 0.0);
    assert!((f64::from(scale[0]) - 2.0 / (4.0f64 + 1e-5).sqrt()).abs() < 1e-6);
    assert!((f64::from(scale[1]) - 1.5 / (0.25f64 + 1e-5).sqrt()).abs() < 1e-6);
    assert_eq!(imported.score_scale, 1.0);
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.contains("score scale per class")),
        "{:?}",
        imported.notes
    );
    let mut differ = 0;
    for seed in 0..200u64 {
        let pixels: Vec<u8> = pm1(8, seed + 10)
            .iter()
            .zip(0..)
            .map(|(s, i)| if *s > 0.0 { 128 + i } else { 127 - i })
            .collect();
        let want = scaled_logits(&pixels, &gamma, &mul);
        let got = model
            .predict_batch_with(&pixels, Default::default())
            .unwrap();
        for (g, w) in got.scores.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{g} vs {w}"
            );
        }
        let best = (0..3).fold(0, |b, k| if want[k] > want[b] { k } else { b });
        assert_eq!(got.classes[0], best, "seed {seed}: {want:?}");
        // The plain dot + bias scores would pick other classes.
        let plain: Vec<f64> = direct_scores(&pixels);
        let plain_best = (0..3).fold(0, |b, k| if plain[k] > plain[b] { k } else { b });
        differ += usize::from(plain_best != best);
    }
    assert!(differ > 0, "the scale never changed a class");
    // Saved and loaded, the model is the same (its SCAL section).
    let bytes = bnn_core::format::to_bytes(model, "");
    let back = bnn_core::format::from_bytes(&bytes, std::path::Path::new("m.bnn")).unwrap();
    assert_eq!(&back.model, model);
    assert!(back.sections.iter().any(|s| s.tag == "SCAL"));
    // One scale for every class still folds into the bias: no section.
    assert_eq!(
        import_bytes(&valid(), None).unwrap().model.score_scale(),
        None
    );
}
