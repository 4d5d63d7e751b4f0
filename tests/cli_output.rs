//! Output paths through the real binary: whatever `-o` names, nothing that
//! was there is damaged. Devices and FIFOs are written through (the tests
//! make their own with `mknod`/`mkfifo`, never touching the system's), a
//! symlink is followed, permissions are kept, an input is never an output,
//! an interrupted run leaves no temporary, `export --force` deletes only
//! what an export wrote, `train` and `bench` check their paths before any
//! work, and a closed stdout is an error while a closed pipe is not.
//!
//! Device nodes need root; a test that cannot make one fails saying so.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bnn_testkit::files::listing;
use common::{arg, bnn, idx_bytes, mnist_dir, random_images, run, seed_model, seed_npz, Run};

/// A copy of the seed model, so that no test can damage the committed one.
fn model_in(dir: &Path) -> PathBuf {
    let path = dir.join("model.bnn");
    fs::copy(seed_model(), &path).unwrap();
    path
}

/// An IDX file of `n` random images.
fn idx_in(dir: &Path, name: &str, n: usize) -> PathBuf {
    let images = random_images(n, 7);
    let path = dir.join(name);
    fs::write(&path, idx_bytes(0x803, [n as u32, 28, 28], &images.pixels)).unwrap();
    path
}

/// A raw IDX header claiming `n` all-zero images, the data a sparse hole:
/// gigabytes to classify that take no disk space.
fn sparse_idx_in(dir: &Path, name: &str, n: u64) -> PathBuf {
    let path = dir.join(name);
    let file = File::create(&path).unwrap();
    let header = idx_bytes(0x803, [n as u32, 28, 28], &[]);
    std::io::Write::write_all(&mut &file, &header).unwrap();
    file.set_len(16 + n * 784).unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A character device node of our own, open to every user (`mknod -m MODE`).
fn mknod(dir: &Path, name: &str, major: u32, minor: u32, mode: &str) -> PathBuf {
    let path = bnn_testkit::special::char_device(dir, name, major, minor);
    let mode = u32::from_str_radix(mode, 8).expect("an octal mode");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn is_char_device(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_char_device()
}

fn classify(model: &Path, input: &Path, out: &Path) -> Run {
    run(["classify", &arg(model), &arg(input), "-o", &arg(out)])
}

/// What `classify` prints to stdout for `input`: what every output must hold.
fn expected_csv(model: &Path, input: &Path) -> String {
    run(["classify", &arg(model), &arg(input)]).ok().to_string()
}

#[test]
fn devices_and_fifos_are_written_through_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 50);
    let want = expected_csv(&model, &input);

    let null = mknod(dir, "null", 1, 3, "666");
    classify(&model, &input, &null).ok();
    assert!(is_char_device(&null), "{} was replaced", null.display());

    // A full disk is an error naming the output, exit 1.
    let full = mknod(dir, "full", 1, 7, "666");
    classify(&model, &input, &full).fails(1, &[&arg(&full), "No space left on device"]);
    assert!(is_char_device(&full), "{} was replaced", full.display());

    let fifo = bnn_testkit::special::fifo(dir, "fifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    classify(&model, &input, &fifo).ok();
    assert_eq!(reader.join().unwrap(), want);
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // Other writers follow the same rules: a model written to the devices.
    let npz = arg(&seed_npz());
    run(["import-npz", &npz, "-o", &arg(&null)]).ok();
    run(["import-npz", &npz, "-o", &arg(&full)])
        .fails(1, &[&arg(&full), "No space left on device"]);
    assert!(is_char_device(&null) && is_char_device(&full));

    // Nothing was created beside them.
    assert_eq!(listing(dir), ["fifo", "full", "model.bnn", "null", "x.idx"]);
}

#[test]
fn stdout_by_its_descriptor_path_is_appended_to() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 20);
    let want = expected_csv(&model, &input);
    // `bnn classify ... -o /proc/self/fd/1 >> log`: the log keeps its start.
    let log = dir.join("log");
    fs::write(&log, "kept\n").unwrap();
    let stdout = OpenOptions::new().append(true).open(&log).unwrap();
    let out = bnn()
        .args([
            "classify",
            &arg(&model),
            &arg(&input),
            "-o",
            "/proc/self/fd/1",
        ])
        .stdout(stdout)
        .output()
        .unwrap();
    let result = Run::from_output(out);
    result.ok();
    assert_eq!(fs::read_to_string(&log).unwrap(), format!("kept\n{want}"));
    assert_eq!(listing(dir), ["log", "model.bnn", "x.idx"]);
}

