//! The Verilog export simulated with Icarus Verilog: its own self-checking
//! testbench streams images back to back and must report every image's
//! class and every score bit equal to the engine's, with the latency and
//! interval the export states — for the shipped model on MNIST test images
//! at one and at 80 words per cycle, and for random networks (depth 1 to 4,
//! widths off the word size, flipped thresholds, both rules, both word
//! sizes) at several `--parallel` values. A tampered expectation or weight
//! must make the testbench fail.
//!
//! The same testbench also runs under Verilator (the tool of the
//! whole-test-set run, `scripts/verilate`), and a small export goes through
//! Yosys's Xilinx 7-series synthesis (the tool of `scripts/synth`), whose
//! statistics must show the weights in block RAM.
//!
//! Without Icarus Verilog, Verilator or Yosys these tests fail, naming the
//! command that installs it; `BNN_TEST_SKIP=iverilog,verilator,yosys` skips
//! them (see `bnn_testkit::need`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bnn_core::{DecisionRule, Model};
use bnn_export::verilog::Geometry;
use bnn_export::{Format, Options, Sizes, WordBits};
use bnn_testkit::models::{random_model, random_pixels, rng};
use bnn_testkit::need::{IVERILOG, MNIST, VERILATOR, YOSYS};
use common::run;

fn export_verilog(
    model: &Model,
    word: WordBits,
    parallel: usize,
    images: Option<&[u8]>,
    dir: &Path,
) -> (Geometry, usize) {
    let options = Options {
        format: Format::Verilog,
        name: "net".into(),
        word,
        force: false,
        inputs: Vec::new(),
        parallel,
    };
    let export = bnn_export::export(model, "test model", &options, images, dir).unwrap();
    match export.sizes {
        Sizes::Verilog {
            geometry,
            test_images,
        } => (geometry, test_images),
        other => panic!("Verilog export reported {other:?}"),
    }
}

#[derive(Debug)]
struct Sim {
    images: usize,
    pass: usize,
    fail: usize,
    latency_min: usize,
    latency_max: usize,
    interval: usize,
    output: String,
    elapsed: Duration,
}

/// Compiles (warnings are failures) and runs the testbench; parses RESULT.
fn simulate(dir: &Path, extra: &[&str]) -> Sim {
    let (out, err) = run(
        dir,
        "iverilog",
        &["-g2001", "-Wall", "-o", "sim", "net_tb.v", "net.v"],
    );
    assert!(
        out.is_empty() && err.is_empty(),
        "iverilog output:\n{out}{err}"
    );
    let started = Instant::now();
    let mut args = vec!["-n", "sim"];
    args.extend_from_slice(extra);
    let (output, _) = run(dir, "vvp", &args);
    Sim::parse(output, started.elapsed())
}

impl Sim {
    /// The testbench's RESULT line, from any simulator's output.
    fn parse(output: String, elapsed: Duration) -> Sim {
        let line = output
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .unwrap_or_else(|| panic!("no RESULT line:\n{output}"));
        let field = |name: &str| -> usize {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {line}"))
                .parse()
                .unwrap()
        };
        Sim {
            images: field("images"),
            pass: field("pass"),
            fail: field("fail"),
            latency_min: field("latency_min"),
            latency_max: field("latency_max"),
            interval: field("interval"),
            output,
            elapsed,
        }
    }
}

fn assert_all_pass(sim: &Sim, images: usize, g: &Geometry, what: &str) {
    assert_eq!(sim.images, images, "{what}: {}", sim.output);
    assert_eq!((sim.pass, sim.fail), (images, 0), "{what}: {}", sim.output);
    assert_eq!(
        (sim.latency_min, sim.latency_max),
        (g.latency(), g.latency()),
        "{what}: latency"
    );
    if images > 1 {
        assert_eq!(sim.interval, g.interval(), "{what}: interval");
    }
}

