//! One generic checker, run for every kernel this CPU supports: each must
//! agree with the scalar reference kernel and with a plain ±1 dot product,
//! over widths around the word size.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::bits::{pack_pm1, tail_mask, words_for};

const WIDTHS: [usize; 13] = [1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 784, 1000, 2048];

fn random_pm1(rng: &mut ChaCha8Rng, n: usize) -> Vec<i8> {
    (0..n)
        .map(|_| if rng.gen::<bool>() { 1 } else { -1 })
        .collect()
}

fn packed(v: &[i8]) -> Vec<u64> {
    let mut w = vec![0; words_for(v.len())];
    pack_pm1(v, &mut w).unwrap();
    w
}

fn widths(rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut all = WIDTHS.to_vec();
    all.extend((0..12).map(|_| rng.gen_range(1..=3000)));
    all
}

#[test]
fn dot_matches_float_dot_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in widths(&mut rng) {
        let (x, w) = (random_pm1(&mut rng, n), random_pm1(&mut rng, n));
        let float_dot: f32 = x
            .iter()
            .zip(&w)
            .map(|(&a, &b)| f32::from(a) * f32::from(b))
            .sum();
        let (px, pw) = (packed(&x), packed(&w));
        assert_eq!(px.last().unwrap() & !tail_mask(n), 0);
        let scalar = Kernel::Scalar.dot(&px, &pw, n);
        assert_eq!(scalar, float_dot as i32, "scalar, n = {n}");
        for k in available() {
            assert_eq!(k.dot(&px, &pw, n), scalar, "{k}, n = {n}");
            assert_eq!(k.dot(&px, &px, n), n as i32, "{k}, self dot, n = {n}");
        }
    }
}

/// Interleaves a row-major packed matrix the way layers do.
fn interleave(rows: &[Vec<u64>], wpr: usize) -> Vec<u64> {
    let blocks = rows.len().div_ceil(LANES);
    let mut out = vec![0u64; blocks * wpr * LANES];
    for (j, row) in rows.iter().enumerate() {
        for (k, &w) in row.iter().enumerate() {
            out[((j / LANES) * wpr + k) * LANES + j % LANES] = w;
        }
    }
    out
}