#[test]
fn an_ordinary_user_can_write_to_a_device_in_a_directory_it_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 20);
    let null = mknod(dir, "null", 1, 3, "666");
    let full = mknod(dir, "full", 1, 7, "666");
    // The binary beside them: the checkout may lie where nobody cannot go.
    let binary = dir.join("bnn");
    fs::hard_link(env!("CARGO_BIN_EXE_bnn"), &binary)
        .or_else(|_| fs::copy(env!("CARGO_BIN_EXE_bnn"), &binary).map(drop))
        .unwrap();
    let as_nobody = |out: &Path| {
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&binary)
            .args(["classify", &arg(&model), &arg(&input), "-o", &arg(out)])
            .env_remove("BNN_KERNEL")
            .env_remove("RAYON_NUM_THREADS")
            .current_dir(dir)
            .output()
            .expect("setpriv (Debian package util-linux) is needed by this test");
        Run::from_output(output)
    };
    as_nobody(&null).ok();
    as_nobody(&full).fails(1, &[&arg(&full), "No space left on device"]);
    // A regular file there is refused (the directory is not theirs) with
    // the path named, and nothing is left behind.
    let file = dir.join("out.csv");
    as_nobody(&file).fails(1, &[&arg(&file), "Permission denied"]);
    assert!(is_char_device(&null) && is_char_device(&full));
    assert_eq!(listing(dir), ["bnn", "full", "model.bnn", "null", "x.idx"]);
}

#[test]
fn a_symlink_is_followed_and_its_target_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 20);
    let want = expected_csv(&model, &input);
    fs::create_dir(dir.join("results")).unwrap();
    let target = dir.join("results/today.csv");
    fs::write(&target, "old").unwrap();
    let link = dir.join("latest.csv");
    std::os::unix::fs::symlink("results/today.csv", &link).unwrap();
    classify(&model, &input, &link).ok();
    let meta = fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("results/today.csv")
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), want);
    assert_eq!(listing(&dir.join("results")), ["today.csv"]);
}

#[test]
fn permission_bits_are_kept_and_new_files_get_the_umask_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 10);
    let out = dir.join("out.csv");
    fs::write(&out, "old").unwrap();
    for bits in [0o640, 0o600, 0o664] {
        fs::set_permissions(&out, fs::Permissions::from_mode(bits)).unwrap();
        classify(&model, &input, &out).ok();
        assert_eq!(mode(&out), bits, "{bits:o} became {:o}", mode(&out));
    }
    // The child inherits this process's umask: a new output gets the mode a
    // plain create gives here.
    let plain = dir.join("plain");
    File::create(&plain).unwrap();
    let fresh = dir.join("fresh.csv");
    classify(&model, &input, &fresh).ok();
    assert_eq!(mode(&fresh), mode(&plain));
}