#[test]
fn shipped_model_matches_engine_on_mnist_images() {
    bnn_testkit::need!(IVERILOG, MNIST);
    let model = bnn_testkit::paths::load_seed();
    assert_eq!(model.shape(), vec![784, 512, 10]);
    let mnist = bnn_testkit::paths::mnist_test_images();
    // (word, parallel, images, lanes, interval, latency)
    let cases = [
        // 512 neurons × 13 words + 10 × 8, one word per cycle.
        (WordBits::W64, 1, 50, 1, 6741, 6755),
        (WordBits::W32, 1, 10, 1, 12964, 12977),
        // Whole rows of 13 words for 6 neurons at once: 86 + 2 cycles.
        (WordBits::W64, 80, 200, 78, 95, 111),
    ];
    for (word, parallel, images, lanes, interval, latency) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("v");
        let pixels = &mnist.pixels[..images * 784];
        let (g, count) = export_verilog(&model, word, parallel, Some(pixels), &dir);
        assert_eq!(count, images);
        assert_eq!(
            (g.lanes(), g.interval(), g.latency()),
            (lanes, interval, latency),
            "{word:?} P {parallel}"
        );
        let sim = simulate(&dir, &[]);
        assert_all_pass(&sim, images, &g, "shipped model");
        println!(
            "shipped model, {}-bit words, --parallel {parallel}: {images} MNIST images, interval {} cycles, latency {}, simulated in {:.1} s",
            word.bits(),
            sim.interval,
            sim.latency_max,
            sim.elapsed.as_secs_f64()
        );
    }
}

#[test]
fn random_networks_match_engine() {
    bnn_testkit::need!(IVERILOG);
    use DecisionRule::{Scores, Seed};
    use WordBits::{W32, W64};
    // The 70-150-130-5 case leaves hidden bits beyond the 70 input bits of
    // the next layer's rows; 9-3-40 has more classes than cycles of work,
    // so its starts are spaced by the serial score stage.
    /// Input length, widths, rule, input threshold, word, `--parallel` values.
    type Case = (
        usize,
        &'static [usize],
        DecisionRule,
        u8,
        WordBits,
        &'static [usize],
    );
    let cases: [Case; 10] = [
        (100, &[10], Scores, 128, W64, &[1, 2, 5]),
        (70, &[3], Seed, 128, W32, &[1, 4, 7]),
        (130, &[65, 4], Seed, 40, W64, &[1, 3, 8]),
        (130, &[65, 4], Scores, 200, W32, &[2, 6, 64]),
        (9, &[1, 1], Scores, 0, W64, &[1, 3]),
        (200, &[129, 31, 7], Scores, 255, W64, &[1, 5, 13]),
        (64, &[64, 64, 1], Seed, 128, W32, &[1, 8, 100]),
        (70, &[150, 130, 5], Scores, 128, W64, &[1, 4, 9]),
        (300, &[97, 33, 65, 11], Seed, 128, W64, &[1, 6, 20]),
        (9, &[3, 40], Scores, 128, W64, &[1, 3, 50]),
    ];
    for (i, &(input_len, widths, rule, threshold, word, ps)) in cases.iter().enumerate() {
        let shape = [&[input_len][..], widths].concat();
        let model = random_model(&mut rng(50 + i as u64), &shape, rule, threshold);
        // Even cases use the export's own synthetic images, odd ones ours.
        let pixels = random_pixels(&mut rng(70 + i as u64), 12, input_len);
        let images = (i % 2 == 1).then_some(pixels.as_slice());
        for &p in ps {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("v");
            let (g, count) = export_verilog(&model, word, p, images, &dir);
            assert!(g.lanes() <= p, "case {i} P {p}");
            let sim = simulate(&dir, &[]);
            assert_all_pass(&sim, count, &g, &format!("case {i} {shape:?} P {p}"));
        }
    }
}

