//! The C export compiled with `cc -std=c99 -O2 -Wall -Wextra -Werror` and
//! run: classes and score bits equal the engine's `predict_batch`, for the
//! shipped model on all 10,000 MNIST test images (64- and 32-bit words) and
//! for random networks of every shape the engine allows (depth 1 to 4,
//! widths off the word size, flipped thresholds, both rules, the portable
//! popcount), and for convolutional models (random shapes, and the
//! `cnn-small` shape on all 10,000 MNIST test images). The constant data
//! and the static RAM the export reports are what the compiler emits.

mod common;

use std::path::Path;

use bnn_core::{DecisionRule, Model, Predictions, RunOptions};
use bnn_export::{c::CSizes, Format, Options, Sizes, WordBits};
use bnn_testkit::models::{random_model, random_pixels, rng};
use bnn_testkit::need::{CC, MNIST, NM};
use common::run;

const STRICT: &[&str] = &["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"];

fn export_c(model: &Model, name: &str, word: WordBits, dir: &Path) -> CSizes {
    let options = Options {
        format: Format::C,
        name: name.into(),
        word,
        force: false,
        inputs: Vec::new(),
        parallel: 1,
    };
    let export = bnn_export::export(model, "test model", &options, None, dir).unwrap();
    match export.sizes {
        Sizes::C(sizes) => sizes,
        other => panic!("C export reported {other:?}"),
    }
}

/// Compiles the export with the driver; `extra` adds flags.
fn build(dir: &Path, name: &str, extra: &[&str]) {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/driver.c");
    let upper = name.to_ascii_uppercase();
    let defines = [
        format!("-DDRIVER_HEADER=\"{name}.h\""),
        format!("-DDRIVER_PREDICT={name}_predict"),
        format!("-DDRIVER_INPUTS={upper}_INPUTS"),
        format!("-DDRIVER_CLASSES={upper}_CLASSES"),
    ];
    let source = format!("{name}.c");
    let mut args: Vec<&str> = STRICT.to_vec();
    args.extend_from_slice(extra);
    args.extend(defines.iter().map(String::as_str));
    args.extend(["-I.", driver.to_str().unwrap(), &source, "-o", "driver"]);
    let (_, stderr) = run(dir, "cc", &args);
    assert!(stderr.is_empty(), "compiler output: {stderr}");
}

/// The engine's answers for `pixels`, checked first against the naive
/// oracle (score bits and classes), so that the C export is compared with
/// answers known to be right.
fn engine_checked(model: &Model, pixels: &[u8]) -> Predictions {
    let engine = model
        .predict_batch_with(pixels, RunOptions::default())
        .unwrap();
    let naive = bnn_testkit::oracle::binary_scores(model, pixels);
    let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&engine.scores), bits(&naive), "engine vs naive scores");
    let classes = bnn_testkit::oracle::classes(model.rule(), &naive, model.num_classes());
    assert_eq!(engine.classes, classes, "engine vs naive classes");
    engine
}

/// Runs the driver on `pixels`: per image, the class it printed (-1 when
/// `predict` without `scores_out` chose another) and the score bits.
fn run_driver(dir: &Path, model: &Model, pixels: &[u8]) -> Vec<(i64, Vec<u32>)> {
    let n = model.input_len();
    let images = bnn_data::idx::Images {
        count: pixels.len() / n,
        rows: 1,
        cols: n,
        pixels: pixels.to_vec(),
    };
    bnn_data::idx::write_images(&dir.join("images.idx"), &images).unwrap();
    let (stdout, _) = run(dir, "./driver", &["images.idx"]);
    let lines: Vec<(i64, Vec<u32>)> = stdout
        .lines()
        .map(|line| {
            let mut fields = line.split(' ');
            let class: i64 = fields.next().unwrap().parse().unwrap();
            let bits = fields
                .map(|f| u32::from_str_radix(f, 16).unwrap())
                .collect();
            (class, bits)
        })
        .collect();
    assert_eq!(lines.len(), images.count, "one line per image");
    lines
}

/// Runs the driver on `pixels` and compares every class and score bit with
/// the engine's (oracle-checked) answers.
fn check_against_engine(dir: &Path, model: &Model, pixels: &[u8], engine: &Predictions) {
    for (i, (class, bits)) in run_driver(dir, model, pixels).into_iter().enumerate() {
        assert_ne!(class, -1, "image {i}: class differs without scores_out");
        assert_eq!(class as usize, engine.classes[i], "image {i}: class");
        let expected: Vec<u32> = engine.scores_of(i).iter().map(|s| s.to_bits()).collect();
        assert_eq!(bits, expected, "image {i}: score bits");
    }
}