#[test]
fn an_input_is_never_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 10);
    let images = dir.join("images");
    fs::create_dir(&images).unwrap();
    let mut pgm = b"P5 28 28 255\n".to_vec();
    pgm.extend(random_images(1, 3).pixels);
    let image = images.join("a.pgm");
    fs::write(&image, &pgm).unwrap();
    let hard = dir.join("hard.idx");
    fs::hard_link(&input, &hard).unwrap();
    let soft = dir.join("soft.bnn");
    std::os::unix::fs::symlink(&model, &soft).unwrap();
    let before: Vec<Vec<u8>> = [&model, &input, &image]
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();

    classify(&model, &input, &input).fails(2, &[&arg(&input), "same file as the input"]);
    classify(&model, &input, &hard).fails(2, &[&arg(&hard), "same file as the input"]);
    classify(&model, &input, &model).fails(2, &[&arg(&model), "same file as the input"]);
    classify(&model, &input, &soft).fails(2, &[&arg(&soft), "same file as the input"]);
    // An image found in an input directory is an input too.
    classify(&model, &images, &image).fails(2, &[&arg(&image), "same file as the input"]);

    let after: Vec<Vec<u8>> = [&model, &input, &image]
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert!(before == after, "an input was changed");
    assert_eq!(
        listing(dir),
        ["hard.idx", "images", "model.bnn", "soft.bnn", "x.idx"]
    );

    // import-npz: the weights are not replaced by the model made from them.
    let npz = dir.join("w.npz");
    fs::copy(seed_npz(), &npz).unwrap();
    let bytes = fs::read(&npz).unwrap();
    run(["import-npz", &arg(&npz), "-o", &arg(&npz)])
        .fails(2, &[&arg(&npz), "same file as the input"]);
    assert!(fs::read(&npz).unwrap() == bytes, "the .npz was changed");
}

