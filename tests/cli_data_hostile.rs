//! The data readers under hostile input, through the real `bnn`: headers
//! nested too deep for the stack, training sizes beyond the machine's
//! memory, inputs of the right pixel count but the wrong shape, trailing
//! data, empty files, and the messages that used to name the wrong thing.
//! Every case checks the error contract (one line naming the file and the
//! problem, at most 300 characters, no panic or abort).

mod common;

use std::path::{Path, PathBuf};

use bnn_core::conv::Padding;
use bnn_core::{DecisionRule, InputEncoding, InputShape};
use bnn_testkit::models::{random_cnn, random_mnist_cnn, rng, CNN_SMALL};
use bnn_testkit::npz::{npy, zip_bytes, CompressionMethod};
use common::{arg, gzip, idx_bytes, random_images, run, seed_model, Run};

const IMAGES: u32 = 0x803;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `bnn classify MODEL INPUTS...`.
fn classify(model: &Path, inputs: &[&Path]) -> Run {
    let mut args = vec!["classify".to_string(), arg(model)];
    args.extend(inputs.iter().map(|p| arg(p)));
    run(args)
}

/// Fails unless the run's one error line is at most 300 characters.
fn short(run: &Run) -> &Run {
    let line = run.stderr.trim_end();
    assert!(
        line.chars().count() <= 300,
        "{} characters: {line}",
        line.chars().count()
    );
    run
}

/// A random CNN on 28×28×1 images (the cnn-small layout), saved to `dir`.
fn cnn(dir: &Path) -> PathBuf {
    let model = random_mnist_cnn(
        &mut rng(5),
        InputEncoding::U8,
        &CNN_SMALL,
        Padding::Same,
        &[32, 10],
    );
    let path = dir.join("cnn.bnn");
    bnn_core::format::save(&model, "random cnn", &path).unwrap();
    path
}

fn p5(pixels: &[u8]) -> Vec<u8> {
    let mut bytes = b"P5\n28 28\n255\n".to_vec();
    bytes.extend_from_slice(pixels);
    bytes
}

// ------------------------------------------------------- nesting and sizes

/// A `.npy` whose shape is a list nested `depth` deep: 30 KB at 15,000,
/// which used to overflow the stack (SIGABRT) in `classify` and
/// `import-npz`. Version 2.0, whose header length has 4 bytes.
fn deep_npy(depth: usize) -> Vec<u8> {
    let header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': {}{}, }}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut out = b"\x93NUMPY\x02\x00".to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

#[test]
fn deep_nesting_in_a_npy_header_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = deep_npy(15_000);
    assert!(bytes.len() < 31_000);
    let path = write(dir.path(), "deep.npy", &bytes);
    short(
        classify(&seed_model(), &[&path])
            .fails(1, &[&arg(&path), "nested deeper than 32 levels at byte 82"]),
    );

    // The same header inside a .npz given to import-npz: the stored
    // archive is 600 KB when nested 300,000 deep.
    let npz = zip_bytes(
        &[("fc1_w.npy", deep_npy(300_000))],
        CompressionMethod::Stored,
    );
    assert!(npz.len() > 600_000);
    let path = write(dir.path(), "deep.npz", &npz);
    let out = dir.path().join("out.bnn");
    short(run(["import-npz", &arg(&path), "-o", &arg(&out)]).fails(
        1,
        &[&arg(&path), "array 'fc1_w'", "nested deeper than 32 levels"],
    ));
    assert!(!out.exists());
}

#[test]
fn a_shape_of_ten_thousand_dimensions_gives_a_short_line() {
    let dir = tempfile::tempdir().unwrap();
    let shape = format!("({})", "1, ".repeat(10_000));
    let path = write(dir.path(), "dims.npy", &npy("|u1", &shape, &[7]));
    short(
        classify(&seed_model(), &[&path])
            .fails(1, &[&arg(&path), "(1, 1, 1, 1, 1, 1, … 10000 dimensions)"]),
    );
    // A 5,000-character dtype is quoted cut short as well.
    let path = write(
        dir.path(),
        "dtype.npy",
        &npy(&"x".repeat(5000), "(1, 784)", &[]),
    );
    short(classify(&seed_model(), &[&path]).fails(1, &[&arg(&path), "dtype 'xxxx"]));
}

