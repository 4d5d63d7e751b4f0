//! The binary under hostile input: devices and endless streams where a model
//! should be, inputs through pipes and FIFOs, absurd thread counts, settings
//! that used to panic, and the messages that used to mislead. Every case
//! runs the real `bnn` and checks the error contract (one line naming the
//! file and the problem, exit 2 for usage and 1 otherwise, no panic).
//!
//! Device nodes and FIFOs are made in a temporary directory (`mknod`, which
//! needs root, and `mkfifo`); no test touches the system's own.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{arg, bnn, gzip, idx_bytes, mnist_dir, random_images, run, seed_model, Run};

/// Long enough for any of these runs on a loaded machine; a run still going
/// after it is hung (before the fixes, such runs read `/dev/zero` forever or
/// waited on a FIFO that nobody would open again).
const HANG: Duration = Duration::from_secs(300);

/// Runs `cmd` to completion, failing the test if it outlives [`HANG`].
fn finish(mut cmd: Command, stdin: Option<Vec<u8>>) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("cannot start the bnn binary");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for bnn") {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bnn hung: still running after {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run::from_output(std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

fn bnn_args(args: &[&str]) -> Command {
    let mut cmd = bnn();
    cmd.args(args);
    cmd
}

/// A character device like the system's `/dev/zero` (1, 5) or `/dev/full`
/// (1, 7), made in `dir`.
fn char_device(dir: &Path, name: &str, minor: u32) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("mknod")
        .arg(&path)
        .args(["c", "1", &minor.to_string()])
        .status()
        .expect("mknod (coreutils) is needed by these tests");
    assert!(
        status.success(),
        "mknod {} failed: these tests make their own device nodes and must run as root",
        path.display()
    );
    path
}

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo (coreutils) is needed by these tests");
    assert!(status.success(), "mkfifo {} failed", path.display());
    path
}

/// Feeds `head`, then `tail` bytes for as long as the reader keeps the FIFO
/// open (forever, like `/dev/zero`, when `endless`).
fn feed(path: &Path, head: Vec<u8>, endless: bool) {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        if f.write_all(&head).is_err() || !endless {
            return;
        }
        let block = [0u8; 1 << 14];
        while f.write_all(&block).is_ok() {}
    });
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ------------------------------------------------------------ model readers

/// What each model-reading command is given for `path`.
fn model_commands(path: &str, out: &str) -> Vec<Vec<String>> {
    let data = arg(&mnist_dir());
    [
        vec!["info", path],
        vec!["eval", path, "--data", &data, "--no-fetch"],
        vec!["export", path, "--format", "c", "-o", out],
        vec![
            "train",
            "--resume",
            path,
            "--data",
            &data,
            "--no-fetch",
            "-o",
            out,
        ],
        vec!["classify", path, &data],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn a_zero_device_is_not_read_without_limit() {
    let dir = tempfile::tempdir().unwrap();
    let zero = char_device(dir.path(), "zero", 5);
    let out = arg(&dir.path().join("out"));
    for args in model_commands(&arg(&zero), &out) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        finish(bnn_args(&args), None).fails(1, &[&arg(&zero), "wrong magic"]);
    }
    assert!(!dir.path().join("out").exists());
}

#[test]
fn an_endless_stream_behind_a_good_header_stops_at_its_stated_end() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read(seed_model()).unwrap();
    let out = arg(&dir.path().join("out"));
    // Zeros forever: refused at the magic.
    let zeros = fifo(dir.path(), "zeros.bnn");
    for args in model_commands(&arg(&zeros), &out) {
        feed(&zeros, Vec::new(), true);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        finish(bnn_args(&args), None).fails(1, &[&arg(&zeros), "wrong magic"]);
    }
    // A whole model, then zeros forever: one byte past its end is enough.
    let tail = fifo(dir.path(), "tail.bnn");
    feed(&tail, seed.clone(), true);
    finish(bnn_args(&["info", &arg(&tail)]), None).fails(
        1,
        &[
            &arg(&tail),
            &format!("trailing data after the {} bytes", seed.len()),
        ],
    );
    // The model alone through a FIFO loads like the file.
    let good = fifo(dir.path(), "good.bnn");
    feed(&good, seed, false);
    let text = finish(bnn_args(&["info", &arg(&good)]), None)
        .ok()
        .to_string();
    assert!(text.contains("784-512-10"), "{text}");
}