/// Sends `signal` to a `classify -o` writing a long output and checks that
/// the old output survives and no temporary is left.
fn interrupt_classify(signal: &str, number: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    // 4 million images: minutes of work, however fast the machine.
    let input = sparse_idx_in(dir, "big.idx", 4_000_000);
    let out = dir.join("out.csv");
    fs::write(&out, "old results\n").unwrap();
    let mut child = bnn()
        .args(["classify", &arg(&model), &arg(&input), "-o", &arg(&out)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the bnn binary");
    // Wait until the temporary output holds rows.
    let started = Instant::now();
    let temporary = loop {
        let growing = fs::read_dir(dir).unwrap().find_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (name.starts_with(".out.csv.") && len > 0).then_some(name)
        });
        if let Some(name) = growing {
            break name;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("classify ended ({status}) before it could be interrupted");
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("no temporary output appeared in 300 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("kill (Debian package procps) is needed by this test");
    assert!(sent.success());
    let result = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(
        result.code,
        128 + number,
        "SIG{signal} should end classify with {}; stderr:\n{}",
        128 + number,
        result.stderr
    );
    common::assert_no_panic(&result.stderr);
    assert_eq!(
        listing(dir),
        ["big.idx", "model.bnn", "out.csv"],
        "SIG{signal} left {temporary} or another file behind"
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "old results\n");
}

#[test]
fn sigint_leaves_no_temporary_and_the_old_output() {
    interrupt_classify("INT", 2);
}

#[test]
fn sigterm_leaves_no_temporary_and_the_old_output() {
    interrupt_classify("TERM", 15);
}

#[test]
fn sighup_leaves_no_temporary_and_the_old_output() {
    interrupt_classify("HUP", 1);
}

#[test]
fn every_other_catchable_terminating_signal_leaves_no_temporary() {
    // Each of these ends a process by default; before, each left the
    // temporary behind. (`kill -s ALRM` is what `timeout -s ALRM` sends.)
    for (signal, number) in [
        ("QUIT", 3),
        ("USR1", 10),
        ("USR2", 12),
        ("ALRM", 14),
        ("XCPU", 24),
        ("VTALRM", 26),
        ("PWR", 30),
        // SIGRTMIN, by number: procps `kill` has no name for it.
        ("34", 34),
    ] {
        interrupt_classify(signal, number);
    }
}

/// The first temporary output of `out` in `dir` that holds bytes.
fn growing_temporary(dir: &Path, out: &str, child: &mut std::process::Child) -> String {
    let started = Instant::now();
    loop {
        let growing = fs::read_dir(dir).unwrap().find_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (name.starts_with(&format!(".{out}.")) && len > 0).then_some(name)
        });
        if let Some(name) = growing {
            return name;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("bnn ended ({status}) before it could be killed");
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("no temporary output appeared in 300 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_temporary_left_by_sigkill_does_not_block_the_next_run_with_the_same_pid() {
    // In a container every run may be PID 1: a run killed by SIGKILL (which
    // no handler sees) leaves its temporary, and the next run, with the
    // same PID, must still write. `unshare --pid --fork` gives each run PID 1.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let big = sparse_idx_in(dir, "big.idx", 4_000_000);
    let as_pid_1 = |input: &Path| {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child", "--"])
            .arg(env!("CARGO_BIN_EXE_bnn"))
            .args(["classify", &arg(&model), &arg(input), "-o", "out.csv"])
            .env_remove("RAYON_NUM_THREADS")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut first = as_pid_1(&big)
        .spawn()
        .expect("unshare (Debian package util-linux) is needed by this test");
    let stale = growing_temporary(dir, "out.csv", &mut first);
    assert!(
        stale.starts_with(".out.csv.1."),
        "not run as PID 1: {stale}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(dir.join(&stale).exists(), "SIGKILL left no temporary");

    let small = idx_in(dir, "x.idx", 20);
    let second = Run::from_output(as_pid_1(&small).output().unwrap());
    second.ok();
    assert_eq!(
        fs::read_to_string(dir.join("out.csv")).unwrap(),
        expected_csv(&model, &small)
    );
    // The stale file is not this run's to remove.
    assert_eq!(
        listing(dir),
        [stale.as_str(), "big.idx", "model.bnn", "out.csv", "x.idx"]
    );
}

#[test]
fn export_force_replaces_only_an_earlier_export() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let out = dir.join("c");
    let export = |force: bool| {
        let mut args = vec![
            "export".to_string(),
            arg(&model),
            "--format".into(),
            "c".into(),
        ];
        args.extend(["-o".into(), arg(&out)]);
        if force {
            args.push("--force".into());
        }
        run(args)
    };
    export(false).ok();
    let exported = listing(&out);
    assert_eq!(exported, ["bnn.c", "bnn.h", "manifest.txt"]);
    export(true).ok();

    fs::write(out.join("thesis.txt"), "four years of work").unwrap();
    export(true).fails(1, &[&arg(&out), "thesis.txt", "refusing"]);
    assert_eq!(
        fs::read_to_string(out.join("thesis.txt")).unwrap(),
        "four years of work"
    );
    fs::remove_file(out.join("thesis.txt")).unwrap();

    fs::create_dir(out.join("src")).unwrap();
    fs::write(out.join("src/main.c"), "int main(void) { return 0; }").unwrap();
    export(true).fails(1, &[&arg(&out), "src", "refusing"]);
    assert!(out.join("src/main.c").is_file());
    assert!(
        out.join("bnn.c").is_file(),
        "the refused export touched the old one"
    );
    fs::remove_dir_all(out.join("src")).unwrap();

    export(true).ok();
    assert_eq!(listing(&out), exported);
    assert_eq!(listing(dir), ["c", "model.bnn"]);
}

/// `bnn train` with no data where it looks: if a path check let it through,
/// it would fail on the missing data instead (or fetch it).
fn train(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "train".to_string(),
        "--no-fetch".into(),
        "--data".into(),
        arg(&dir.join("no-data")),
        "--progress".into(),
        "none".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(args)
}

#[test]
fn train_refuses_bad_output_paths_before_loading_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let at = |name: &str| arg(&dir.join(name));
    // `-o m.json`: the report would overwrite the model.
    train(dir, &["-o", &at("m.json")]).fails(2, &[&at("m.json"), "model", "report"]);
    train(dir, &["-o", &at("m.svg")]).fails(2, &[&at("m.svg"), "model", "chart"]);
    train(dir, &["-o", &at("m.ckpt")]).fails(2, &[&at("m.ckpt"), "model", "checkpoint"]);
    train(dir, &["-o", &at("m.bnn"), "--checkpoint", &at("m.json")])
        .fails(2, &[&at("m.json"), "report", "checkpoint"]);
    // Not writable: a directory in the way, a missing directory.
    fs::create_dir(dir.join("m.svg")).unwrap();
    train(dir, &["-o", &at("m.bnn")]).fails(2, &[&at("m.svg"), "is a directory"]);
    train(dir, &["-o", &at("none/m.bnn")]).fails(2, &[&at("none/m.bnn"), "does not exist"]);
    // Good paths get as far as the data, which is missing.
    fs::remove_dir(dir.join("m.svg")).unwrap();
    train(dir, &["-o", &at("m.bnn")]).fails(1, &["MNIST not found"]);
    assert!(listing(dir).is_empty(), "{:?}", listing(dir));
}

#[test]
fn bench_checks_its_output_paths_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench".to_string(),
            arg(&model),
            "--no-fetch".into(),
            "--data".into(),
            arg(&dir.join("no-data")),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        run(args)
    };
    let at = |name: &str| arg(&dir.join(name));
    bench(&["--json", &at("r.out"), "--chart", &at("r.out")])
        .fails(2, &[&at("r.out"), "--json", "--chart"]);
    bench(&["--json", &arg(&model)]).fails(2, &[&arg(&model), "same file as the input"]);
    bench(&["--chart", &at("none/c.svg")]).fails(2, &[&at("none/c.svg"), "does not exist"]);
    bench(&["--json", dir.to_str().unwrap()]).fails(2, &["is a directory"]);
    // Good paths get as far as the data, which is missing.
    bench(&["--json", &at("r.json")]).fails(1, &["MNIST not found"]);
    assert_eq!(listing(dir), ["model.bnn"]);
}

#[test]
fn no_command_writes_over_the_data_it_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let data = common::small_mnist(dir, 20, 20);
    let files = listing(&data);
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(data.join(f)).unwrap())
        .collect();
    let images = data.join("t10k-images-idx3-ubyte");
    let labels = data.join("t10k-labels-idx1-ubyte");
    let bench = |flag: &str, out: &Path| {
        run([
            "bench",
            &arg(&model),
            "--no-fetch",
            "--data",
            &arg(&data),
            flag,
            &arg(out),
        ])
    };
    // The test images and labels bench reads, found in --data.
    bench("--chart", &images).fails(2, &[&arg(&images), "same file as the input"]);
    bench("--json", &labels).fails(2, &[&arg(&labels), "same file as the input"]);
    // Another spelling, and a link.
    let spelled = data.join("../mnist/t10k-images-idx3-ubyte");
    bench("--json", &spelled).fails(2, &["same file as the input"]);
    let link = dir.join("link.svg");
    std::os::unix::fs::symlink(&labels, &link).unwrap();
    bench("--chart", &link).fails(2, &[&arg(&link), "same file as the input"]);
    fs::remove_file(&link).unwrap();
    // The same for train: data files, labels and the checkpoint it resumes.
    let train_labels = data.join("train-labels-idx1-ubyte");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--no-fetch", "--progress", "none"];
        args.extend(["--data", data.to_str().unwrap()]);
        args.extend(extra);
        run(args)
    };
    let at = |name: &str| arg(&dir.join(name));
    train(&["-o", &at("m.bnn"), "--checkpoint", &arg(&train_labels)])
        .fails(2, &[&arg(&train_labels), "same file as the input"]);
    train(&["-o", &arg(&labels), "--no-checkpoint"])
        .fails(2, &[&arg(&labels), "same file as the input"]);
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(data.join(f)).unwrap())
        .collect();
    assert!(before == after, "a data file was changed");
    assert_eq!(listing(&data), files);
    assert_eq!(listing(dir), ["mnist", "model.bnn"]);
}