/// A testbench that cannot fail proves nothing: a wrong expected class, and
/// a wrong weight, must both be reported.
#[test]
fn testbench_reports_mismatches() {
    bnn_testkit::need!(IVERILOG);
    let model = random_model(&mut rng(5), &[150, 40, 6], DecisionRule::Scores, 128);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (g, count) = export_verilog(&model, WordBits::W64, 3, None, &dir);
    assert_all_pass(&simulate(&dir, &[]), count, &g, "untouched");

    // The class expected for image 2 (line 0 is a comment; each image has
    // a class line and 6 score lines).
    let path = dir.join("net_tb_expected.hex");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = original.lines().map(String::from).collect();
    let class_line = 1 + 2 * 7;
    let class = u32::from_str_radix(&lines[class_line], 16).unwrap();
    lines[class_line] = format!("{:08x}", (class + 1) % 6);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let sim = simulate(&dir, &[]);
    assert_eq!((sim.pass, sim.fail), (count - 1, 1), "{}", sim.output);
    assert!(sim.output.contains("FAIL image 2:"), "{}", sim.output);
    std::fs::write(&path, &original).unwrap();

    // The low byte of the last weight row (lane 0 of the last output group):
    // that neuron's scores change.
    let path = dir.join("net_weights.hex");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let last = lines.len() - 1;
    let (high, low) = lines[last].split_at(lines[last].len() - 2);
    let byte = u8::from_str_radix(low, 16).unwrap();
    lines[last] = format!("{high}{:02x}", byte ^ 0xff);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let sim = simulate(&dir, &[]);
    assert!(sim.fail > 0, "{}", sim.output);

    // Fewer images on request.
    let sim = simulate(&dir, &["+images=3"]);
    assert_eq!(sim.images, 3, "{}", sim.output);
}

/// Verilator compiles the module and its testbench (delays and all, with
/// `--timing`) and the result is the same: every image exact, at the stated
/// latency and interval.
#[test]
fn verilator_runs_the_testbench() {
    bnn_testkit::need!(VERILATOR);
    let model = random_model(&mut rng(8), &[120, 70, 33, 7], DecisionRule::Scores, 100);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let pixels = random_pixels(&mut rng(9), 30, 120);
    let (g, count) = export_verilog(&model, WordBits::W64, 5, Some(&pixels), &dir);
    run(
        &dir,
        "verilator",
        &[
            "--binary",
            "--timing",
            "-Wno-fatal",
            "-Wno-WIDTH",
            "--top-module",
            "net_tb",
            "-o",
            "sim",
            "net_tb.v",
            "net.v",
        ],
    );
    let started = Instant::now();
    let (output, _) = run(&dir, "./obj_dir/sim", &[]);
    let sim = Sim::parse(output, started.elapsed());
    assert_all_pass(&sim, count, &g, "verilator");
}

/// Yosys maps a small export onto a 7-series part: the design passes its
/// structural checks (no multiple drivers, no combinational loops), the
/// weight ROM lands in block RAM, and the lanes cost LUTs and flip-flops.
#[test]
fn yosys_synthesizes_for_xilinx_7_series() {
    bnn_testkit::need!(YOSYS);
    let model = random_model(&mut rng(10), &[100, 40, 6], DecisionRule::Seed, 128);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    export_verilog(&model, WordBits::W64, 4, None, &dir);
    run(
        &dir,
        "yosys",
        &[
            "-q",
            "-p",
            "read_verilog net.v; synth_xilinx -flatten -top net -family xc7; check -assert; tee -o stat.txt stat",
        ],
    );
    let stat = std::fs::read_to_string(dir.join("stat.txt")).unwrap();
    let count = |prefix: &str| -> usize {
        stat.lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let (cell, n) = (parts.next()?, parts.next()?);
                cell.starts_with(prefix).then(|| n.parse::<usize>().ok())?
            })
            .sum()
    };
    let (luts, ffs, brams) = (count("LUT"), count("FD"), count("RAMB"));
    assert!(brams >= 1, "weights not in block RAM:\n{stat}");
    // Four lanes of 64 XOR bits and their popcounts need more than 256 LUTs.
    assert!(luts > 256 && ffs > 64, "LUTs {luts}, FFs {ffs}:\n{stat}");
    assert_eq!(count("DSP"), 0, "{stat}");
}