#[test]
fn layer_loops_match_scalar_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for n in widths(&mut rng) {
        for neurons in [1usize, 7, 8, 9, 31, 64, 65, 130] {
            let rows = 5;
            let wpr = words_for(n);
            let ws: Vec<Vec<u64>> = (0..neurons)
                .map(|_| packed(&random_pm1(&mut rng, n)))
                .collect();
            let xs: Vec<u64> = (0..rows)
                .flat_map(|_| packed(&random_pm1(&mut rng, n)))
                .collect();
            let weights = interleave(&ws, wpr);
            let blocks = neurons.div_ceil(LANES);

            let mut expected = vec![0u32; rows * blocks * LANES];
            Kernel::Scalar.block_popcounts(&xs, rows, wpr, &weights, blocks, &mut expected);
            for r in 0..rows {
                for (j, w) in ws.iter().enumerate() {
                    let direct = Kernel::Scalar.xor_popcount(&xs[r * wpr..(r + 1) * wpr], w);
                    assert_eq!(expected[r * blocks * LANES + j], direct);
                }
            }
            // Limits spread around n/2 so that both outcomes occur; flips random.
            let limits: Vec<i64> = (0..blocks * LANES)
                .map(|j| {
                    if j < neurons {
                        rng.gen_range(-1..=n as i64 + 1)
                    } else {
                        -1
                    }
                })
                .collect();
            let flips: Vec<u8> = (0..blocks)
                .map(|b| {
                    let valid = (neurons - b * LANES).min(LANES);
                    rng.gen::<u8>() & ((1u16 << valid) - 1) as u8
                })
                .collect();
            let out_wpr = words_for(neurons);
            let args = FireArgs {
                xs: &xs,
                rows,
                wpr,
                weights: &weights,
                blocks,
                limits: &limits,
                row_sets: &[],
                flips: &flips,
                out_wpr,
            };
            let mut fired = vec![0u64; rows * out_wpr];
            Kernel::Scalar.fire(&args, &mut fired);
            for r in 0..rows {
                for j in 0..neurons {
                    let pop = i64::from(expected[r * blocks * LANES + j]);
                    let want = (pop <= limits[j]) ^ (flips[j / LANES] >> (j % LANES) & 1 == 1);
                    assert_eq!(fired[r * out_wpr + j / 64] >> (j % 64) & 1 == 1, want);
                }
                assert_eq!(
                    fired[(r + 1) * out_wpr - 1] & !tail_mask(neurons),
                    0,
                    "tail bits"
                );
            }
            for k in available() {
                let mut got = vec![u32::MAX; rows * blocks * LANES];
                k.block_popcounts(&xs, rows, wpr, &weights, blocks, &mut got);
                assert_eq!(got, expected, "{k} popcounts, n = {n}, neurons = {neurons}");
                let mut got = vec![u64::MAX; rows * out_wpr];
                k.fire(&args, &mut got);
                assert_eq!(got, fired, "{k} fire, n = {n}, neurons = {neurons}");
            }
            // Three sets of limits, the first the one above, each row
            // against its own: every kernel equals firing each row alone
            // against its set.
            let mut sets = limits.clone();
            for _ in 0..2 {
                let more = limits.iter().map(|&l| {
                    if l < 0 {
                        l
                    } else {
                        rng.gen_range(-1..=n as i64 + 1)
                    }
                });
                sets.extend(more.collect::<Vec<_>>());
            }
            let row_sets: Vec<u16> = (0..rows).map(|_| rng.gen_range(0..3)).collect();
            let mut want = vec![0u64; rows * out_wpr];
            for (r, &set) in row_sets.iter().enumerate() {
                let one = FireArgs {
                    xs: &xs[r * wpr..(r + 1) * wpr],
                    rows: 1,
                    limits: &sets[usize::from(set) * blocks * LANES..][..blocks * LANES],
                    ..args
                };
                Kernel::Scalar.fire(&one, &mut want[r * out_wpr..(r + 1) * out_wpr]);
            }
            let per_row = FireArgs {
                limits: &sets,
                row_sets: &row_sets,
                ..args
            };
            for k in available() {
                let mut got = vec![u64::MAX; rows * out_wpr];
                k.fire(&per_row, &mut got);
                assert_eq!(
                    got, want,
                    "{k} fire with row sets, n = {n}, neurons = {neurons}"
                );
            }
        }
    }
}

#[test]
fn parse_and_availability() {
    assert_eq!(available().last(), Some(&Kernel::Scalar));
    assert_eq!(Kernel::parse("scalar").unwrap(), Kernel::Scalar);
    // Each kernel by name (any case, spaces around): itself where this CPU
    // has it, otherwise an error naming it and what the CPU has.
    let expect = |k: Kernel| {
        if k.is_available() {
            Ok(k)
        } else {
            Err(format!(
                "kernel '{}' is not supported by this CPU (available: {})",
                k.name(),
                names(&available())
            ))
        }
    };
    let parse = |name: &str| Kernel::parse(name).map_err(|e| e.to_string());
    assert_eq!(parse(" AVX2 "), expect(Kernel::Avx2));
    assert_eq!(
        parse("sse9"),
        Err("unknown kernel 'sse9' (known: scalar, avx2, avx512, simd128, neon)".into())
    );
    // Every kernel is known on every CPU; only those of the build's
    // architecture can be available.
    assert_eq!(parse(" NEON "), expect(Kernel::Neon));
    #[cfg(target_arch = "aarch64")]
    assert_eq!(
        Kernel::Neon.is_available(),
        std::arch::is_aarch64_feature_detected!("neon")
    );
    #[cfg(not(target_arch = "aarch64"))]
    assert!(!Kernel::Neon.is_available());
    assert!(!Kernel::Avx2.is_available() || cfg!(target_arch = "x86_64"));
    for k in Kernel::ALL {
        assert_eq!(parse(k.name()), expect(k));
    }
    assert!(available().contains(&active()));
}