#[test]
fn a_checkpoint_stream_is_bounded_too() {
    let dir = tempfile::tempdir().unwrap();
    // Magic, version 1, then a metadata length of 4 GiB - 1: refused from
    // the header, not read.
    let mut head = b"BNNCKPT\n".to_vec();
    head.extend_from_slice(&1u32.to_le_bytes());
    head.extend_from_slice(&u32::MAX.to_le_bytes());
    let ckpt = fifo(dir.path(), "c.ckpt");
    feed(&ckpt, head, true);
    let data = arg(&mnist_dir());
    let out = arg(&dir.path().join("m.bnn"));
    finish(
        bnn_args(&[
            "train",
            "--resume",
            &arg(&ckpt),
            "--data",
            &data,
            "--no-fetch",
            "-o",
            &out,
        ]),
        None,
    )
    .fails(1, &[&arg(&ckpt), "metadata of 4294967295 bytes exceeds"]);
}

#[test]
fn an_fp32_model_given_to_info_or_eval_is_named() {
    let f32_model = common::root().join("weights/mnist-512-fp32.f32");
    let path = arg(&f32_model);
    let data = arg(&mnist_dir());
    run(["info", &path]).fails(1, &[&path, "this is an FP32 model", "bnn bench"]);
    run(["eval", &path, "--data", &data, "--no-fetch"]).fails(1, &[&path, "this is an FP32 model"]);
}

#[test]
fn import_npz_reads_a_pipe_and_refuses_a_zero_device_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.bnn");
    let zero = char_device(dir.path(), "zero", 5);
    finish(
        bnn_args(&["import-npz", &arg(&zero), "-o", &arg(&out)]),
        None,
    )
    .fails(1, &[&arg(&zero), "not a zip archive"]);
    assert!(!out.exists());

    let npz = fifo(dir.path(), "seed.npz");
    feed(&npz, std::fs::read(common::seed_npz()).unwrap(), false);
    finish(
        bnn_args(&["import-npz", &arg(&npz), "-o", &arg(&out)]),
        None,
    )
    .ok();
    // The same network as the file gives; only the description (which
    // cannot state a pipe's size) differs.
    let weights =
        |p: &Path| bnn_core::format::to_bytes(&bnn_core::format::load(p).unwrap().model, "");
    assert!(weights(&out) == weights(&seed_model()));
}

// ------------------------------------------------------- classify from pipes

/// Classes and scores of a CSV, without the source column (which names
/// the path each run was given).
fn results(csv: &str) -> Vec<String> {
    csv.lines()
        .skip(1)
        .map(|l| l.split_once(',').expect("a CSV row").1.to_string())
        .collect()
}

#[test]
fn every_input_format_works_from_a_pipe_and_from_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let images = random_images(5, 17);
    let idx = idx_bytes(0x803, [5, 28, 28], &images.pixels);
    let mut pgm = b"P5\n28 28\n255\n".to_vec();
    pgm.extend_from_slice(images.image(0));
    let cases = [
        ("idx", idx.clone(), 5),
        ("idx.gz", gzip(&idx), 5),
        ("pgm", pgm, 1),
        ("png", common::gray_png(28, 28, images.image(0)), 1),
    ];
    let model = arg(&seed_model());
    for (ext, bytes, count) in cases {
        let file = write(dir.path(), &format!("in.{ext}"), &bytes);
        let expected = results(run(["classify", &model, &arg(&file)]).ok());
        assert_eq!(expected.len(), count, "{ext}");

        // A pipe: the child's stdin, named as /dev/stdin.
        let piped = finish(
            bnn_args(&["classify", &model, "/dev/stdin"]),
            Some(bytes.clone()),
        );
        assert_eq!(results(piped.ok()), expected, "{ext} through a pipe");

        // A FIFO, opened once.
        let fifo = fifo(dir.path(), &format!("fifo-{ext}"));
        feed(&fifo, bytes, false);
        let through = finish(bnn_args(&["classify", &model, &arg(&fifo)]), None);
        assert_eq!(results(through.ok()), expected, "{ext} through a FIFO");
    }
}