/// Sums the sizes of the export's constant tables in an object file built
/// without optimisation (with it, a tiny table may be folded into the code).
fn const_bytes_in_object(dir: &Path, name: &str) -> usize {
    let listing = object_symbols(dir, name);
    let tables = ["_w", "_limit", "_cut", "_flip", "_bias", "_scale"].map(|t| format!("{name}{t}"));
    listing
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (size, kind, symbol) = (f.get(1)?, f.get(2)?, f.get(3)?);
            let table = tables.iter().any(|t| {
                symbol.strip_prefix(t.as_str()).is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
                })
            });
            assert!(
                !table || kind.eq_ignore_ascii_case("r"),
                "{symbol} is not read-only data: {line}"
            );
            table.then(|| usize::from_str_radix(size, 16).unwrap())
        })
        .sum()
}

/// `nm -S` of the export compiled without optimisation.
fn object_symbols(dir: &Path, name: &str) -> String {
    run(
        dir,
        "cc",
        &[STRICT, &["-O0", "-c", &format!("{name}.c"), "-o", "net.o"]].concat(),
    );
    run(dir, "nm", &["-S", "--defined-only", "net.o"]).0
}

/// Sums the sizes of every zero-initialised (`.bss`) object: the static
/// RAM the export claims.
fn static_bytes_in_object(dir: &Path, name: &str) -> usize {
    object_symbols(dir, name)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (size, kind) = (f.get(1)?, f.get(2)?);
            kind.eq_ignore_ascii_case("b")
                .then(|| usize::from_str_radix(size, 16).unwrap())
        })
        .sum()
}

/// The engine's answers for a CNN or a model with a score scale (which the
/// naive oracle does not scale), checked first against the float reference
/// on the first `checked` images (score bits and classes).
fn cnn_engine_checked(model: &Model, pixels: &[u8], checked: usize) -> Predictions {
    let engine = model
        .predict_batch_with(pixels, RunOptions::default())
        .unwrap();
    let n = model.input_len();
    let count = checked.min(pixels.len() / n);
    let view = ndarray::ArrayView2::from_shape((count, n), &pixels[..count * n]).unwrap();
    let reference = bnn_core::Reference::new(model);
    let scores = reference.scores(view);
    let k = model.num_classes();
    let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert_eq!(
        bits(&engine.scores[..count * k]),
        bits(scores.as_slice().unwrap()),
        "engine vs reference scores"
    );
    assert_eq!(
        engine.classes[..count],
        reference.classes(view)[..],
        "engine vs reference classes"
    );
    engine
}

/// Exports a CNN, checks the sizes it reports against the object file,
/// compiles it and compares it with the engine on `pixels`.
fn check_cnn(
    model: &Model,
    word: WordBits,
    extra: &[&str],
    pixels: &[u8],
    engine: &Predictions,
) -> CSizes {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cnn");
    let sizes = export_c(model, "net", word, &dir);
    assert_eq!(
        const_bytes_in_object(&dir, "net"),
        sizes.total(),
        "const data"
    );
    assert_eq!(
        static_bytes_in_object(&dir, "net"),
        sizes.static_ram,
        "static RAM"
    );
    let header = std::fs::read_to_string(dir.join("net.h")).unwrap();
    for fact in [
        format!("#define NET_CONST_BYTES {}", sizes.total()),
        format!("#define NET_STATIC_BYTES {}", sizes.static_ram),
        format!("Static RAM for activations: {} bytes", sizes.static_ram),
        format!("#define NET_STACK_BYTES {}", sizes.stack),
    ] {
        assert!(header.contains(&fact), "header lacks {fact}:\n{header}");
    }
    let u8_input = model.input_encoding().is_u8();
    assert_eq!(
        header.contains("#define NET_INPUT_U8 1"),
        u8_input,
        "{header}"
    );
    assert_eq!(header.contains("INPUT_THRESHOLD"), !u8_input, "{header}");
    let (h, w, c) = {
        let s = model.input_shape();
        (s.height, s.width, s.channels)
    };
    assert!(header.contains(&format!("a {h}x{w}x{c} image")), "{header}");
    build(&dir, "net", extra);
    check_against_engine(&dir, model, pixels, engine);
    sizes
}