#[test]
fn pixel_packing_matches_portable_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for n in widths(&mut rng) {
        let pixels: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        for threshold in [0u8, 1, 127, 128, 129, 200, 255] {
            let mut want = vec![0u64; words_for(n)];
            crate::bits::pack_pixels(&pixels, threshold, &mut want);
            for (i, &p) in pixels.iter().enumerate() {
                assert_eq!(crate::bits::bit(&want, i), p >= threshold);
            }
            for k in available() {
                let mut got = vec![u64::MAX; words_for(n)];
                k.pack_pixels(&pixels, threshold, &mut got);
                assert_eq!(got, want, "{k}, n = {n}, threshold = {threshold}");
                // Three images: this one, its complement and this one again.
                let flipped: Vec<u8> = pixels.iter().map(|p| !p).collect();
                let rows = [&pixels[..], &flipped, &pixels].concat();
                let mut got = vec![u64::MAX; 3 * words_for(n)];
                k.pack_pixel_rows(&rows, n, threshold, &mut got);
                let mut middle = vec![0u64; words_for(n)];
                crate::bits::pack_pixels(&flipped, threshold, &mut middle);
                let all = [&want[..], &middle, &want].concat();
                assert_eq!(got, all, "{k} rows, n = {n}, threshold = {threshold}");
            }
        }
    }
}

/// Images that test the group listers: all zero, all non-zero, a single
/// non-zero byte at each position of a group, and random digit-like
/// sparsity; `n` need not be a multiple of 4 or of 64.
fn pixel_images(rng: &mut ChaCha8Rng, n: usize) -> Vec<Vec<u8>> {
    let mut images = vec![
        vec![0u8; n],
        (0..n).map(|_| rng.gen_range(1..=255)).collect(),
    ];
    for byte in 0..PIXEL_GROUP.min(n) {
        let mut one = vec![0u8; n];
        for i in (byte..n).step_by(PIXEL_GROUP * 3) {
            one[i] = 255;
        }
        images.push(one);
    }
    for zeros in [0.5, 0.8, 0.97] {
        let image = (0..n)
            .map(|_| if rng.gen_bool(zeros) { 0 } else { rng.gen() })
            .collect();
        images.push(image);
    }
    images
}

fn pixel_sum(image: &[u8]) -> u32 {
    image.iter().map(|&p| u32::from(p)).sum()
}

/// The non-zero groups of an image, straight from its bytes.
fn expected_groups(image: &[u8]) -> Vec<(u32, u32)> {
    (0..image.len().div_ceil(PIXEL_GROUP))
        .map(|g| {
            let mut four = 0u32;
            for (k, &p) in image[g * PIXEL_GROUP..]
                .iter()
                .take(PIXEL_GROUP)
                .enumerate()
            {
                four |= u32::from(p) << (8 * k);
            }
            (four, g as u32)
        })
        .filter(|&(four, _)| four != 0)
        .collect()
}

fn listed(list: &PixelGroups) -> Vec<(u32, u32)> {
    list.a()
        .iter()
        .copied()
        .zip(list.index().iter().copied())
        .collect()
}