/// The accuracy bench gives `name` in its table: the row's cell in percent.
fn bench_accuracy(out: &str, name: &str) -> String {
    out.lines()
        .filter(|l| l.starts_with(&format!("| {name} |")))
        .flat_map(|l| l.split('|'))
        .map(str::trim)
        .find(|cell| cell.ends_with('%'))
        .unwrap_or_else(|| panic!("no accuracy for {name} in:\n{out}"))
        .to_string()
}

#[test]
fn bench_reads_a_model_from_a_fifo_once() {
    // bench read a model's first bytes to tell .bnn from .f32 and then
    // opened it again to load it: a FIFO has nothing the second time, so
    // the run waited forever for another writer.
    let dir = tempfile::tempdir().unwrap();
    let data = arg(&mnist_dir());
    let fp32 = common::root().join("weights/mnist-512-fp32.f32");
    for (i, model) in [seed_model(), fp32].into_iter().enumerate() {
        let quick = |path: &str| {
            let args = [
                "bench",
                path,
                "--data",
                &data,
                "--no-fetch",
                "--repeat",
                "1",
            ];
            finish(
                bnn_args(&[&args[..], &["--single", "10", "--threads", "1"]].concat()),
                None,
            )
        };
        let name = model.file_name().unwrap().to_str().unwrap().to_string();
        let from_file = quick(&arg(&model));
        let want = bench_accuracy(from_file.ok(), &name);
        let fifo = fifo(dir.path(), &format!("fifo{i}"));
        feed(&fifo, std::fs::read(&model).unwrap(), false);
        let through = quick(&arg(&fifo));
        assert_eq!(
            bench_accuracy(through.ok(), &format!("fifo{i}")),
            want,
            "{name}"
        );
    }
}

#[test]
fn a_directory_entry_named_like_an_image_must_be_one() {
    let model = arg(&seed_model());
    let images = random_images(1, 3);
    let png = common::gray_png(28, 28, images.image(0));
    type Make = fn(&Path);
    let cases: [(&str, Make, &str); 4] = [
        (
            "dangling.png",
            |p| std::os::unix::fs::symlink("no-such-file", p).unwrap(),
            "broken or looping symbolic link",
        ),
        (
            "loop.png",
            |p| std::os::unix::fs::symlink(p.file_name().unwrap(), p).unwrap(),
            "broken or looping symbolic link",
        ),
        (
            "pipe.png",
            |p| {
                let status = Command::new("mkfifo").arg(p).status().unwrap();
                assert!(status.success());
            },
            "a FIFO, not an image file",
        ),
        (
            "sub.PGM",
            |p| std::fs::create_dir(p).unwrap(),
            "a directory, not an image file",
        ),
    ];
    for (name, make, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.png", &png);
        write(dir.path(), "notes.txt", b"ignored: not named like an image");
        let bad = dir.path().join(name);
        make(&bad);
        finish(bnn_args(&["classify", &model, &arg(dir.path())]), None)
            .fails(1, &[&arg(&bad), why]);
        // Without it, the directory classifies.
        if bad.is_dir() {
            std::fs::remove_dir(&bad).unwrap();
        } else {
            std::fs::remove_file(&bad).unwrap();
        }
        let ok = run(["classify", &model, &arg(dir.path())]);
        assert_eq!(results(ok.ok()).len(), 1, "{name}");
    }
}

