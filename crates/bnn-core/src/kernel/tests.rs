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
        }
    }
}

#[test]
fn parse_and_availability() {
    assert_eq!(available().last(), Some(&Kernel::Scalar));
    assert_eq!(Kernel::parse("scalar").unwrap(), Kernel::Scalar);
    assert_eq!(
        Kernel::parse(" AVX2 ").map_err(|e| e.to_string()).is_ok(),
        Kernel::Avx2.is_available()
    );
    let err = Kernel::parse("neon").unwrap_err().to_string();
    assert!(err.contains("unknown kernel 'neon'"), "{err}");
    for k in Kernel::ALL {
        assert_eq!(Kernel::parse(k.name()).is_ok(), k.is_available());
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
            }
        }
    }
}