#[test]
fn every_output_is_checked_before_the_work_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 10);
    let (m, x) = (arg(&model), arg(&input));
    let at = |name: &str| arg(&dir.join(name));
    // A descriptor that is not open (the child inherits only 0, 1 and 2):
    // refused at once, not after the measuring or the training. With no
    // data in reach, a run that got further would fail on the data instead.
    let closed = "/dev/fd/93";
    let no_data = at("no-data");
    let bench = ["bench", &m, "--no-fetch", "--data", &no_data];
    for flag in ["--json", "--chart"] {
        let mut args = bench.to_vec();
        args.extend([flag, closed]);
        run(&args).fails(2, &[closed, "not an open file descriptor"]);
    }
    train(dir, &["-o", closed, "--no-checkpoint"])
        .fails(2, &[closed, "not an open file descriptor"]);
    train(dir, &["-o", &at("m.bnn"), "--checkpoint", closed])
        .fails(2, &[closed, "not an open file descriptor"]);
    run(["classify", &m, &x, "-o", closed]).fails(2, &[closed, "not an open file descriptor"]);
    // A socket cannot be opened as a file at all.
    let socket = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    run(["classify", &m, &x, "-o", &arg(&socket)]).fails(2, &[&arg(&socket), "is a socket"]);
    // import-npz checks its output before reading the weights.
    let npz = arg(&seed_npz());
    run(["import-npz", &npz, "-o", &at("none/m.bnn")])
        .fails(2, &[&at("none/m.bnn"), "does not exist"]);
    run(["import-npz", &npz, "-o", dir.to_str().unwrap()]).fails(2, &["is a directory"]);
    assert_eq!(listing(dir), ["model.bnn", "sock", "x.idx"]);
}

