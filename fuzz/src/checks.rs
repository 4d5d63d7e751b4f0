//! What every parser must do with any input, whatever its bytes: return a
//! value or a one-line error naming the file, never panic, and (for the
//! formats this workspace writes) save a loaded value back to the very bytes
//! it came from, so a file that loads is exactly one model.
//!
//! Each public function here is one fuzz target's whole check, taking the
//! fuzzer's bytes as they are saved, so that the stable regression test runs
//! a saved crash input exactly as the fuzzer ran it. Memory is bounded by the
//! caller through [`crate::budget`].

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use bnn_data::idx::{self, ImageStream};
use bnn_data::npz::{self, NpzArchive};
use flate2::write::GzEncoder;
use flate2::{Compression, Crc};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// The name the in-memory parsers are given for their input.
pub const MODEL_NAME: &str = "fuzz-input";

/// Images per chunk when streaming an IDX file: small and odd, so that
/// chunks end at every position relative to the file's count.
const CHUNK_IMAGES: usize = 7;

/// Arrays read by name from one archive: enough to reach every entry of a
/// small input without letting one input run for long.
const MAX_ARRAYS: usize = 16;

/// Fails unless `message` is one line that names `name`.
pub fn assert_one_line(message: &str, name: &str) {
    assert!(
        !message.contains('\n') && !message.contains('\r'),
        "error message spans several lines: {message:?}"
    );
    assert!(
        message.contains(name),
        "error message does not name the file {name}: {message:?}"
    );
}

/// Where two encodings part, for the failure message.
fn first_difference(read: &[u8], written: &[u8]) -> String {
    let at = read
        .iter()
        .zip(written)
        .position(|(a, b)| a != b)
        .unwrap_or(read.len().min(written.len()));
    format!(
        "{} bytes read, {} written, first difference at offset {at}",
        read.len(),
        written.len()
    )
}

/// `body` followed by its CRC-32, as the model files and checkpoints end.
///
/// Random bytes almost never carry a valid checksum, so without this the
/// fuzzer would spend its time on the checksum test alone; the model targets
/// check both the raw input and this repaired one.
fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut crc = Crc::new();
    crc.update(body);
    let mut out = body.to_vec();
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out
}

/// Writes `bytes` to `dir/name` for the parsers that read from a path.
fn scratch(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("cannot write the fuzz scratch file");
    path
}

/// `.bnn` models from `data`, as is and with a valid checksum appended.
pub fn bnn_model(data: &[u8]) {
    bnn_bytes(data);
    bnn_bytes(&with_crc(data));
}

/// `.f32` models from `data`, as is and with a valid checksum appended.
pub fn f32_model(data: &[u8]) {
    f32_bytes(data);
    f32_bytes(&with_crc(data));
}

/// Checkpoints from `data`, as is and with a valid checksum appended.
pub fn checkpoint(data: &[u8]) {
    checkpoint_bytes(data);
    checkpoint_bytes(&with_crc(data));
}

/// `data` as an ONNX model: a bnn model or a one-line error. A graph
/// that imports is a model like any other: it saves and loads back
/// unchanged, and runs exactly as the float reference does.
pub fn onnx(data: &[u8]) {
    match bnn_onnx::import_bytes(data, None) {
        Ok(imported) => {
            let bytes = bnn_core::format::to_bytes(&imported.model, "fuzz");
            let back = bnn_core::format::from_bytes(&bytes, Path::new(MODEL_NAME))
                .expect("an imported model saves and loads back");
            assert_eq!(
                back.model, imported.model,
                "the model changed on a round trip"
            );
            run_small_model(&imported.model, data.len());
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n') && !message.contains('\r') && message.len() <= 600,
                "not a short one-line error: {message:?}"
            );
        }
    }
}

/// `data` as an IDX file: raw, or gzip when it starts with the gzip magic.
pub fn idx(data: &[u8], dir: &Path) {
    idx_file(&scratch(dir, "input.idx", data));
}

/// `data` compressed into a valid gzip file and read as IDX, so mutations
/// reach the IDX header and data through the decompressing path.
pub fn idx_gzip(data: &[u8], dir: &Path) {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(data).expect("writing to memory");
    let bytes = gz.finish().expect("writing to memory");
    idx_file(&scratch(dir, "input.idx.gz", &bytes));
}

/// `data` as a `.npz` archive.
pub fn npz(data: &[u8], dir: &Path) {
    npz_file(&scratch(dir, "input.npz", data));
}

/// `data` as a CSV file, read as a labelled data set with the last column
/// as labels, then unlabelled (every column a feature).
pub fn csv(data: &[u8], dir: &Path) {
    let path = scratch(dir, "input.csv", data);
    labelled_source(&path, &path.display().to_string());
}