#[test]
fn shipped_model_matches_engine_on_mnist_test_set() {
    bnn_testkit::need!(CC, NM, MNIST);
    let model = bnn_testkit::paths::load_seed();
    assert_eq!(model.shape(), vec![784, 512, 10]);
    let images = bnn_testkit::paths::mnist_test_images();
    assert_eq!(images.count, 10_000);
    let engine = engine_checked(&model, &images.pixels);
    for (word, expected_const) in [(WordBits::W64, 54_952), (WordBits::W32, 52_904)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let sizes = export_c(&model, "bnn", word, &dir);
        // 512×13 and 10×8 words of 8 bytes (or 512×25 and 10×16 of 4), 512
        // int16 limits, 10 float biases, no flip bits.
        assert_eq!(sizes.total(), expected_const, "{word:?}");
        assert_eq!(const_bytes_in_object(&dir, "bnn"), sizes.total());
        build(&dir, "bnn", &[]);
        check_against_engine(&dir, &model, &images.pixels, &engine);
    }
}

#[test]
fn random_networks_match_engine() {
    struct Case {
        input_len: usize,
        widths: &'static [usize],
        rule: DecisionRule,
        threshold: u8,
        word: WordBits,
        extra: &'static [&'static str],
    }
    use DecisionRule::{Scores, Seed};
    use WordBits::{W32, W64};
    bnn_testkit::need!(CC, NM);
    let portable: &[&str] = &["-DNET_PORTABLE_POPCOUNT"];
    let cases = [
        Case {
            input_len: 784,
            widths: &[10],
            rule: Scores,
            threshold: 128,
            word: W64,
            extra: &[],
        },
        Case {
            input_len: 100,
            widths: &[65, 3],
            rule: Seed,
            threshold: 1,
            word: W64,
            extra: &[],
        },
        Case {
            input_len: 100,
            widths: &[65, 3],
            rule: Seed,
            threshold: 1,
            word: W32,
            extra: portable,
        },
        Case {
            input_len: 1,
            widths: &[1, 1],
            rule: Scores,
            threshold: 0,
            word: W64,
            extra: &[],
        },
        Case {
            input_len: 63,
            widths: &[129, 31, 7],
            rule: Scores,
            threshold: 255,
            word: W32,
            extra: &[],
        },
        Case {
            input_len: 300,
            widths: &[64, 128, 33, 10],
            rule: Seed,
            threshold: 90,
            word: W64,
            extra: portable,
        },
        Case {
            input_len: 130,
            widths: &[200, 12],
            rule: Scores,
            threshold: 128,
            word: W32,
            extra: &["-O0"],
        },
        Case {
            input_len: 784,
            widths: &[1024, 1024, 10],
            rule: Scores,
            threshold: 128,
            word: W64,
            extra: &[],
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let shape = [&[c.input_len][..], c.widths].concat();
        let model = random_model(&mut rng(i as u64 + 1), &shape, c.rule, c.threshold);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let sizes = export_c(&model, "net", c.word, &dir);
        assert_eq!(
            const_bytes_in_object(&dir, "net"),
            sizes.total(),
            "case {i}"
        );
        build(&dir, "net", c.extra);
        let pixels = random_pixels(&mut rng(100 + i as u64), 300, c.input_len);
        let engine = engine_checked(&model, &pixels);
        check_against_engine(&dir, &model, &pixels, &engine);
    }
}