#[test]
fn pixel_group_lists_match_the_bytes_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut lengths = vec![1, 2, 3, 4, 5, 63, 64, 65, 66, 67, 127, 128, 129, 784, 785];
    lengths.extend((0..8).map(|_| rng.gen_range(1..=1500)));
    for n in lengths {
        let images = pixel_images(&mut rng, n);
        for k in available() {
            // One list reused across images and lengths, as the layer does.
            let (mut single, mut pairs) = (PixelGroups::default(), PixelPairs::default());
            for (i, a) in images.iter().enumerate() {
                k.pixel_groups(a, &mut single);
                let ctx = format!("{k}, n = {n}, image {i}");
                assert_eq!(listed(&single), expected_groups(a), "{ctx}");
                assert_eq!(single.sum, pixel_sum(a), "{ctx}: pixel sum");
                for (j, b) in images.iter().enumerate() {
                    k.pixel_pair_groups(a, b, &mut pairs);
                    let (ga, gb) = (expected_groups(a), expected_groups(b));
                    let in_b = |g: u32| gb.iter().any(|x| x.1 == g);
                    let in_a = |g: u32| ga.iter().any(|x| x.1 == g);
                    let both: Vec<(u32, u32, u32)> = ga
                        .iter()
                        .filter_map(|&(fa, g)| {
                            gb.iter().find(|x| x.1 == g).map(|&(fb, _)| (fa, fb, g))
                        })
                        .collect();
                    let got_both: Vec<(u32, u32, u32)> = (0..pairs.both.len())
                        .map(|e| (pairs.both.a()[e], pairs.both.b()[e], pairs.both.index()[e]))
                        .collect();
                    let ctx = format!("{k}, n = {n}, images {i} and {j}");
                    assert_eq!(
                        pairs.sums,
                        [pixel_sum(a), pixel_sum(b)],
                        "{ctx}: pixel sums"
                    );
                    assert_eq!(got_both, both, "{ctx}: both");
                    let only_a: Vec<_> = ga.iter().copied().filter(|x| !in_b(x.1)).collect();
                    let only_b: Vec<_> = gb.iter().copied().filter(|x| !in_a(x.1)).collect();
                    assert_eq!(listed(&pairs.only_a), only_a, "{ctx}: only a");
                    assert_eq!(listed(&pairs.only_b), only_b, "{ctx}: only b");
                }
            }
        }
    }
}

/// Weights in the pixel-layer layout, random ±1 on real pixels and
/// neurons, 0 on the padding.
fn pixel_weights(rng: &mut ChaCha8Rng, inputs: usize, neurons: usize) -> (Vec<i8>, usize) {
    let blocks = neurons.div_ceil(PIXEL_LANES);
    let groups = inputs.div_ceil(PIXEL_GROUP);
    let mut w = vec![0i8; groups * blocks * PIXEL_LANES * PIXEL_GROUP];
    for (i, v) in w.iter_mut().enumerate() {
        let pixel = i / (PIXEL_LANES * PIXEL_GROUP * blocks) * PIXEL_GROUP + i % PIXEL_GROUP;
        let neuron = i / PIXEL_GROUP % (PIXEL_LANES * blocks);
        if pixel < inputs && neuron < neurons {
            *v = if rng.gen() { 1 } else { -1 };
        }
    }
    (w, blocks)
}