/// `data` as CIFAR batches: a CIFAR-10 `data_batch_1.bin` and, in another
/// directory, a CIFAR-100 `train.bin`; the last 3073 bytes or fewer are
/// also the test batch, so both splits are reached.
pub fn cifar(data: &[u8], dir: &Path) {
    let tail = &data[data.len().saturating_sub(3073)..];
    for (sub, train, test) in [
        ("cifar10", "data_batch_1.bin", "test_batch.bin"),
        ("cifar100", "train.bin", "test.bin"),
    ] {
        let root = fresh_dir(dir, sub);
        std::fs::write(root.join(train), data).expect("writing the fuzz scratch file");
        std::fs::write(root.join(test), tail).expect("writing the fuzz scratch file");
        labelled_source(&root, &root.display().to_string());
    }
}

/// Files an image-folder tree built from one input holds at most.
const MAX_TREE_FILES: usize = 24;

/// `data` as a tree of class folders: the input is cut at each `@@` into
/// files; a file's first byte picks its class (`c0`..`c2`), its kind
/// (`.png` or `.pgm`) and whether it goes under `train/`, `test/` or the
/// root, and the rest are its bytes.
pub fn image_folder(data: &[u8], dir: &Path) {
    let root = fresh_dir(dir, "images");
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(2).position(|w| w == b"@@") {
        parts.push(&rest[..at]);
        rest = &rest[at + 2..];
    }
    parts.push(rest);
    for (i, part) in parts.iter().take(MAX_TREE_FILES).enumerate() {
        let Some((&pick, bytes)) = part.split_first() else {
            continue;
        };
        let class = format!("c{}", pick % 3);
        let ext = if (pick / 3) % 2 == 0 { "png" } else { "pgm" };
        let split = match (pick / 6) % 3 {
            0 => root.clone(),
            1 => root.join("train"),
            _ => root.join("test"),
        };
        let folder = split.join(class);
        std::fs::create_dir_all(&folder).expect("creating a fuzz scratch folder");
        std::fs::write(folder.join(format!("{i}.{ext}")), bytes)
            .expect("writing the fuzz scratch file");
    }
    labelled_source(&root, &root.display().to_string());
}

/// An empty directory `dir/name`, whatever an earlier input left there.
fn fresh_dir(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    if root.exists() {
        std::fs::remove_dir_all(&root).expect("clearing the fuzz scratch folder");
    }
    std::fs::create_dir_all(&root).expect("creating the fuzz scratch folder");
    root
}

/// `path` opened as a labelled data set (`bnn_data::labelled::open`) with
/// the default options, then unlabelled, grey and channels-first: a set
/// that opens keeps every promise of the interface, and an error is one
/// line naming the path.
fn labelled_source(path: &Path, name: &str) {
    use bnn_data::labelled::{open, SourceOptions};
    let options = [
        SourceOptions::default(),
        SourceOptions {
            unlabelled: true,
            channels: Some(1),
            channels_first: true,
            ..SourceOptions::default()
        },
    ];
    for opts in &options {
        match open(path, opts) {
            Ok(set) => check_set(&set, opts.unlabelled),
            Err(e) => assert_one_line(&e.to_string(), name),
        }
    }
}

/// What [`bnn_data::labelled::LabelledSet`] promises.
fn check_set(set: &bnn_data::labelled::LabelledSet, unlabelled: bool) {
    use bnn_data::labelled::{Values, MAX_CLASSES, MAX_VALUES};
    let (h, w, c) = set.input_map;
    assert!(h >= 1 && w >= 1 && c >= 1, "input map {:?}", set.input_map);
    let n = set.input_len();
    let mut total = 0u64;
    for part in std::iter::once(&set.train).chain(&set.test) {
        let count = part.count(n);
        assert_eq!(part.values.len(), count * n, "values are not whole samples");
        total += part.values.len() as u64;
        if !(unlabelled && part.labels.is_empty()) {
            assert_eq!(part.labels.len(), count, "one label per sample");
            assert!(count > 0 || unlabelled, "an empty set opened");
        }
        assert!(part.labels.iter().all(|&l| usize::from(l) < set.classes));
        if let Values::F32(v) = &part.values {
            assert!(v.iter().all(|x| x.is_finite()), "a feature is not finite");
        }
    }
    assert!(total <= MAX_VALUES);
    let labelled = !set.train.labels.is_empty() || set.class_names.is_some();
    if labelled || !unlabelled {
        assert!(
            (2..=MAX_CLASSES).contains(&set.classes),
            "{} classes",
            set.classes
        );
    }
    if let Some(names) = &set.class_names {
        assert_eq!(names.len(), set.classes);
    }
}