/// `bnn train` for one quick epoch on `data` (see `common::small_mnist`).
fn train_on(data: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "train", "--recipe", "bn", "--hidden", "16", "--epochs", "1", "--batch", "20",
    ];
    args.extend(["--validation", "20", "--progress", "none", "--no-fetch"]);
    args.extend(["--data", data.to_str().unwrap()]);
    args.extend(extra);
    run(args)
}

#[test]
fn a_model_trained_into_a_device_leaves_nothing_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = common::small_mnist(dir, 100, 40);
    let dev = dir.join("dev");
    fs::create_dir(&dev).unwrap();
    let null = mknod(&dev, "null", 1, 3, "666");
    let out = train_on(&data, &["-o", &arg(&null)]).ok().to_string();
    // No null.json, null.svg or null.ckpt in the device's directory.
    assert_eq!(listing(&dev), ["null"]);
    assert!(is_char_device(&null));
    // The summary says what went through, not the device's size (0).
    let model_bytes = {
        let kept = dir.join("kept.bnn");
        train_on(&data, &["-o", &arg(&kept), "--no-checkpoint"]).ok();
        fs::metadata(&kept).unwrap().len()
    };
    assert!(
        out.contains(&format!(
            ", {model_bytes} bytes written through a character device"
        )),
        "{out}"
    );
    assert!(!out.contains(" 0 bytes"), "{out}");
    assert!(out.contains("no report or chart"), "{out}");
    // Named by their flags, the companions are written.
    let at = |name: &str| arg(&dir.join(name));
    let out = train_on(
        &data,
        &[
            "-o",
            &arg(&null),
            "--report",
            &at("r.json"),
            "--chart",
            &at("c.svg"),
            "--checkpoint",
            &at("run.ckpt"),
        ],
    )
    .ok()
    .to_string();
    assert!(
        out.contains(&format!("report {}, chart {}", at("r.json"), at("c.svg"))),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(report["file_bytes"], model_bytes);
    assert!(fs::read_to_string(dir.join("c.svg"))
        .unwrap()
        .starts_with("<svg"));
    assert!(dir.join("run.ckpt").is_file());
    assert_eq!(listing(&dev), ["null"]);
    // A descriptor path is a special file too: nothing named /dev/fd/1.json.
    let out = train_on(&data, &["-o", "/dev/fd/2"]).ok().to_string();
    assert!(out.contains("bytes written through"), "{out}");
    assert_eq!(
        listing(dir),
        [
            "c.svg",
            "dev",
            "kept.bnn",
            "kept.json",
            "kept.svg",
            "mnist",
            "r.json",
            "run.ckpt"
        ]
    );
}

