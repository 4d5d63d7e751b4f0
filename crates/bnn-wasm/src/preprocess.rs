//! A drawn or dropped image made into an MNIST digit, the way MNIST made
//! its own: the ink cropped to its bounding box, scaled (area-averaged,
//! keeping the aspect ratio) so that its longer side is 20 pixels, and
//! placed in a 28×28 image with its centre of mass at the centre.
//!
//! Written here rather than in the page's JavaScript so that it is tested
//! with the rest of the workspace (`cargo test -p bnn-wasm`) and computes
//! the same bytes natively and in WebAssembly: all arithmetic is `f64`
//! adds, multiplies and divides, which IEEE 754 fixes exactly.

/// Side of the output image.
pub const SIDE: usize = 28;

/// Side of the box the ink is scaled into, as in MNIST.
pub const BOX: usize = 20;

/// Gray levels (after any inversion) above this count as ink when finding
/// the bounding box: faint noise and a stroke's anti-aliased fringe do not
/// stretch the box.
pub const INK: u8 = 32;

/// Why an image gives no digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No pixel above [`INK`]: nothing drawn.
    Blank,
    /// `pixels` does not hold `width × height` values (or either is 0).
    Size,
}

/// Grayscale from RGBA bytes (ITU-R BT.601 weights, in integers), for a
/// canvas's `getImageData`. Transparent pixels count as black, as the page
/// draws on black.
pub fn gray_from_rgba(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .map(|p| {
            let luma =
                (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500)
                    / 1000;
            (luma * u32::from(p[3]) / 255) as u8
        })
        .collect()
}