/// u8-input models: the first layer's integer dot products over the pixel
/// values, exact on all 10,000 MNIST test images with both word sizes, and
/// on random shapes (one-layer, deep, widths off the word size, the portable
/// popcount) with dense random pixels.
#[test]
fn u8_models_match_engine() {
    bnn_testkit::need!(CC, NM, MNIST);
    use bnn_testkit::models::{random_u8_model, rng};
    let images = bnn_testkit::paths::mnist_test_images();
    // MNIST digits' dots spread over a few thousand.
    let model = random_u8_model(&mut rng(21), &[784, 64, 10], DecisionRule::Scores, 3000);
    let engine = engine_checked(&model, &images.pixels);
    for word in [WordBits::W64, WordBits::W32] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("u8");
        let sizes = export_c(&model, "u8net", word, &dir);
        // 64 rows of 784 bits and 10 of 64, 64 int32 cuts, flip bits, biases.
        let words = match word {
            WordBits::W64 => 64 * 13 + 10,
            WordBits::W32 => 64 * 25 + 10 * 2,
        };
        assert_eq!(sizes.weights, words * word.bytes());
        assert_eq!(sizes.limits, 64 * 4);
        assert_eq!(const_bytes_in_object(&dir, "u8net"), sizes.total());
        let header = std::fs::read_to_string(dir.join("u8net.h")).unwrap();
        assert!(header.contains("#define U8NET_INPUT_U8 1"), "{header}");
        assert!(!header.contains("INPUT_THRESHOLD"), "{header}");
        build(&dir, "u8net", &[]);
        check_against_engine(&dir, &model, &images.pixels, &engine);
    }
    /// Inputs, widths, rule, word size, extra compiler flags.
    type U8Case = (
        usize,
        &'static [usize],
        DecisionRule,
        WordBits,
        &'static [&'static str],
    );
    let cases: [U8Case; 4] = [
        (784, &[10], DecisionRule::Seed, WordBits::W64, &[]),
        (9, &[3], DecisionRule::Scores, WordBits::W32, &[]),
        (
            100,
            &[65, 33, 3],
            DecisionRule::Seed,
            WordBits::W32,
            &["-DNET_PORTABLE_POPCOUNT"],
        ),
        (
            130,
            &[129, 7],
            DecisionRule::Scores,
            WordBits::W64,
            &["-O0"],
        ),
    ];
    for (i, (n, widths, rule, word, extra)) in cases.into_iter().enumerate() {
        let shape = [&[n][..], widths].concat();
        let spread = bnn_testkit::models::u8_spread(n);
        let model = random_u8_model(&mut rng(30 + i as u64), &shape, rule, spread);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let sizes = export_c(&model, "net", word, &dir);
        assert_eq!(
            const_bytes_in_object(&dir, "net"),
            sizes.total(),
            "case {i}"
        );
        build(&dir, "net", extra);
        let pixels = random_pixels(&mut rng(200 + i as u64), 300, n);
        let engine = engine_checked(&model, &pixels);
        check_against_engine(&dir, &model, &pixels, &engine);
    }
}