/// Runs `bnn ARGS` from a shell with stdout closed (`>&-`).
fn with_stdout_closed(args: &[&str]) -> Run {
    with_redirect(">&-", args)
}

#[test]
fn a_closed_stdout_is_an_error_and_a_closed_pipe_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 10);
    let (m, x) = (arg(&model), arg(&input));
    with_stdout_closed(&["classify", &m, &x]).fails(1, &["stdout is closed"]);
    with_stdout_closed(&["info", &m]).fails(1, &["stdout is closed"]);
    // An output file that names stdout is stdout, directly or by a link.
    with_stdout_closed(&["classify", &m, &x, "-o", "/dev/stdout"]).fails(1, &["stdout is closed"]);
    let link = dir.join("results.csv");
    std::os::unix::fs::symlink("/dev/fd/1", &link).unwrap();
    with_stdout_closed(&["classify", &m, &x, "-o", &arg(&link)]).fails(1, &["stdout is closed"]);
    let model_out = dir.join("to-stdout.bnn");
    std::os::unix::fs::symlink("/proc/self/fd/1", &model_out).unwrap();
    with_stdout_closed(&["import-npz", &arg(&seed_npz()), "-o", &arg(&model_out)])
        .fails(1, &["stdout is closed"]);
    // Commands whose results are files go on (their summary is lost).
    let npz = arg(&seed_npz());
    let imported = dir.join("imported.bnn");
    with_stdout_closed(&["import-npz", &npz, "-o", &arg(&imported)]).ok();
    assert!(imported.is_file());
    // With -o the results do not go to stdout.
    let out = dir.join("out.csv");
    with_stdout_closed(&["classify", &m, &x, "-o", &arg(&out)]).ok();
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        expected_csv(&model, &input)
    );
    // Our own null device as stdout is fine (it is not closed).
    let null = mknod(dir, "null", 1, 3, "666");
    let quiet = bnn()
        .args(["classify", &m, &x])
        .stdout(File::create(&null).unwrap())
        .output()
        .unwrap();
    Run::from_output(quiet).ok();

    // `bnn classify ... | head -1`: the reader leaves early, quietly.
    let big = sparse_idx_in(dir, "big.idx", 100_000);
    let mut child = bnn()
        .args(["classify", &m, &arg(&big)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("source,index,class"), "{first}");
    let result = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(result.code, 0, "stderr:\n{}", result.stderr);
    assert!(result.stderr.is_empty(), "stderr:\n{}", result.stderr);
}

#[test]
fn a_file_deep_in_the_way_is_named_and_long_paths_give_short_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 10);
    let (m, x) = (arg(&model), arg(&input));
    let notes = dir.join("notes.txt");
    fs::write(&notes, "keep").unwrap();
    // Two levels below a file: the file is what is wrong, not a missing
    // `notes.txt/a` (which used to be reported as not existing).
    for below in ["x.csv", "a/x.csv", "a/b/c/x.csv"] {
        let out = arg(&notes.join(below));
        run(["classify", &m, &x, "-o", &out])
            .fails(2, &[&out, &format!("{} is not a directory", arg(&notes))]);
    }
    // A name longer than the system takes: the error names it in one line
    // of at most 300 characters, its middle elided.
    let long = dir.join("y".repeat(256));
    let r = run(["classify", &m, &x, "-o", &arg(&long)]);
    r.fails(1, &[&arg(dir), "yyy…yyy", "File name too long"]);
    let line = r.stderr.trim_end();
    assert!(line.chars().count() <= 300, "{line}");
    assert_eq!(fs::read(&notes).unwrap(), b"keep");
    assert_eq!(listing(dir), ["model.bnn", "notes.txt", "x.idx"]);
}