#[test]
fn training_sizes_beyond_memory_are_refused_before_loading_data() {
    // An empty data directory with --no-fetch: any attempt to load data
    // would fail with another message.
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("m.bnn");
    // Each width is within the documented 65536; together, about 12.9 G
    // latent weights: hundreds of GB with their copies.
    let wide = run([
        "train",
        "--hidden",
        "65536,65536,65536,65536",
        "--data",
        &arg(data.path()),
        "--no-fetch",
        "-o",
        &arg(&out),
    ]);
    short(wide.fails(
        2,
        &[
            "needs about",
            "12.9 G weights",
            "GB is available",
            "narrower layers",
        ],
    ));
    // A batch of the whole training set through wide convolutions: each
    // image's im2col buffers are within the grammar's limit, a batch of
    // 60,000 of them is not.
    let batch = run([
        "train",
        "--arch",
        "c3x256,c3x512,p2,d10",
        "--bn",
        "--batch",
        "60000",
        "--data",
        &arg(data.path()),
        "--no-fetch",
        "-o",
        &arg(&out),
    ]);
    short(batch.fails(2, &["needs about", "for a batch of 60000"]));
    assert!(!out.exists());
}

// ------------------------------------------------------- shapes

#[test]
fn a_cnn_refuses_inputs_of_its_pixel_count_but_another_shape() {
    let dir = tempfile::tempdir().unwrap();
    let model = cnn(dir.path());
    let pixels = random_images(10, 3).pixels;
    let wanted = "the convolutional model takes images of 28x28x1 (HxWxC)";

    // A PNG 56 wide and 14 high: 784 pixels.
    let path = write(
        dir.path(),
        "wide.png",
        &common::gray_png(56, 14, &pixels[..784]),
    );
    short(
        classify(&model, &[&path])
            .fails(1, &[&arg(&path), "is an image of 14x56x1 (HxWxC)", wanted]),
    );
    // IDX images of 56 rows and 14 columns.
    let path = write(
        dir.path(),
        "tall.idx",
        &idx_bytes(IMAGES, [10, 56, 14], &pixels),
    );
    short(
        classify(&model, &[&path])
            .fails(1, &[&arg(&path), "holds images of 56x14x1 (HxWxC)", wanted]),
    );
    // A .npy of shape (10, 784, 1), and a flat (10, 784).
    let path = write(
        dir.path(),
        "column.npy",
        &npy("|u1", "(10, 784, 1)", &pixels),
    );
    short(classify(&model, &[&path]).fails(
        1,
        &[
            &arg(&path),
            "array of shape (10, 784, 1) holds images of 784x1x1",
            wanted,
        ],
    ));
    let path = write(dir.path(), "flat.npy", &npy("|u1", "(10, 784)", &pixels));
    short(classify(&model, &[&path]).fails(
        1,
        &[
            &arg(&path),
            "flat vectors of 784 values",
            "save the array as (N, 28, 28)",
        ],
    ));
    // The right shapes classify.
    let good = [
        write(
            dir.path(),
            "good.png",
            &common::gray_png(28, 28, &pixels[..784]),
        ),
        write(
            dir.path(),
            "good.idx",
            &idx_bytes(IMAGES, [10, 28, 28], &pixels),
        ),
        write(
            dir.path(),
            "good.npy",
            &npy("|u1", "(10, 28, 28, 1)", &pixels),
        ),
    ];
    let refs: Vec<&Path> = good.iter().map(PathBuf::as_path).collect();
    assert_eq!(
        classify(&model, &refs).ok().lines().count(),
        1 + 1 + 10 + 10
    );

    // A dense model that records no shape takes any input of 784 values,
    // flat or not, as docs/CLI.md says.
    let wide = dir.path().join("wide.png");
    let flat = dir.path().join("flat.npy");
    assert_eq!(
        classify(&seed_model(), &[&wide, &flat])
            .ok()
            .lines()
            .count(),
        1 + 1 + 10
    );
}

#[test]
fn eval_refuses_a_model_of_another_input_shape() {
    // A CNN on 14×56 images: as many inputs as MNIST's 28×28, which it
    // used to read as if they were 14×56.
    let dir = tempfile::tempdir().unwrap();
    let model = random_cnn(
        &mut rng(6),
        InputShape::new(14, 56, 1),
        InputEncoding::U8,
        &CNN_SMALL,
        Padding::Same,
        &[32, 10],
        DecisionRule::Scores,
    );
    let path = dir.path().join("wide-cnn.bnn");
    bnn_core::format::save(&model, "14x56 cnn", &path).unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let pixels = random_images(10, 4).pixels;
    let images = write(
        &data,
        "t10k-images-idx3-ubyte",
        &idx_bytes(IMAGES, [10, 28, 28], &pixels),
    );
    write(
        &data,
        "t10k-labels-idx1-ubyte",
        &idx_bytes(0x801, [10], &[3; 10]),
    );
    let out = run(["eval", &arg(&path), "--data", &arg(&data), "--no-fetch"]);
    short(out.fails(
        1,
        &[
            &arg(&path),
            &arg(&images),
            "holds images of 28x28x1 (HxWxC)",
            "the convolutional model takes images of 14x56x1",
        ],
    ));
    // classify says the same of the same file.
    short(classify(&path, &[&images]).fails(1, &[&arg(&images), "takes images of 14x56x1"]));
}