#[test]
fn pixel_dots_match_the_plain_sum_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for (inputs, neurons) in [
        (1, 1),
        (5, 17),
        (67, 40),
        (130, 100),
        (784, 512),
        (785, 300),
    ] {
        let (weights, blocks) = pixel_weights(&mut rng, inputs, neurons);
        let signs = sign_bits(&weights);
        let line = blocks * PIXEL_LANES * PIXEL_GROUP;
        let images = pixel_images(&mut rng, inputs);
        let plain = |image: &[u8]| -> Vec<i32> {
            (0..blocks * PIXEL_LANES)
                .map(|j| {
                    (0..inputs)
                        .map(|i| {
                            let w =
                                weights[i / PIXEL_GROUP * line + j * PIXEL_GROUP + i % PIXEL_GROUP];
                            i32::from(image[i]) * i32::from(w)
                        })
                        .sum()
                })
                .collect()
        };
        for k in available() {
            let mut groups = PixelGroups::default();
            let mut pairs = PixelPairs::default();
            let mut dots = vec![i32::MIN; blocks * PIXEL_LANES];
            let mut dots_b = dots.clone();
            for (i, a) in images.iter().enumerate() {
                k.pixel_groups(a, &mut groups);
                k.pixel_dots(&groups, &weights, blocks, &mut dots);
                assert_eq!(dots, plain(a), "{k}, {inputs} → {neurons}, image {i}");
                if !k.pairs_pixel_rows() {
                    continue;
                }
                // Mixed and paired dots of padding neurons are not defined.
                dots.fill(i32::MIN);
                k.pixel_mixed_dots(&groups, &weights, &signs, blocks, &mut dots);
                let ctx = format!("{k} mixed, {inputs} → {neurons}, image {i}");
                assert_eq!(dots[..neurons], plain(a)[..neurons], "{ctx}");
                let b = &images[(i + 3) % images.len()];
                k.pixel_pair_groups(a, b, &mut pairs);
                k.pixel_pair_dots(&pairs, &weights, &signs, blocks, &mut dots, &mut dots_b);
                let ctx = format!("{k} pair, {inputs} → {neurons}, image {i}");
                assert_eq!(dots[..neurons], plain(a)[..neurons], "{ctx}");
                assert_eq!(dots_b[..neurons], plain(b)[..neurons], "{ctx}'s partner");
            }
        }
    }
}

/// Scores and classes of output rows: every kernel equals the scalar
/// reference bit for bit, on rows full of ties (popcounts from a few
/// values, biases of 0 and ±0.5), with 1 to 30 classes (over 16 takes
/// the scalar path on AVX-512 too) and padding beyond the classes.
#[test]
fn output_scores_and_classes_match_scalar_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for c in [1usize, 2, 3, 10, 15, 16, 17, 30] {
        for padded in [c.next_multiple_of(LANES), c + 5] {
            for inputs in [7, 512] {
                let rows = 37;
                let pops: Vec<u32> = (0..rows * padded)
                    .map(|_| [0, inputs / 2, inputs / 2 + 1, inputs][rng.gen_range(0..4)] as u32)
                    .collect();
                let bias: Vec<f32> = (0..c)
                    .map(|_| [0.0, 0.5, -0.5][rng.gen_range(0..3)])
                    .collect();
                for rule in [DecisionRule::Scores, DecisionRule::Seed] {
                    let run = |k: Kernel| {
                        let (mut scores, mut classes) = (vec![f32::NAN; rows * c], vec![99; rows]);
                        let a = OutputArgs {
                            pops: &pops,
                            padded,
                            inputs,
                            bias: &bias,
                            rule,
                        };
                        k.scores_classes(&a, &mut scores, &mut classes);
                        (scores, classes)
                    };
                    let (want, want_classes) = run(Kernel::Scalar);
                    for (r, (row, &class)) in want.chunks_exact(c).zip(&want_classes).enumerate() {
                        let first = |f: &dyn Fn(f32) -> bool| row.iter().position(|&s| f(s));
                        let top = row.iter().copied().fold(f32::MIN, f32::max);
                        let expected = match rule {
                            DecisionRule::Scores => first(&|s| s == top),
                            DecisionRule::Seed => first(&|s| s >= 0.0).or(Some(0)),
                        };
                        assert_eq!(Some(class), expected, "scalar, {c} classes, row {r}");
                        let p = &pops[r * padded..r * padded + c];
                        let s0 = (inputs as i32 - 2 * p[0] as i32) as f32 + bias[0];
                        assert_eq!(row[0], s0, "scalar score, row {r}");
                    }
                    for k in available() {
                        let (got, got_classes) = run(k);
                        let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{k}, {c} classes, {rule:?}");
                        assert_eq!(got_classes, want_classes, "{k}, {c} classes, {rule:?}");
                    }
                }
            }
        }
    }
}