/// The header needs nothing but `<stdint.h>`; the source includes nothing
/// else; the names follow `--name`.
#[test]
fn files_are_self_contained_and_named() {
    bnn_testkit::need!(CC, NM);
    let model = random_model(&mut rng(9), &[50, 20, 4], DecisionRule::Seed, 128);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    export_c(&model, "digits", WordBits::W64, &dir);
    assert_eq!(
        bnn_testkit::files::listing(&dir),
        ["digits.c", "digits.h", "manifest.txt"]
    );
    let header = std::fs::read_to_string(dir.join("digits.h")).unwrap();
    let source = std::fs::read_to_string(dir.join("digits.c")).unwrap();
    let includes = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.trim_start().starts_with("#include"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    assert_eq!(includes(&header), ["#include <stdint.h>"]);
    assert_eq!(includes(&source), ["#include \"digits.h\""]);
    assert!(header.contains(
        "int digits_predict(const uint8_t pixels[DIGITS_INPUTS], float scores_out[DIGITS_CLASSES]);"
    ));
    for forbidden in [
        "malloc", "free(", "size_t", "NULL", "<stdlib", "<string", "<math",
    ] {
        assert!(!source.contains(forbidden), "source uses {forbidden}");
    }
    // The header compiles on its own.
    std::fs::write(
        dir.join("only.c"),
        "#include \"digits.h\"\nint main(void) { return 0; }\n",
    )
    .unwrap();
    run(
        &dir,
        "cc",
        &[STRICT, &["-pedantic", "only.c", "-o", "only"]].concat(),
    );
    // The portable popcount is what the macro selects.
    run(
        &dir,
        "cc",
        &[
            STRICT,
            &[
                "-O0",
                "-DDIGITS_PORTABLE_POPCOUNT",
                "-c",
                "digits.c",
                "-o",
                "p.o",
            ],
        ]
        .concat(),
    );
    let (symbols, _) = run(&dir, "nm", &["p.o"]);
    assert!(symbols.contains("digits_popcount"), "{symbols}");
    run(
        &dir,
        "cc",
        &[STRICT, &["-O0", "-c", "digits.c", "-o", "b.o"]].concat(),
    );
    let (symbols, _) = run(&dir, "nm", &["b.o"]);
    assert!(!symbols.contains("digits_popcount"), "{symbols}");
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    assert!(manifest.contains("const data (flash): "), "{manifest}");
}

/// Convolutional models: random shapes (odd sizes, k in {1, 3, 5}, both
/// paddings, with and without pooling, 1 to 4 convolutions, channels off the
/// word size, flipped thresholds, binary and u8 input, both rules, both word
/// sizes, the portable popcount), each exact against the engine, which is
/// checked against the float reference.
#[test]
fn cnn_models_match_engine() {
    use bnn_core::{InputEncoding, InputShape, Padding};
    use bnn_testkit::models::{random_cnn, ConvPlan};
    use DecisionRule::{Scores, Seed};
    use WordBits::{W32, W64};
    bnn_testkit::need!(CC, NM);
    struct Case {
        input: InputShape,
        encoding: InputEncoding,
        convs: &'static [(usize, usize, bool)],
        padding: Padding,
        dense: &'static [usize],
        rule: DecisionRule,
        word: WordBits,
        extra: &'static [&'static str],
    }
    let binary = |threshold| InputEncoding::Binary { threshold };
    let portable: &[&str] = &["-DNET_PORTABLE_POPCOUNT"];
    let cases = [
        Case {
            input: InputShape::new(7, 9, 1),
            encoding: InputEncoding::U8,
            convs: &[(3, 5, true)],
            padding: Padding::Same,
            dense: &[10],
            rule: Scores,
            word: W64,
            extra: &[],
        },
        Case {
            input: InputShape::new(9, 11, 3),
            encoding: binary(100),
            convs: &[(5, 33, false), (1, 7, true)],
            padding: Padding::Valid,
            dense: &[65, 4],
            rule: Seed,
            word: W32,
            extra: portable,
        },
        Case {
            input: InputShape::new(13, 13, 2),
            encoding: InputEncoding::U8,
            convs: &[(1, 70, true), (3, 65, true), (5, 3, false)],
            padding: Padding::Same,
            dense: &[3],
            rule: Scores,
            word: W32,
            extra: &["-O0"],
        },
        Case {
            input: InputShape::new(5, 5, 130),
            encoding: binary(1),
            convs: &[(3, 64, true)],
            padding: Padding::Valid,
            dense: &[17, 2],
            rule: Scores,
            word: W64,
            extra: &[],
        },
        Case {
            input: InputShape::new(6, 6, 1),
            encoding: InputEncoding::U8,
            convs: &[(3, 1, false)],
            padding: Padding::Valid,
            dense: &[2],
            rule: Seed,
            word: W64,
            extra: portable,
        },
        Case {
            input: InputShape::new(16, 15, 1),
            encoding: binary(128),
            convs: &[(3, 8, true), (3, 16, false), (3, 31, true), (1, 64, false)],
            padding: Padding::Same,
            dense: &[33, 10],
            rule: Scores,
            word: W32,
            extra: &[],
        },
        Case {
            input: InputShape::new(11, 7, 4),
            encoding: InputEncoding::U8,
            convs: &[(5, 12, true), (3, 9, false)],
            padding: Padding::Same,
            dense: &[5],
            rule: Scores,
            word: W64,
            extra: &[],
        },
    ];
    let mut flipped = 0;
    for (i, c) in cases.iter().enumerate() {
        let convs: Vec<ConvPlan> = c
            .convs
            .iter()
            .map(|&(k, channels, pool)| ConvPlan { k, channels, pool })
            .collect();
        let model = random_cnn(
            &mut rng(300 + i as u64),
            c.input,
            c.encoding,
            &convs,
            c.padding,
            c.dense,
            c.rule,
        );
        flipped += model
            .convs()
            .iter()
            .flat_map(|s| s.conv().thresholds())
            .filter(|t| t.flip)
            .count();
        let pixels = random_pixels(&mut rng(400 + i as u64), 200, model.input_len());
        let engine = cnn_engine_checked(&model, &pixels, 200);
        let sizes = check_cnn(&model, c.word, c.extra, &pixels, &engine);
        assert!(sizes.static_ram > 0, "case {i}");
    }
    assert!(flipped > 0, "some convolution thresholds are flipped");
}