// ------------------------------------------------------- trailing data

#[test]
fn trailing_data_in_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = random_images(2, 5).pixels;
    let (one, two) = pixels.split_at(784);
    let model = seed_model();

    let mut extra = p5(one);
    extra.extend_from_slice(b"junk");
    let path = write(dir.path(), "extra.pgm", &extra);
    short(classify(&model, &[&path]).fails(
        1,
        &[&arg(&path), "trailing data: 4 bytes after the 28x28 image"],
    ));
    let mut both = p5(one);
    both.extend_from_slice(&p5(two));
    let path = write(dir.path(), "two.pgm", &both);
    short(classify(&model, &[&path]).fails(1, &[&arg(&path), "trailing data: 797 bytes"]));
    // Text PGM: a final newline and comment are fine, another sample is not.
    let mut text = b"P2\n28 28\n255\n".to_vec();
    for p in one {
        text.extend_from_slice(format!("{p}\n").as_bytes());
    }
    text.extend_from_slice(b"# end\n");
    let path = write(dir.path(), "fine.pgm", &text);
    classify(&model, &[&path]).ok();
    text.extend_from_slice(b"17\n");
    let path = write(dir.path(), "more.pgm", &text);
    short(classify(&model, &[&path]).fails(1, &[&arg(&path), "trailing data: 3 bytes"]));
    // A PNG with bytes after its IEND chunk, or two PNGs in one file.
    let mut after = common::gray_png(28, 28, one);
    let end = after.len();
    after.extend_from_slice(&common::gray_png(28, 28, two));
    let path = write(dir.path(), "two.png", &after);
    short(classify(&model, &[&path]).fails(
        1,
        &[
            &arg(&path),
            &format!("bytes after the IEND chunk that ends the image at byte {end}"),
        ],
    ));
}

#[test]
fn gzip_with_trailing_junk_is_trailing_data_not_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = random_images(3, 6).pixels;
    // Junk shorter than a gzip header used to read as a member cut off at
    // the file's full length; longer junk as an invalid gzip header.
    for junk in [&b"xyz"[..], b"appended junk\n"] {
        let mut bytes = gzip(&idx_bytes(IMAGES, [3, 28, 28], &pixels));
        bytes.extend_from_slice(junk);
        let path = write(dir.path(), "junk.idx.gz", &bytes);
        let out = classify(&seed_model(), &[&path]);
        short(out.fails(
            1,
            &[
                &arg(&path),
                "trailing data",
                "the gzip stream ends after 2368 decompressed bytes and is followed by bytes \
                 that are not gzip data",
            ],
        ));
        assert!(!out.stderr.contains("cut off"), "{}", out.stderr);
    }
    // Two gzip members are one stream, as `gzip -d` reads them.
    let whole = idx_bytes(IMAGES, [3, 28, 28], &pixels);
    let mut members = gzip(&whole[..1000]);
    members.extend_from_slice(&gzip(&whole[1000..]));
    let path = write(dir.path(), "members.idx.gz", &members);
    assert_eq!(classify(&seed_model(), &[&path]).ok().lines().count(), 4);
}

// ------------------------------------------------------- messages

#[test]
fn idx_of_another_element_type_or_rank_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let floats = vec![0u8; 4 * 784];
    let path = write(
        dir.path(),
        "f.idx",
        &idx_bytes(0x0D03, [1, 28, 28], &floats),
    );
    short(classify(&seed_model(), &[&path]).fails(
        1,
        &[
            &arg(&path),
            "an IDX of element type float32 and rank 3, not an IDX image file",
        ],
    ));
    let path = write(
        dir.path(),
        "r4.idx",
        &idx_bytes(0x0804, [1, 28, 28, 1], &[0; 784]),
    );
    classify(&seed_model(), &[&path]).fails(1, &["element type unsigned byte and rank 4"]);
    // Compressed, the IDX reader names it.
    let gz = gzip(&idx_bytes(0x0C03, [1, 28, 28], &floats));
    let path = write(dir.path(), "i.idx.gz", &gz);
    short(classify(&seed_model(), &[&path]).fails(
        1,
        &[
            &arg(&path),
            "found 0x00000c03 (an IDX of element type int32 and rank 3, which bnn does not read)",
        ],
    ));
}