/// The 28×28 digit in `gray` (`width × height`, row-major). Light ink on a
/// dark ground, as MNIST, or dark ink on a light ground (a photo of paper),
/// told apart by the mean of the border pixels.
pub fn preprocess(gray: &[u8], width: usize, height: usize) -> Result<Vec<u8>, Refusal> {
    if width == 0 || height == 0 || width.checked_mul(height) != Some(gray.len()) {
        return Err(Refusal::Size);
    }
    let invert = border_mean(gray, width, height) > 127.0;
    let ink = |x: usize, y: usize| {
        let v = gray[y * width + x];
        if invert {
            255 - v
        } else {
            v
        }
    };
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..height {
        for x in 0..width {
            if ink(x, y) > INK {
                (x0, y0) = (x0.min(x), y0.min(y));
                (x1, y1) = (x1.max(x), y1.max(y));
            }
        }
    }
    if x0 == usize::MAX {
        return Err(Refusal::Blank);
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let longer = bw.max(bh) as f64;
    let fit = |side: usize| ((side as f64 * BOX as f64 / longer).round() as usize).clamp(1, BOX);
    let (tw, th) = (fit(bw), fit(bh));
    let crop: Vec<f64> = (y0..=y1)
        .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
        .map(|(x, y)| f64::from(ink(x, y)))
        .collect();
    // Rows first, then columns: each output pixel is the mean of the
    // source area it covers, partial pixels weighted by their share.
    let across = resample(&crop, bw, bh, tw, true);
    let mut small = resample(&across, tw, bh, th, false);
    let peak = small.iter().copied().fold(0.0, f64::max);
    for v in &mut small {
        *v *= 255.0 / peak;
    }
    let total: f64 = small.iter().sum();
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, &v) in small.iter().enumerate() {
        cx += (i % tw) as f64 * v;
        cy += (i / tw) as f64 * v;
    }
    // Pixel centres sit at +0.5; the image's centre is at 14.0.
    let shift = |c: f64| (SIDE as f64 / 2.0 - (c / total + 0.5)).round() as isize;
    let (dx, dy) = (shift(cx), shift(cy));
    let mut out = vec![0u8; SIDE * SIDE];
    for (i, &v) in small.iter().enumerate() {
        let (x, y) = ((i % tw) as isize + dx, (i / tw) as isize + dy);
        if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
            out[y as usize * SIDE + x as usize] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}

fn border_mean(gray: &[u8], width: usize, height: usize) -> f64 {
    let mut sum = 0u64;
    let mut count = 0u64;
    for y in 0..height {
        for x in 0..width {
            if y == 0 || x == 0 || y + 1 == height || x + 1 == width {
                sum += u64::from(gray[y * width + x]);
                count += 1;
            }
        }
    }
    sum as f64 / count as f64
}

/// `src` (`w × h`) resampled to `to` pixels along one axis (`horizontal`:
/// the rows) by area averaging.
fn resample(src: &[f64], w: usize, h: usize, to: usize, horizontal: bool) -> Vec<f64> {
    let from = if horizontal { w } else { h };
    let step = from as f64 / to as f64;
    // For each output index: (source index, weight) pairs.
    let spans: Vec<Vec<(usize, f64)>> = (0..to)
        .map(|o| {
            let (start, end) = (o as f64 * step, (o + 1) as f64 * step);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(from);
            (first..last)
                .map(|s| {
                    let cover = (end.min(s as f64 + 1.0) - start.max(s as f64)) / step;
                    (s, cover)
                })
                .filter(|&(_, c)| c > 0.0)
                .collect()
        })
        .collect();
    let (ow, oh) = if horizontal { (to, h) } else { (w, to) };
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let (o, fixed) = if horizontal { (x, y) } else { (y, x) };
            out[y * ow + x] = spans[o]
                .iter()
                .map(|&(s, c)| {
                    let v = if horizontal {
                        src[fixed * w + s]
                    } else {
                        src[s * w + fixed]
                    };
                    v * c
                })
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(w: usize, h: usize, fill: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| fill(x, y))
            .collect()
    }

    /// The rows and columns holding ink in a 28×28 image.
    fn extent(img: &[u8]) -> ((usize, usize), (usize, usize)) {
        let on: Vec<(usize, usize)> = (0..SIDE * SIDE)
            .filter(|&i| img[i] > 0)
            .map(|i| (i % SIDE, i / SIDE))
            .collect();
        let xs = (
            on.iter().map(|p| p.0).min().unwrap(),
            on.iter().map(|p| p.0).max().unwrap(),
        );
        let ys = (
            on.iter().map(|p| p.1).min().unwrap(),
            on.iter().map(|p| p.1).max().unwrap(),
        );
        (xs, ys)
    }

    #[test]
    fn nothing_drawn_is_blank_and_a_wrong_size_is_refused() {
        assert_eq!(preprocess(&[0; 100], 10, 10), Err(Refusal::Blank));
        // Faint noise under the ink level is not a digit either.
        assert_eq!(preprocess(&[INK; 100], 10, 10), Err(Refusal::Blank));
        assert_eq!(preprocess(&[0; 99], 10, 10), Err(Refusal::Size));
        assert_eq!(preprocess(&[], 0, 0), Err(Refusal::Size));
        assert_eq!(preprocess(&[0; 10], usize::MAX, 2), Err(Refusal::Size));
    }

    /// A 100×50 block anywhere on a 280×280 canvas becomes a 20×10 block of
    /// full ink centred on (14, 14): columns 4..24, rows 9..19.
    #[test]
    fn a_block_is_cropped_scaled_to_twenty_and_centred() {
        for (ox, oy) in [(0, 0), (37, 120), (180, 230)] {
            let img = canvas(280, 280, |x, y| {
                u8::from((ox..ox + 100).contains(&x) && (oy..oy + 50).contains(&y)) * 255
            });
            let out = preprocess(&img, 280, 280).unwrap();
            assert_eq!(extent(&out), ((4, 23), (9, 18)), "at {ox},{oy}");
            assert!(out.iter().all(|&v| v == 0 || v == 255));
            assert_eq!(out.iter().filter(|&&v| v == 255).count(), 200);
        }
    }

    /// Dark ink on a light ground gives what light ink on dark gives.
    #[test]
    fn dark_ink_on_paper_is_inverted() {
        let light = canvas(90, 60, |x, y| {
            if (x + 2 * y) % 7 < 3 && x > 10 && y > 5 {
                230
            } else {
                0
            }
        });
        let dark: Vec<u8> = light.iter().map(|v| 255 - v).collect();
        assert_eq!(preprocess(&light, 90, 60), preprocess(&dark, 90, 60));
    }

    /// A thin vertical stroke keeps its aspect: one column, 20 rows, at
    /// the centre; the peak is stretched to full ink.
    #[test]
    fn a_thin_stroke_keeps_its_aspect() {
        let img = canvas(200, 200, |x, y| {
            if x == 50 && (30..130).contains(&y) {
                128
            } else {
                0
            }
        });
        let out = preprocess(&img, 200, 200).unwrap();
        assert_eq!(extent(&out), ((14, 14), (4, 23)));
        assert!(out.iter().all(|&v| v == 0 || v == 255));
    }

    /// The centre of mass, not the box, is what is centred: a block with a
    /// heavy left half moves right of the box's centre.
    #[test]
    fn the_centre_of_mass_is_centred() {
        let img = canvas(40, 40, |x, y| {
            if (0..20).contains(&y) {
                match x {
                    0..=9 => 255,
                    10..=19 => 64,
                    _ => 0,
                }
            } else {
                0
            }
        });
        let out = preprocess(&img, 40, 40).unwrap();
        // The 20×20 box would start at column 4; its mass sits left of
        // centre, so the box starts further right.
        let ((x0, x1), (y0, y1)) = extent(&out);
        assert_eq!((y0, y1), (4, 23));
        assert_eq!(x1 - x0, 19);
        assert!(x0 > 4, "box starts at {x0}");
    }

    #[test]
    fn gray_weights_luma_and_alpha() {
        assert_eq!(
            gray_from_rgba(&[255, 255, 255, 255, 255, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0]),
            [255, 76, 0, 0]
        );
    }
}