/// The `cnn-small` shape (`c3x32,p2,c3x64,p2,d256,d10`, u8 input, "same"
/// padding) with random weights, and every shipped `weights/mnist-cnn*.bnn`,
/// on all 10,000 MNIST test images with both word sizes; the sizes the
/// export reports for `cnn-small`, counted by hand.
#[test]
fn mnist_cnns_match_engine_on_the_test_set() {
    use bnn_core::{InputEncoding, Padding};
    use bnn_testkit::models::{random_mnist_cnn, CNN_SMALL};
    bnn_testkit::need!(CC, NM, MNIST);
    let images = bnn_testkit::paths::mnist_test_images();
    assert_eq!(images.count, 10_000);
    let model = random_mnist_cnn(
        &mut rng(77),
        InputEncoding::U8,
        &CNN_SMALL,
        Padding::Same,
        &[256, 10],
    );
    assert_eq!(model.arch(), "c3x32,p2,c3x64,p2,d256,d10");
    let engine = cnn_engine_checked(&model, &images.pixels, 300);
    for word in [WordBits::W64, WordBits::W32] {
        let sizes = check_cnn(&model, word, &[], &images.pixels, &engine);
        // Filters of 9 and 288 bits, then 256 rows of 3136 bits and 10 of
        // 256: 32·1 + 64·5 + 256·49 + 10·4 64-bit words, or 32·1 + 64·9 +
        // 256·98 + 10·8 32-bit ones.
        let words = match word {
            WordBits::W64 => 32 + 64 * 5 + 256 * 49 + 10 * 4,
            WordBits::W32 => 32 + 64 * 9 + 256 * 98 + 10 * 8,
        };
        assert_eq!(sizes.weights, words * word.bytes());
        // 32 int32 cuts, 64 + 256 int16 limits; 10 float biases.
        assert_eq!(sizes.limits, 32 * 4 + (64 + 256) * 2);
        assert_eq!(sizes.biases, 40);
        // Buffer A: the 14x14x32 pooled map, then d256's 256 bits; B: the
        // 7x7x64 map; the window row of 288 bits.
        let (a, b, window) = match word {
            WordBits::W64 => (98, 49, 5),
            WordBits::W32 => (196, 98, 9),
        };
        assert_eq!(
            sizes.static_ram,
            (a + b + window) * word.bytes(),
            "{word:?}"
        );
        eprintln!(
            "cnn-small, {}-bit words: const data {} bytes (weights {}, thresholds {}, flip bits {}, biases {}), static RAM {} bytes, stack {} bytes",
            word.bits(),
            sizes.total(),
            sizes.weights,
            sizes.limits,
            sizes.flips,
            sizes.biases,
            sizes.static_ram,
            sizes.stack
        );
    }
    let weights = bnn_testkit::paths::root().join("weights");
    let mut shipped: Vec<_> = std::fs::read_dir(&weights)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("mnist-cnn") && name.ends_with(".bnn")
        })
        .collect();
    shipped.sort();
    for path in shipped {
        eprintln!("shipped model {}", path.display());
        let model = bnn_core::format::load(&path).unwrap().model;
        let engine = cnn_engine_checked(&model, &images.pixels, 300);
        for word in [WordBits::W64, WordBits::W32] {
            check_cnn(&model, word, &[], &images.pixels, &engine);
        }
    }
}