#[test]
fn an_object_npy_is_told_the_dtype_classify_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "o.npy", &npy("|O", "(1, 784)", &[0; 8]));
    let out = classify(&seed_model(), &[&path]);
    short(out.fails(
        1,
        &[
            &arg(&path),
            "dtype '|O' is not uint8",
            "astype(numpy.uint8)",
        ],
    ));
    assert!(!out.stderr.contains("int16"), "{}", out.stderr);
}

#[test]
fn a_non_image_named_png_is_not_called_a_pgm() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let path = write(&images, "notes.png", b"these are not pixels\n");
    let out = classify(&seed_model(), &[&images]);
    short(out.fails(1, &[&arg(&path), "not a PNG or PGM image"]));
    assert!(!out.stderr.contains("PGM:"), "{}", out.stderr);
}

// ------------------------------------------------------- empty inputs

/// No images is an empty result, the same from an IDX file and a `.npy`,
/// in every format: CSV its header alone (it was empty), JSON `[]`.
#[test]
fn empty_idx_and_npy_give_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let idx = write(
        dir.path(),
        "empty.idx",
        &idx_bytes(IMAGES, [0, 28, 28], &[]),
    );
    let npy_path = write(dir.path(), "empty.npy", &npy("|u1", "(0, 784)", &[]));
    let npy3 = write(dir.path(), "empty3.npy", &npy("|u1", "(0, 28, 28)", &[]));
    for input in [&idx, &npy_path, &npy3] {
        let csv = classify(&seed_model(), &[input]).ok().to_string();
        assert_eq!(csv, common::csv_header() + "\n", "{}", input.display());
        let json = run([
            "classify".to_string(),
            arg(&seed_model()),
            arg(input),
            "--format".into(),
            "json".into(),
        ]);
        assert_eq!(json.ok(), "[]\n", "{}", input.display());
    }
}

// ------------------------------------------------- what readers skip over

#[test]
fn a_npy_header_key_given_twice_is_refused() {
    // NumPy takes the last of two equal keys: (5, 784) here, where bnn
    // took the first and classified ten images without a word.
    let dir = tempfile::tempdir().unwrap();
    let pixels = random_images(10, 6).pixels;
    let twice = npy("|u1", "(10, 784), 'shape': (5, 784)", &pixels);
    let path = write(dir.path(), "twice.npy", &twice);
    short(classify(&seed_model(), &[&path]).fails(1, &[&arg(&path), "key 'shape' given twice"]));
    // An integer of 5,000 digits is quoted cut short, not whole.
    let huge = npy("|u1", &format!("({}, 784)", "9".repeat(5000)), &pixels);
    let path = write(dir.path(), "huge.npy", &huge);
    short(classify(&seed_model(), &[&path]).fails(1, &[&arg(&path), "9999…", "is too large"]));
}

/// A PNG chunk of `kind` holding `data`, with its CRC (or `crc`).
fn png_chunk(kind: &[u8; 4], data: &[u8], crc: Option<u32>) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&crc.unwrap_or_else(|| crc32fast::hash(&body)).to_be_bytes());
    out
}

#[test]
fn png_chunks_the_decoder_passes_over_are_checked() {
    // The decoder stops at the image data and skips unknown chunks: a
    // corrupt or unknown critical chunk was classified without a word.
    let dir = tempfile::tempdir().unwrap();
    let pixels = random_images(1, 8).pixels;
    let good = common::gray_png(28, 28, &pixels);
    let (body, iend) = good.split_at(good.len() - 12);
    let before_iend = |chunk: Vec<u8>| [body, &chunk, iend].concat();
    let model = seed_model();
    let cases = [
        (
            "critical.png",
            before_iend(png_chunk(b"ABCD", b"x", None)),
            "unknown critical chunk ABCD",
        ),
        (
            "early.png",
            [&good[..33], &png_chunk(b"ABCD", b"x", None), &good[33..]].concat(),
            "unknown critical chunk ABCD at byte 33",
        ),
        (
            "crc.png",
            before_iend(png_chunk(b"tEXt", b"a\0b", Some(0))),
            "CRC error in the tEXt chunk",
        ),
        (
            "iend.png",
            [body, &png_chunk(b"IEND", b"xx", None)].concat(),
            "IEND chunk at byte",
        ),
    ];
    for (name, bytes, why) in cases {
        let path = write(dir.path(), name, &bytes);
        short(classify(&model, &[&path]).fails(1, &[&arg(&path), "invalid PNG", why]));
    }
    // An unknown ancillary chunk is for decoders to skip, and is skipped.
    let path = write(
        dir.path(),
        "fine.png",
        &before_iend(png_chunk(b"abCd", b"x", None)),
    );
    classify(&model, &[&path]).ok();
}