// ------------------------------------------------------- threads and kernels

#[test]
fn absurd_thread_counts_are_usage_errors() {
    let model = arg(&seed_model());
    let data = arg(&mnist_dir());
    let commands: [&[&str]; 4] = [
        &["info", &model],
        &["kernels"],
        &["eval", &model, "--data", &data, "--no-fetch"],
        &["train", "--data", "/nonexistent", "--no-fetch"],
    ];
    for value in ["abc", "0", "-1", "100000", "1025"] {
        for args in commands {
            let mut cmd = bnn_args(args);
            cmd.env("RAYON_NUM_THREADS", value);
            finish(cmd, None).fails(2, &["RAYON_NUM_THREADS", value]);
        }
    }
    for value in ["100000", "1025", "0"] {
        let images = arg(&mnist_dir().join("t10k-images-idx3-ubyte"));
        run(["classify", &model, &images, "--threads", value])
            .fails(2, &["--threads", value, "1 to 1024"]);
        run(["train", "--threads", value]).fails(2, &["--threads", value]);
        run(["bench", "--threads", &format!("1,{value}")]).fails(2, &["--threads", value]);
    }
    // The cap itself is accepted.
    let mut cmd = bnn_args(&["info", &model]);
    cmd.env("RAYON_NUM_THREADS", "1024");
    finish(cmd, None).ok();
}

#[test]
fn a_bad_kernel_is_refused_by_every_command() {
    for args in [
        &["train", "--data", "/nonexistent", "--no-fetch"][..],
        &["demo", "--data", "/nonexistent", "--no-fetch"],
        &["info", "weights/seed.bnn"],
        &["fetch", "--dir", "/nonexistent/mnist"],
    ] {
        let mut cmd = bnn_args(args);
        cmd.env("BNN_KERNEL", "bogus");
        finish(cmd, None).fails(2, &["BNN_KERNEL", "unknown kernel 'bogus'"]);
    }
}

// --------------------------------------------------------- former panics

#[test]
fn settings_that_used_to_panic_are_errors() {
    run([
        "demo",
        "--repeat",
        "0",
        "--data",
        "/nonexistent",
        "--no-fetch",
    ])
    .fails(2, &["--repeat must be at least 1"]);

    // Two models of different input sizes: one run times one size of
    // images, so they are refused together before any work.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bnn");
    let w = bnn_core::BitMatrix::from_pm1(10, 100, &[1i8; 1000]).unwrap();
    let layer = bnn_core::BinaryDense::output(w, vec![0.0; 10]).unwrap();
    let model =
        bnn_core::Model::new(100, 128, vec![layer], bnn_core::DecisionRule::Scores).unwrap();
    bnn_core::format::save(&model, "100 inputs", &small).unwrap();
    let data = arg(&mnist_dir());
    let seed = arg(&seed_model());
    run([
        "bench",
        &seed,
        &arg(&small),
        "--data",
        &data,
        "--no-fetch",
        "--repeat",
        "1",
    ])
    .fails(
        2,
        &[
            &arg(&small),
            "takes 100 inputs",
            "seed.bnn takes 784 inputs",
            "one input size at a time",
        ],
    );
}

// ---------------------------------------------------------------- train

#[test]
fn train_settings_that_contradict_are_refused_before_loading_data() {
    // No data directory: each refusal must come before any data is read.
    let nowhere = ["--data", "/nonexistent", "--no-fetch"];
    let with = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&nowhere);
        run(args)
    };
    with(&["--bn", "--no-bn"]).usage_error(&["--bn", "--no-bn"]);
    with(&["--limit-train", "3000"]).fails(
        2,
        &[
            "validation split of 5000 images",
            "3000 training images",
            "--validation",
        ],
    );
    with(&["--lr", "inf"]).fails(2, &["learning rate inf", "positive finite number"]);
}