/// `data` as the array `fc1_w.npy`, stored uncompressed in a valid zip, so
/// mutations reach the array parser rather than the zip's; then `data` as
/// the header dict of a `.npy` with a valid prefix (see [`npy_with_header`]).
pub fn npy(data: &[u8], dir: &Path) {
    npy_in_zip(data, dir);
    npy_in_zip(&npy_with_header(data), dir);
    // And as a lone `.npy` of samples, unlabelled and with itself as the
    // labels (an array that is both is possible: (N, 1) of integers).
    let path = scratch(dir, "input.npy", data);
    let name = path.display().to_string();
    labelled_source(&path, &name);
    let opts = bnn_data::labelled::SourceOptions {
        labels: Some(path.clone()),
        ..Default::default()
    };
    match bnn_data::labelled::open(&path, &opts) {
        Ok(set) => check_set(&set, false),
        Err(e) => assert_one_line(&e.to_string(), &name),
    }
}

/// A `.npy` whose header is `dict`, behind a valid prefix: magic, version
/// 2.0 and the header's length.
///
/// The header's length sits in front of it, so a mutation that inserts or
/// removes a byte of the dict leaves a prefix that no longer matches, and
/// the parse stops at "truncated" before the dict is read. Random bytes
/// almost never fix both, so without this the fuzzer hardly reaches the
/// dict parser with anything but the seeds' own headers; with it, every
/// mutation of the dict text is parsed (deep nesting included, which
/// `fuzz/dicts/npy.dict` offers as tokens).
pub fn npy_with_header(dict: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x02\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    out.extend_from_slice(dict);
    out
}

fn npy_in_zip(data: &[u8], dir: &Path) {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    zip.start_file("fc1_w.npy", options)
        .expect("writing to memory");
    zip.write_all(data).expect("writing to memory");
    let bytes = zip.finish().expect("writing to memory").into_inner();
    npz_file(&scratch(dir, "input.npz", &bytes));
}

/// A `.bnn` model: loads and saves back to the same bytes, or fails in one line.
fn bnn_bytes(bytes: &[u8]) {
    match bnn_core::format::from_bytes(bytes, Path::new(MODEL_NAME)) {
        Ok(file) => {
            assert_eq!(file.file_bytes, bytes.len() as u64);
            let again = bnn_core::format::to_bytes(&file.model, &file.description);
            assert!(
                again == bytes,
                "a .bnn model that loads saves to other bytes: {}",
                first_difference(bytes, &again)
            );
            run_small_model(&file.model, bytes.len());
        }
        Err(e) => assert_one_line(&e.to_string(), MODEL_NAME),
    }
}

/// Largest model file, and input, that [`run_small_model`] runs: enough for
/// every layer kind and odd widths, small enough that the float reference
/// of a convolution over every position stays in milliseconds.
const RUN_MAX_BYTES: usize = 8 << 10;
const RUN_MAX_INPUTS: usize = 1024;

/// Whether [`run_small_model`] runs a model of `file_bytes` bytes.
pub fn runs_model(model: &bnn_core::Model, file_bytes: usize) -> bool {
    let n = model.input_len();
    file_bytes <= RUN_MAX_BYTES && n > 0 && n <= RUN_MAX_INPUTS
}

/// A model that loads is a model any caller may run, so a hostile but
/// valid file must reach the kernels' unchecked loads safely: every kernel
/// this CPU has runs it on fixed images (all dark, all bright, a ramp, a
/// checkerboard), and every hidden bit, score and class must equal the
/// float reference's, exactly.
fn run_small_model(model: &bnn_core::Model, file_bytes: usize) {
    if !runs_model(model, file_bytes) {
        return;
    }
    let n = model.input_len();
    let images: [Vec<u8>; 4] = [
        vec![0; n],
        vec![255; n],
        (0..n).map(|i| (i * 255 / (n - 1).max(1)) as u8).collect(),
        (0..n).map(|i| if i % 2 == 0 { 200 } else { 3 }).collect(),
    ];
    let pixels = images.concat();
    let view = ndarray::ArrayView2::from_shape((images.len(), n), &pixels).expect("shape");
    let reference = bnn_core::Reference::new(model);
    let acts = reference.activations(view);
    let ref_scores = acts.last().expect("a model has layers");
    let ref_classes = reference.classes(view);
    for kernel in bnn_core::kernel::available() {
        let bits = model
            .hidden_activations(kernel, &pixels)
            .expect("a loaded model runs on images of its input length");
        for (layer, (packed, float)) in bits.iter().zip(&acts).enumerate() {
            let unpacked: Vec<f32> = packed.to_pm1().into_iter().map(f32::from).collect();
            assert!(
                unpacked.as_slice() == float.as_slice().expect("standard layout"),
                "{kernel}: hidden layer {} differs from the reference",
                layer + 1
            );
        }
        let p = model
            .predict_batch_with(
                &pixels,
                bnn_core::RunOptions {
                    kernel: Some(kernel),
                    threads: Some(1),
                },
            )
            .expect("a loaded model runs on images of its input length");
        let same_bits = p
            .scores
            .iter()
            .zip(ref_scores.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same_bits && p.scores.len() == ref_scores.len(),
            "{kernel}: scores differ from the reference: {:?} against {:?}",
            p.scores,
            ref_scores
        );
        assert_eq!(
            p.classes, ref_classes,
            "{kernel}: classes differ from the reference"
        );
    }
}

