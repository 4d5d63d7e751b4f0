//! `bnn classify` streams: an IDX file far larger than the chunk it reads
//! is classified in bounded memory, with every row present and right.
//!
//! The image count is `BNN_STREAM_IMAGES` (default 1,000,000: a 784 MB
//! file); set it lower for a quick local run. Run with `--nocapture` to see
//! the measured peak memory and throughput.

mod common;

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{arg, assert_no_panic, load_seed, parse_csv, seed_model, SplitMix};

/// Peak resident memory allowed: the classifier holds one chunk of 65,536
/// images (51 MB of pixels) plus its scores, never the whole file.
const MAX_PEAK_RSS_MB: f64 = 400.0;

/// Images per generation batch when writing the file.
const WRITE_BATCH: usize = 4096;

fn image_count() -> usize {
    match std::env::var("BNN_STREAM_IMAGES") {
        Ok(v) => v
            .trim()
            .replace(['_', ','], "")
            .parse()
            .ok()
            .filter(|&n: &usize| n > 0 && n <= u32::MAX as usize)
            .unwrap_or_else(|| panic!("BNN_STREAM_IMAGES={v:?} is not a positive image count")),
        Err(_) => 1_000_000,
    }
}

/// Image `i`, the same every time, so rows can be checked without keeping
/// the file's contents.
fn image(i: usize, out: &mut [u8]) {
    SplitMix(0x5EED_0000_0000 ^ i as u64).fill(out);
}

/// Writes an IDX3 file of `n` generated images, a batch at a time.
fn write_idx(path: &Path, n: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = BufWriter::with_capacity(1 << 22, file);
    w.write_all(&0x0803u32.to_be_bytes()).unwrap();
    for d in [n as u32, 28, 28] {
        w.write_all(&d.to_be_bytes()).unwrap();
    }
    let mut batch = vec![0u8; WRITE_BATCH * 784];
    let mut done = 0;
    while done < n {
        let k = WRITE_BATCH.min(n - done);
        for (j, img) in batch[..k * 784].chunks_exact_mut(784).enumerate() {
            image(done + j, img);
        }
        w.write_all(&batch[..k * 784]).unwrap();
        done += k;
    }
    w.into_inner().unwrap().sync_all().unwrap();
}

/// The child's peak resident set in kB and its stderr, measured by
/// `/usr/bin/time -v` where present, else by polling `VmHWM`.
fn run_measured(args: &[String]) -> (u64, String, i32) {
    let time = Path::new("/usr/bin/time");
    let bin = env!("CARGO_BIN_EXE_bnn");
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.arg("-v").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    // BNN_KERNEL passes through, as for every other run of the binary.
    cmd.args(args)
        .env_remove("RAYON_NUM_THREADS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start bnn");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = BufReader::new(stderr).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let mut polled_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if !time.is_file() {
            if let Some(kb) = vm_hwm_kb(child.id()) {
                polled_kb = polled_kb.max(kb);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = reader.join().unwrap();
    let peak_kb = if time.is_file() {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS in /usr/bin/time output:\n{stderr}"))
    } else {
        assert!(polled_kb > 0, "could not read the child's VmHWM");
        polled_kb
    };
    (peak_kb, stderr, status.code().unwrap_or(-1))
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_huge_idx_file_streams_in_bounded_memory() {
    let n = image_count();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge-idx3-ubyte");
    let output = dir.path().join("out.csv");

    let started = Instant::now();
    write_idx(&input, n);
    let generated = started.elapsed().as_secs_f64();
    let file_mb = std::fs::metadata(&input).unwrap().len() as f64 / 1e6;

    let started = Instant::now();
    let (peak_kb, stderr, code) = run_measured(&[
        "classify".into(),
        arg(&seed_model()),
        arg(&input),
        "-o".into(),
        arg(&output),
    ]);
    let seconds = started.elapsed().as_secs_f64();
    assert_no_panic(&stderr);
    assert_eq!(code, 0, "bnn classify failed:\n{stderr}");
    let peak_mb = peak_kb as f64 / 1024.0;
    eprintln!(
        "stream: {n} images ({file_mb:.0} MB) written in {generated:.1} s; classified in {seconds:.1} s \
         = {:.0} images/s ({:.0} MB/s); peak RSS {peak_mb:.1} MiB",
        n as f64 / seconds,
        file_mb / seconds
    );
    if let Some(line) = stderr.lines().find(|l| l.starts_with("classified")) {
        eprintln!("stream: bnn says: {line}");
    }
    assert!(
        peak_mb < MAX_PEAK_RSS_MB,
        "peak RSS {peak_mb:.1} MiB is not below {MAX_PEAK_RSS_MB} MiB: classify does not stream"
    );

    // Every row is there, in order; rows around chunk boundaries and at the
    // ends hold the library's answer for the image generated at that index.
    let chunk = 1usize << 16;
    let mut samples: Vec<usize> = [0, 1, chunk - 1, chunk, chunk + 1, n / 2, n - 2, n - 1]
        .into_iter()
        .filter(|&i| i < n)
        .collect();
    samples.sort_unstable();
    samples.dedup();
    let file = std::fs::File::open(&output).unwrap();
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let header = lines.next().expect("empty output").unwrap();
    let mut kept = vec![header];
    let mut rows = 0usize;
    let name = arg(&input);
    for line in lines {
        let line = line.unwrap();
        if samples.binary_search(&rows).is_ok() {
            kept.push(line);
        } else {
            // Cheap check of every row's position: source then index.
            let mut f = line.splitn(3, ',');
            assert_eq!(f.next(), Some(name.as_str()), "row {rows}: {line}");
            assert_eq!(
                f.next(),
                Some(rows.to_string().as_str()),
                "row {rows}: {line}"
            );
        }
        rows += 1;
    }
    assert_eq!(
        rows + 1,
        n + 1,
        "the CSV has a header and one line per image"
    );

    let parsed = parse_csv(&kept.join("\n"));
    let mut pixels = vec![0u8; samples.len() * 784];
    for (k, &i) in samples.iter().enumerate() {
        image(i, &mut pixels[k * 784..(k + 1) * 784]);
        assert_eq!(parsed[k].index, i);
    }
    let model = load_seed();
    common::assert_rows_match(&parsed, &model, &pixels);
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 2, "only the input and out.csv remain");
}