#[test]
fn a_resumed_run_keeps_the_data_limits_of_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.bnn");
    let data = arg(&mnist_dir());
    let base = [
        "train",
        "--hidden",
        "16",
        "--batch",
        "50",
        "--validation",
        "100",
        "--progress",
        "none",
        "--data",
        &data,
        "--no-fetch",
    ];
    let mut first: Vec<&str> = base.to_vec();
    let out_arg = arg(&out);
    first.extend_from_slice(&[
        "--limit-train",
        "600",
        "--limit-test",
        "200",
        "--epochs",
        "1",
        "-o",
        &out_arg,
    ]);
    let mut cmd = bnn_args(&first);
    cmd.env("RAYON_NUM_THREADS", "1");
    finish(cmd, None).ok();
    let ckpt = arg(&out.with_extension("ckpt"));

    let resume = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--resume",
            &ckpt,
            "--epochs",
            "2",
            "--progress",
            "none",
            "--data",
            &data,
            "--no-fetch",
            "-o",
            &out_arg,
        ];
        args.extend_from_slice(extra);
        let mut cmd = bnn_args(&args);
        cmd.env("RAYON_NUM_THREADS", "1");
        finish(cmd, None)
    };
    resume(&["--limit-train", "700"]).fails(
        2,
        &[
            "--limit-train 700",
            "--limit-train 600",
            "leave --limit-train out",
        ],
    );
    resume(&["--limit-test", "300"]).fails(2, &["--limit-test 300", "--limit-test 200"]);
    // Resumed without limits, it goes on with the checkpoint's: the model
    // says which data it saw.
    resume(&[]).ok();
    let info = run(["info", &out_arg]);
    let text = info.ok();
    assert!(
        text.contains("first 600 training images") && text.contains("first 200 test images"),
        "{text}"
    );
    // Naming the same limits again is accepted.
    resume(&["--limit-train", "600"]).ok();
    // A knob the checkpoint fixes is named, not left for the user to find.
    resume(&["--batch", "50", "--hidden", "32"])
        .fails(2, &["--batch: with --resume", "only --epochs"]);
    resume(&["--no-bn"]).fails(2, &["--no-bn: with --resume"]);
}

// ---------------------------------------------------------------- export

#[test]
fn export_names_that_shadow_a_c_header_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = arg(&seed_model());
    for name in ["stdint", "assert", "STDIO"] {
        run([
            "export",
            &model,
            "--format",
            "c",
            "-o",
            &arg(&out),
            "--name",
            name,
        ])
        .fails(2, &[name, "would shadow the standard C header"]);
    }
    assert!(!out.exists());
}

// ---------------------------------------------------------------- wording

#[test]
fn messages_that_misled_now_say_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let model = arg(&seed_model());

    // A text PGM whose pixel data stops early: not a "truncated header".
    let mut text = b"P2\n28 28\n255\n".to_vec();
    text.extend(std::iter::repeat_n(b"7 ".as_slice(), 700).flatten());
    let pgm = write(dir.path(), "short.pgm", &text);
    run(["classify", &model, &arg(&pgm)]).fails(
        1,
        &[&arg(&pgm), "784 samples, found 700", "truncated pixel data"],
    );

    // A PNG with a damaged checksum: the chunk by name, no Rust Debug text.
    let mut png = common::gray_png(28, 28, random_images(1, 5).image(0));
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    let len = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
    png[idat + 4 + len] ^= 0x55;
    let png = write(dir.path(), "bad.png", &png);
    let r = run(["classify", &model, &arg(&png)]);
    r.fails(1, &[&arg(&png), "CRC error", "IDAT chunk"]);
    assert!(!r.stderr.contains("ChunkType {"), "{}", r.stderr);

    // A full disk behind stdout: the error says where the write went.
    let full = char_device(dir.path(), "full", 7);
    let mut cmd = bnn_args(&["info", &model]);
    cmd.stdout(std::fs::File::create(&full).unwrap());
    let out = cmd.output().unwrap();
    let r = Run::from_output(out);
    r.fails(1, &["standard output", "No space left on device"]);

    // eval needs only the test files.
    let only_test = dir.path().join("mnist");
    std::fs::create_dir(&only_test).unwrap();
    let mut labels = PathBuf::new();
    for stem in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        // Raw or gzip, as the data set was fetched.
        let name = [stem.to_string(), format!("{stem}.gz")]
            .into_iter()
            .find(|n| mnist_dir().join(n).is_file())
            .expect("mnist_dir checked the files");
        labels = only_test.join(&name);
        std::os::unix::fs::symlink(mnist_dir().join(&name), &labels).unwrap();
    }
    let r = run(["eval", &model, "--data", &arg(&only_test), "--no-fetch"]);
    assert!(r.ok().contains("accuracy"), "{}", r.stdout);
    std::fs::remove_file(&labels).unwrap();
    let r = run(["eval", &model, "--data", &arg(&only_test), "--no-fetch"]);
    r.fails(1, &["MNIST not found", "t10k-labels-idx1-ubyte"]);
    assert!(!r.stderr.contains("train-images"), "{}", r.stderr);
}