/// A model with a stored feature encoding and class names exports an
/// encode function and a name table: C encodes raw rows to the engine's
/// bytes, and its classes and names are the engine's, for both encodings.
#[test]
fn feature_encodings_and_class_names_match_engine() {
    bnn_testkit::need!(CC);
    let train: Vec<f32> = (0..7 * 80)
        .map(|i| ((i * 7919) % 1000) as f32 * 0.37 - 150.0)
        .collect();
    let names: Vec<String> = ["bénin", "mal\"ign\\ant??/", "x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cases = [
        (
            random_model(&mut rng(41), &[7, 24, 3], DecisionRule::Scores, 128),
            bnn_core::FeatureEncoding::fit_min_max(&train, 7).unwrap(),
        ),
        (
            random_model(&mut rng(42), &[7 * 5, 24, 3], DecisionRule::Seed, 128),
            bnn_core::FeatureEncoding::fit_thermometer(&train, 7, 5).unwrap(),
        ),
    ];
    for (i, (model, encoding)) in cases.into_iter().enumerate() {
        let model = model
            .with_feature_encoding(encoding.clone())
            .unwrap()
            .with_class_names(names.clone())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let name = format!("feat{i}");
        export_c(&model, &name, WordBits::W64, dir.path());
        let upper = name.to_ascii_uppercase();
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/driver_features.c");
        let defines = [
            format!("-DDRIVER_HEADER=\"{name}.h\""),
            format!("-DDRIVER_ENCODE={name}_encode"),
            format!("-DDRIVER_PREDICT={name}_predict"),
            format!("-DDRIVER_NAMES={name}_class_names"),
            format!("-DDRIVER_FEATURES={upper}_FEATURES"),
            format!("-DDRIVER_INPUTS={upper}_INPUTS"),
        ];
        let source = format!("{name}.c");
        let mut args: Vec<&str> = STRICT.to_vec();
        args.extend(defines.iter().map(String::as_str));
        args.extend(["-I.", driver.to_str().unwrap(), &source, "-o", "driver"]);
        let (_, stderr) = run(dir.path(), "cc", &args);
        assert!(stderr.is_empty(), "compiler output: {stderr}");
        // Rows around every constant: below, on, between and above the
        // cuts and bounds, halves that round, and far outside.
        let mut rows: Vec<f32> = (0..7 * 300)
            .map(|i| ((i * 104_729) % 4000) as f32 * 0.1 - 200.0)
            .collect();
        rows.extend_from_slice(&train[..7 * 10]);
        let mut bytes = Vec::new();
        for v in &rows {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(dir.path().join("rows.f32"), bytes).unwrap();
        let (stdout, _) = run(dir.path(), "./driver", &["rows.f32"]);
        let mut encoded = Vec::new();
        encoding.encode(&rows, &mut encoded).unwrap();
        let classes = model.predict_features_batch(&rows).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), rows.len() / 7);
        let per = model.input_len();
        for (r, line) in lines.iter().enumerate() {
            let hex: String = encoded[r * per..(r + 1) * per]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let want = format!("{hex} {} {}", classes[r], names[classes[r]]);
            assert_eq!(*line, want, "model {i}, row {r}");
        }
    }
}

/// FINN's CNV, the `cnv` recipe's shape (`32x32x3` u8 input, three
/// channels into a pixel convolution, valid padding down to 1×1×256, then
/// `d512,d512,d10`), with random weights: the C export takes it as it is
/// and answers as the engine does, with both word sizes; its weights are
/// the words counted by hand.
#[test]
fn cnv_shape_matches_engine() {
    use bnn_core::{InputEncoding, InputShape, Padding};
    use bnn_testkit::models::{random_cnn, ConvPlan};
    bnn_testkit::need!(CC, NM);
    let plan = |k, channels, pool| ConvPlan { k, channels, pool };
    let model = random_cnn(
        &mut rng(500),
        InputShape::new(32, 32, 3),
        InputEncoding::U8,
        &[
            plan(3, 64, false),
            plan(3, 64, true),
            plan(3, 128, false),
            plan(3, 128, true),
            plan(3, 256, false),
            plan(3, 256, false),
        ],
        Padding::Valid,
        &[512, 512, 10],
        DecisionRule::Scores,
    );
    assert_eq!(
        model.arch(),
        "c3x64,c3x64,p2,c3x128,c3x128,p2,c3x256,c3x256,d512,d512,d10"
    );
    let pixels = random_pixels(&mut rng(501), 60, model.input_len());
    let engine = cnn_engine_checked(&model, &pixels, 20);
    for word in [WordBits::W64, WordBits::W32] {
        let sizes = check_cnn(&model, word, &[], &pixels, &engine);
        // Windows of 27, 576, 576, 1152, 1152 and 2304 bits for 64, 64,
        // 128, 128, 256 and 256 filters, then 512 rows of 256 bits, 512 of
        // 512 and 10 of 512.
        let bits: [(usize, usize); 9] = [
            (64, 27),
            (64, 576),
            (128, 576),
            (128, 1152),
            (256, 1152),
            (256, 2304),
            (512, 256),
            (512, 512),
            (10, 512),
        ];
        let words: usize = bits
            .iter()
            .map(|&(rows, n)| rows * n.div_ceil(word.bits()))
            .sum();
        assert_eq!(sizes.weights, words * word.bytes(), "{word:?}");
    }
}

/// Whether this CPU has a fused multiply-add that `-march=native` lets the
/// compiler use.
fn cpu_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    let fma = std::arch::is_x86_feature_detected!("fma");
    #[cfg(target_arch = "aarch64")]
    let fma = true;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let fma = false;
    fma
}