/// `bnn ARGS` run by `sh` with `redirect` after it (`3< FILE`).
fn with_redirect(redirect: &str, args: &[&str]) -> Run {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("\"$0\" \"$@\" {redirect}"))
        .arg(env!("CARGO_BIN_EXE_bnn"))
        .args(args)
        .env_remove("BNN_KERNEL")
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .expect("sh is needed by this test");
    Run::from_output(out)
}

#[test]
fn a_descriptor_open_for_reading_is_not_written() {
    // `-o /dev/fd/3 3< notes.txt` reopened notes.txt writable through the
    // descriptor's link and appended the results to it; a shell's own
    // `>/dev/fd/3` fails there (EBADF).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    let input = idx_in(dir, "x.idx", 10);
    let (m, x) = (arg(&model), arg(&input));
    let notes = dir.join("notes.txt");
    fs::write(&notes, "keep").unwrap();
    let reading = format!("3< '{}'", arg(&notes));
    with_redirect(&reading, &["classify", &m, &x, "-o", "/dev/fd/3"])
        .fails(2, &["/dev/fd/3", "open for reading only"]);
    let stdin = format!("< '{}'", arg(&notes));
    with_redirect(&stdin, &["classify", &m, &x, "-o", "/dev/stdin"])
        .fails(2, &["/dev/stdin", "open for reading only"]);
    let npz = arg(&seed_npz());
    with_redirect(&reading, &["import-npz", &npz, "-o", "/dev/fd/3"])
        .fails(2, &["/dev/fd/3", "open for reading only"]);
    assert_eq!(fs::read(&notes).unwrap(), b"keep");
    // Open for reading and writing (`3<>`), it is written through.
    let both = format!("3<> '{}'", arg(&notes));
    with_redirect(&both, &["classify", &m, &x, "-o", "/dev/fd/3"]).ok();
    let text = fs::read_to_string(&notes).unwrap();
    assert!(text.starts_with("keepsource,index,class"), "{text}");
}

#[test]
fn bench_and_demo_with_a_closed_stdout_are_errors_unless_bench_writes_files() {
    // Their results are the tables they print: with stdout closed, bench
    // ran and demo ran for minutes, both exit 0, and every result was lost.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let m = arg(&model_in(dir));
    let data = arg(&mnist_dir());
    let quick = ["--data", &data, "--no-fetch", "--repeat", "1"];
    let bench: Vec<&str> = [
        &["bench", &m, "--single", "10", "--threads", "1"][..],
        &quick,
    ]
    .concat();
    with_stdout_closed(&bench).fails(1, &["stdout is closed"]);
    with_stdout_closed(&[&["demo"][..], &quick].concat()).fails(1, &["stdout is closed"]);
    // With --json the measurements are kept: the run goes on.
    let json = dir.join("bench.json");
    with_stdout_closed(&[&bench[..], &["--json", &arg(&json)]].concat()).ok();
    assert!(fs::read_to_string(&json).unwrap().contains("\"models\""));
}

#[test]
fn an_export_written_is_not_failed_by_its_summary() {
    // The export is the result, as a trained model is: a stdout that cannot
    // take the summary (a full disk) warns, and the run succeeds.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = model_in(dir);
    for format in ["c", "verilog"] {
        let out = dir.join(format);
        let run = bnn()
            .args(["export", &arg(&model), "--format", format, "-o", &arg(&out)])
            .stdout(File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let run = Run::from_output(run);
        assert_eq!(run.code, 0, "{format}: stderr:\n{}", run.stderr);
        assert!(
            run.stderr.contains("warning: standard output") && run.stderr.contains("were written"),
            "{format}: {}",
            run.stderr
        );
        assert!(out.join("manifest.txt").is_file(), "{format}");
    }
}