// ---------------------------------------------------------------- terminal

/// Fails if `text` holds a byte a terminal acts on (ESC, CR, BEL...).
fn assert_no_control_bytes(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what} holds raw {bad:?}:\n{text:?}");
}

/// A model's description, its file name in `bench`'s tables and logs, and a
/// file name quoted in an error come from whoever made the file: their
/// control bytes are printed escaped, never sent to the terminal.
#[test]
fn text_from_a_file_never_reaches_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let model = seed_model();
    let loaded = bnn_core::format::load(&model).unwrap().model;
    let evil = dir.path().join("described.bnn");
    let description = "title\x1b]0;owned\x07 wiped\r\x1b[2J\nnext line \u{9b}31m done";
    bnn_core::format::save(&loaded, description, &evil).unwrap();
    let info = run(["info", &arg(&evil)]);
    let text = info.ok();
    assert_no_control_bytes("bnn info", text);
    assert!(
        text.contains(
            "description     title\\u{1b}]0;owned\\u{7} wiped\\r\\u{1b}[2J next line \\u{9b}31m done\n"
        ),
        "{text}"
    );

    // A file name in an error.
    let named = write(dir.path(), "bad\x1b[31m\r.bnn", b"not a model");
    let r = run(["info", &arg(&named)]);
    r.fails(1, &["bad\\u{1b}[31m\\r.bnn"]);
    assert_no_control_bytes("the error", &r.stderr);

    // A model's file name in bench's tables and progress lines (a small
    // stand-in for the MNIST test set: only the names are checked).
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let images = random_images(100, 3);
    write(
        &data,
        "t10k-images-idx3-ubyte",
        &idx_bytes(0x0803, [100, 28, 28], &images.pixels),
    );
    let labels: Vec<u8> = (0..100).map(|i| i % 10).collect();
    write(
        &data,
        "t10k-labels-idx1-ubyte",
        &idx_bytes(0x0801, [100], &labels),
    );
    let named = dir.path().join("s\x1b[31m.bnn");
    std::fs::copy(&model, &named).unwrap();
    let bench = run([
        "bench",
        &arg(&named),
        "--repeat",
        "1",
        "--single",
        "5",
        "--threads",
        "1",
        "--data",
        &arg(&data),
        "--no-fetch",
    ]);
    let table = bench.ok();
    assert_no_control_bytes("bench's stdout", table);
    assert_no_control_bytes("bench's stderr", &bench.stderr);
    assert!(table.contains("| s\\u{1b}[31m.bnn | 1-bit |"), "{table}");
}

// ------------------------------------------------- stdout and stderr failing