/// Models with a per-class score scale (what importing a PyTorch Linear
/// followed by BatchNorm1d gives): binary MLPs, a one-layer u8 model whose
/// pixel layer scores, a deep u8 model and CNNs, with scales of 0, 1 and
/// fractional ones. Classes and score bits equal the engine's (checked
/// against the float reference) under the strict flags, and under `-O3
/// -march=native -ffp-contract=fast`, which asks GCC to fuse every multiply
/// and add it can. Where the CPU has FMA, the same source with the product's
/// `volatile` taken away does get fused under those flags and misses some
/// score bits: the volatile store is what keeps the export exact.
#[test]
fn scaled_models_match_engine_whatever_the_contraction_flags() {
    use bnn_core::{InputEncoding, InputShape, Padding};
    use bnn_testkit::models::{
        random_cnn, random_score_scale, random_u8_model, u8_spread, ConvPlan,
    };
    use DecisionRule::{Scores, Seed};
    bnn_testkit::need!(CC, NM);
    let fused: &[&str] = &["-O3", "-march=native", "-ffp-contract=fast"];
    let cnn = |seed, input, encoding, convs: &[ConvPlan], dense: &[usize], rule| {
        random_cnn(
            &mut rng(seed),
            input,
            encoding,
            convs,
            Padding::Same,
            dense,
            rule,
        )
    };
    let models: Vec<(Model, WordBits, &[&str])> = vec![
        (
            random_model(&mut rng(51), &[300, 65, 10], Scores, 128),
            WordBits::W64,
            &[],
        ),
        (
            random_model(&mut rng(52), &[100, 7], Seed, 90),
            WordBits::W32,
            &["-DNET_PORTABLE_POPCOUNT"],
        ),
        (
            random_u8_model(&mut rng(53), &[784, 10], Scores, u8_spread(784)),
            WordBits::W32,
            &[],
        ),
        (
            random_u8_model(&mut rng(54), &[130, 33, 5], Seed, u8_spread(130)),
            WordBits::W64,
            &[],
        ),
        (
            cnn(
                55,
                InputShape::new(7, 9, 1),
                InputEncoding::U8,
                &[ConvPlan {
                    k: 3,
                    channels: 5,
                    pool: true,
                }],
                &[10],
                Scores,
            ),
            WordBits::W64,
            &[],
        ),
        (
            cnn(
                56,
                InputShape::new(8, 8, 4),
                InputEncoding::Binary { threshold: 128 },
                &[ConvPlan {
                    k: 3,
                    channels: 9,
                    pool: false,
                }],
                &[33, 6],
                Scores,
            ),
            WordBits::W32,
            &[],
        ),
    ];
    let fma = cpu_has_fma();
    let mut fused_misses = 0;
    for (i, (model, word, extra)) in models.into_iter().enumerate() {
        let scale = random_score_scale(&mut rng(60 + i as u64), model.num_classes());
        let model = model.with_score_scale(scale.clone()).unwrap();
        let pixels = random_pixels(&mut rng(70 + i as u64), 300, model.input_len());
        let engine = cnn_engine_checked(&model, &pixels, 300);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let sizes = export_c(&model, "net", word, &dir);
        assert_eq!(sizes.scales, 4 * scale.len(), "model {i}");
        assert_eq!(
            const_bytes_in_object(&dir, "net"),
            sizes.total(),
            "model {i}"
        );
        let header = std::fs::read_to_string(dir.join("net.h")).unwrap();
        assert!(header.contains("(float)dot * scale + bias"), "{header}");
        build(&dir, "net", extra);
        check_against_engine(&dir, &model, &pixels, &engine);
        build(&dir, "net", &[extra, fused].concat());
        check_against_engine(&dir, &model, &pixels, &engine);
        if !fma {
            continue;
        }
        let source = std::fs::read_to_string(dir.join("net.c")).unwrap();
        let guard = "    volatile float product;\n";
        assert_eq!(source.matches(guard).count(), 1, "model {i}");
        std::fs::write(
            dir.join("net.c"),
            source.replace(guard, "    float product;\n"),
        )
        .unwrap();
        build(&dir, "net", &[extra, fused].concat());
        for (image, (_, bits)) in run_driver(&dir, &model, &pixels).into_iter().enumerate() {
            let expected = engine.scores_of(image).iter().map(|s| s.to_bits());
            fused_misses += bits.iter().zip(expected).filter(|&(&b, e)| b != e).count();
        }
    }
    if fma {
        assert!(
            fused_misses > 0,
            "without the volatile product, -ffp-contract=fast changed no score: the test no longer shows the guard matters"
        );
    } else {
        eprintln!("this CPU has no FMA: the unguarded control build was skipped");
    }
}