/// An `.f32` model: loads and saves back to the same bytes, or fails in one line.
fn f32_bytes(bytes: &[u8]) {
    match bnn_fp32::format::from_bytes(bytes, Path::new(MODEL_NAME)) {
        Ok(model) => {
            let again = bnn_fp32::format::to_bytes(&model);
            assert_eq!(again.len(), bnn_fp32::format::encoded_len(&model));
            assert!(
                again == bytes,
                "an .f32 model that loads saves to other bytes: {}",
                first_difference(bytes, &again)
            );
        }
        Err(e) => assert_one_line(&e.to_string(), MODEL_NAME),
    }
}

/// A training checkpoint: loads and saves back to the same bytes, or fails
/// in one line.
fn checkpoint_bytes(bytes: &[u8]) {
    match bnn_train::checkpoint::from_bytes(bytes, Path::new(MODEL_NAME)) {
        Ok(state) => {
            let again = bnn_train::checkpoint::to_bytes(&state);
            assert!(
                again == bytes,
                "a checkpoint that loads saves to other bytes: {}",
                first_difference(bytes, &again)
            );
        }
        Err(e) => assert_one_line(&e.to_string(), MODEL_NAME),
    }
}

/// An IDX file (raw or gzip) at `path`, read as images whole, as images in
/// chunks and as labels. The whole read and the stream must agree: the same
/// pixels, or both an error.
fn idx_file(path: &Path) {
    let name = path.display().to_string();
    let whole = idx::read_images(path);
    let streamed = stream_images(path);
    match (&whole, &streamed) {
        (Ok(images), Ok(pixels)) => {
            assert_eq!(
                images.pixels.len(),
                images.count * images.rows * images.cols
            );
            assert!(
                images.pixels == *pixels,
                "streamed pixels differ from the whole read"
            );
        }
        (Err(a), Err(b)) => {
            assert_one_line(&a.to_string(), &name);
            assert_one_line(&b.to_string(), &name);
        }
        (Ok(_), Err(e)) => panic!("the whole read succeeds but the stream fails: {e}"),
        (Err(e), Ok(_)) => panic!("the stream succeeds but the whole read fails: {e}"),
    }
    match idx::read_labels(path) {
        Ok(labels) => assert!(!labels.labels.is_empty()),
        Err(e) => assert_one_line(&e.to_string(), &name),
    }
}

fn stream_images(path: &Path) -> Result<Vec<u8>, bnn_data::DataError> {
    let mut stream = ImageStream::open(path)?;
    let mut pixels = Vec::new();
    let mut chunk = Vec::new();
    let mut seen = 0;
    loop {
        let n = stream.next_chunk(CHUNK_IMAGES, &mut chunk)?;
        if n == 0 {
            break;
        }
        assert_eq!(chunk.len(), n * stream.image_len());
        seen += n;
        pixels.extend_from_slice(&chunk);
    }
    assert_eq!(seen, stream.count());
    Ok(pixels)
}

/// A `.npz` archive at `path`: read as the seed's layers, and array by array.
fn npz_file(path: &Path) {
    let name = path.display().to_string();
    match npz::read_seed_layers(path) {
        Ok(layers) => {
            assert!(!layers.is_empty());
            for (i, layer) in layers.iter().enumerate() {
                assert_eq!(layer.weights.len(), layer.rows * layer.cols);
                assert_eq!(layer.bias.len(), layer.rows);
                assert!(layer.weights.iter().all(|&w| w == 1 || w == -1));
                assert!(layer.bias.iter().all(|b| b.is_finite()));
                if i > 0 {
                    assert_eq!(layer.cols, layers[i - 1].rows);
                }
            }
        }
        Err(e) => assert_one_line(&e.to_string(), &name),
    }
    // As a data set of the user's (`train --data`): whole images, one
    // label per image, classes from the labels.
    labelled_source(path, &name);
    let mut archive = match NpzArchive::open(path) {
        Ok(archive) => archive,
        Err(e) => return assert_one_line(&e.to_string(), &name),
    };
    for array in archive.names().into_iter().take(MAX_ARRAYS) {
        match archive.read(&array) {
            Ok(a) => {
                assert_eq!(a.len(), a.shape.iter().product::<usize>());
                assert_eq!(a.to_f64().len(), a.len());
            }
            Err(e) => assert_one_line(&e.to_string(), &name),
        }
    }
}