/// `bnn train` for one quick epoch on `data` into `out`, logging every epoch.
fn quick_train(data: &Path, out: &Path, progress: &str) -> Command {
    let mut cmd = bnn();
    cmd.args(["train", "--recipe", "bn", "--hidden", "16", "--epochs", "2"])
        .args(["--batch", "20", "--validation", "20", "--no-fetch"])
        .args(["--progress", progress, "--no-checkpoint", "--data"])
        .arg(data)
        .arg("-o")
        .arg(out);
    cmd
}

/// Runs `cmd` with stdout and stderr pipes whose reader has already left,
/// as in `bnn ... 2>&1 | head -c 100` once `head` is done: every write
/// fails with EPIPE. Returns the exit code.
fn with_readers_gone(mut cmd: Command) -> i32 {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot start the bnn binary");
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().unwrap().code().unwrap_or(-1)
}

fn assert_model(path: &Path) {
    bnn_core::format::load(path)
        .unwrap_or_else(|e| panic!("{}: no model was written: {e}", path.display()));
}

#[test]
fn a_failing_stderr_or_stdout_never_loses_the_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = common::small_mnist(dir, 100, 40);
    let full = char_device(dir, "full", 7);
    let open_full = || std::fs::OpenOptions::new().write(true).open(&full).unwrap();

    // Progress on a full stderr: the training goes on to its model.
    let model = dir.join("a.bnn");
    let mut cmd = quick_train(&data, &model, "log");
    cmd.stderr(open_full());
    let r = Run::from_output(cmd.output().unwrap());
    assert!(r.ok().contains("best epoch"), "{}", r.stdout);
    assert_model(&model);

    // A reader that left (`2>&1 | head -c 100`), with log lines or bars.
    for (progress, name) in [("log", "b.bnn"), ("bar", "c.bnn")] {
        let model = dir.join(name);
        let code = with_readers_gone(quick_train(&data, &model, progress));
        assert_eq!(code, 0, "--progress {progress} with its readers gone");
        assert_model(&model);
    }

    // A FIFO whose reader leaves after the first bytes.
    let pipe = fifo(dir, "fifo");
    let reader = {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::open(pipe).unwrap();
            let mut first = [0u8; 16];
            f.read_exact(&mut first).unwrap();
        })
    };
    let model = dir.join("d.bnn");
    let mut cmd = quick_train(&data, &model, "log");
    cmd.stderr(std::fs::OpenOptions::new().write(true).open(&pipe).unwrap());
    let r = Run::from_output(cmd.output().unwrap());
    reader.join().unwrap();
    assert_eq!(r.code, 0, "stdout:\n{}", r.stdout);
    assert_model(&model);

    // A full stdout loses the summary only: the model is the result.
    let model = dir.join("e.bnn");
    let mut cmd = quick_train(&data, &model, "none");
    cmd.stdout(open_full());
    let r = Run::from_output(cmd.output().unwrap());
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    common::assert_no_panic(&r.stderr);
    assert!(
        r.stderr
            .contains("warning: standard output: No space left on device"),
        "{}",
        r.stderr
    );
    assert_model(&model);

    // bench logs its progress on stderr; a full one does not stop it.
    let seed = arg(&seed_model());
    let json = dir.join("bench.json");
    let mut cmd = bnn_args(&["bench", &seed, "--repeat", "1", "--single", "5"]);
    cmd.args(["--threads", "1", "--no-fetch", "--data", &arg(&data)])
        .args(["--json", &arg(&json)])
        .stderr(open_full());
    let r = Run::from_output(cmd.output().unwrap());
    assert!(r.ok().contains("Speed-up"), "{}", r.stdout);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["images"], 40);

    // classify -o: the results are complete, so the run is a success.
    let images = data.join("t10k-images-idx3-ubyte");
    let out = dir.join("res.csv");
    let mut cmd = bnn_args(&["classify", &seed, &arg(&images), "-o", &arg(&out)]);
    cmd.stderr(open_full());
    Run::from_output(cmd.output().unwrap()).ok();
    let want = run(["classify", &seed, &arg(&images)]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want.ok());
}
