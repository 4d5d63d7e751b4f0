//! A classify request's body, turned into the model's inputs.
//!
//! The body's first bytes decide its form, whatever `Content-Type` says
//! (clients get it wrong more often than the bytes lie):
//!
//! - `\x93NUMPY`: a `.npy` array, parsed by `bnn_data`'s `.npy` reader.
//!   `uint8` of shape `(N, inputs)` or `(N, H, W[, C])` are images;
//!   `float32`/`float64` of shape `(N, features)` are raw features for a
//!   model with a stored feature encoding.
//! - the PNG signature, `P5` or `P2`: one image, decoded by `bnn_data`.
//! - anything else: JSON, an object with exactly one of
//!   - `"images"`: arrays of integers 0..=255, one array per image;
//!   - `"images_b64"`: strings, each one image's raw bytes in standard
//!     base64 (a third the size of `"images"` and much faster to parse);
//!   - `"features"`: arrays of numbers, one row of raw features per input,
//!     for a model with a stored feature encoding.

use base64::Engine as _;
use bnn_core::Model;
use bnn_data::image;
use bnn_data::npz::{NpyArray, NpyData};
use serde::Deserialize;

/// Inputs ready for the engine: `count` rows of `model.input_len()` bytes.
#[derive(Debug)]
pub struct Inputs {
    pub pixels: Vec<u8>,
    pub count: usize,
}

/// A request that cannot be classified: the status and a one-line reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    pub status: u16,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Rejected {
    Rejected {
        status: 400,
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    images: Option<Vec<Vec<u8>>>,
    images_b64: Option<Vec<String>>,
    features: Option<Vec<Vec<f64>>>,
}

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Decodes `body` for `model`, refusing more than `max_images` inputs.
pub fn decode(body: &[u8], model: &Model, max_images: usize) -> Result<Inputs, Rejected> {
    if body.is_empty() {
        return Err(bad(
            "empty body: send JSON, a .npy array, or a PNG/PGM image",
        ));
    }
    let inputs = if body.starts_with(NPY_MAGIC) {
        npy(body, model, max_images)?
    } else if let Some(format) = image::sniff(body) {
        picture(body, format, model)?
    } else {
        json(body, model, max_images)?
    };
    if inputs.count > max_images {
        return Err(too_many(inputs.count, max_images));
    }
    if inputs.count == 0 {
        return Err(bad("no images in the request"));
    }
    Ok(inputs)
}

fn too_many(count: usize, max: usize) -> Rejected {
    Rejected {
        status: 413,
        message: format!(
            "{count} images in one request, more than the {max} accepted (--max-images)"
        ),
    }
}

fn json(body: &[u8], model: &Model, max_images: usize) -> Result<Inputs, Rejected> {
    let parsed: JsonBody =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    let given = [
        parsed.images.is_some(),
        parsed.images_b64.is_some(),
        parsed.features.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(bad(
            "the JSON body needs exactly one of \"images\", \"images_b64\" or \"features\"",
        ));
    }
    let len = model.input_len();
    if let Some(images) = parsed.images {
        check_count(images.len(), max_images)?;
        let mut pixels = Vec::with_capacity(images.len() * len);
        for (i, img) in images.iter().enumerate() {
            if img.len() != len {
                return Err(bad(format!(
                    "images[{i}] has {} values, where the model takes {len}",
                    img.len()
                )));
            }
            pixels.extend_from_slice(img);
        }
        return Ok(Inputs {
            count: images.len(),
            pixels,
        });
    }
    if let Some(images) = parsed.images_b64 {
        check_count(images.len(), max_images)?;
        let mut pixels = Vec::with_capacity(images.len() * len);
        for (i, text) in images.iter().enumerate() {
            let before = pixels.len();
            base64::engine::general_purpose::STANDARD
                .decode_vec(text, &mut pixels)
                .map_err(|e| bad(format!("images_b64[{i}] is not base64: {e}")))?;
            if pixels.len() - before != len {
                return Err(bad(format!(
                    "images_b64[{i}] decodes to {} bytes, where the model takes {len}",
                    pixels.len() - before
                )));
            }
        }
        return Ok(Inputs {
            count: images.len(),
            pixels,
        });
    }
    let rows = parsed.features.unwrap_or_default();
    check_count(rows.len(), max_images)?;
    let features = feature_count(model)?;
    let mut x = Vec::with_capacity(rows.len() * features);
    for (i, row) in rows.iter().enumerate() {
        if row.len() != features {
            return Err(bad(format!(
                "features[{i}] has {} values, where the encoding takes {features}",
                row.len()
            )));
        }
        x.extend(row.iter().map(|&v| v as f32));
    }
    encode(model, &x, rows.len())
}

fn check_count(count: usize, max: usize) -> Result<(), Rejected> {
    if count > max {
        Err(too_many(count, max))
    } else {
        Ok(())
    }
}

/// The features a row holds for `model`, or why it takes no features.
fn feature_count(model: &Model) -> Result<usize, Rejected> {
    model
        .feature_encoding()
        .map(|e| e.features())
        .ok_or_else(|| {
            bad(format!(
                "the model stores no feature encoding: send u8 images of {} values",
                model.input_len()
            ))
        })
}

fn encode(model: &Model, x: &[f32], count: usize) -> Result<Inputs, Rejected> {
    let pixels = model.encode_features(x).map_err(|e| bad(e.to_string()))?;
    Ok(Inputs { pixels, count })
}

fn npy(body: &[u8], model: &Model, max_images: usize) -> Result<Inputs, Rejected> {
    // The values cannot outnumber the body's bytes: the body limit bounds
    // the allocation, and the image count is checked on the shape below
    // (413, not a parse error).
    let most = body.len() as u64;
    let array =
        NpyArray::from_bytes(body, most).map_err(|e| bad(format!("invalid .npy body: {e}")))?;
    let shape = &array.shape;
    let shown = format!(
        "({})",
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let count = shape.first().copied().unwrap_or(0);
    check_count(count, max_images)?;
    match array.data {
        NpyData::U8(pixels) => {
            let takes = model.input_shape();
            let per: usize = shape.iter().skip(1).product();
            let fits = match shape.len() {
                2 => shape[1] == model.input_len(),
                3 => {
                    takes.channels == 1
                        && shape[1] == takes.height as usize
                        && shape[2] == takes.width as usize
                }
                4 => {
                    shape[1] == takes.height as usize
                        && shape[2] == takes.width as usize
                        && shape[3] == takes.channels as usize
                }
                _ => false,
            };
            // A flat model takes any layout of its input length.
            let fits = fits || (takes.height == 1 && takes.width == 1 && shape.len() >= 2 && per == model.input_len());
            if !fits {
                let takes_text = if takes.height == 1 && takes.width == 1 {
                    format!("(N, {})", model.input_len())
                } else if takes.channels == 1 {
                    format!("(N, {}) or (N, {}, {})", model.input_len(), takes.height, takes.width)
                } else {
                    format!(
                        "(N, {}) or (N, {}, {}, {})",
                        model.input_len(),
                        takes.height,
                        takes.width,
                        takes.channels
                    )
                };
                return Err(bad(format!(
                    "uint8 array of shape {shown}, where the model takes {takes_text}"
                )));
            }
            Ok(Inputs { pixels, count })
        }
        NpyData::F32(x) => features_npy(model, shape, &shown, x),
        NpyData::F64(x) => features_npy(model, shape, &shown, x.into_iter().map(|v| v as f32).collect()),
        other => Err(bad(format!(
            "dtype {} of shape {shown}: send uint8 images, or float32/float64 features to a model with a feature encoding",
            other.dtype_name()
        ))),
    }
}

fn features_npy(
    model: &Model,
    shape: &[usize],
    shown: &str,
    x: Vec<f32>,
) -> Result<Inputs, Rejected> {
    let features = feature_count(model)?;
    if shape.len() != 2 || shape[1] != features {
        return Err(bad(format!(
            "float array of shape {shown}, where the encoding takes (N, {features})"
        )));
    }
    encode(model, &x, shape[0])
}

fn picture(body: &[u8], format: image::Format, model: &Model) -> Result<Inputs, Rejected> {
    let takes = model.input_shape();
    let flat = takes.height == 1 && takes.width == 1;
    let pixels_wanted = if flat {
        model.input_len()
    } else {
        (takes.height * takes.width) as usize
    };
    let decoded = match format {
        image::Format::Png => image::decode_png_bounded(body, Some(pixels_wanted))
            .map_err(|e| bad(format!("invalid PNG: {e}")))?,
        image::Format::Pgm => {
            image::decode_pgm(body).map_err(|e| bad(format!("invalid PGM: {e}")))?
        }
    };
    let (w, h) = (decoded.width, decoded.height);
    let fits = if flat {
        w * h == model.input_len()
    } else {
        w == takes.width as usize && h == takes.height as usize
    };
    if !fits {
        return Err(bad(format!(
            "a {w}x{h} image, where the model takes {}",
            if flat {
                format!("{} pixels", model.input_len())
            } else {
                format!("{}x{}", takes.width, takes.height)
            }
        )));
    }
    let pixels = if takes.channels == 3 {
        decoded.into_rgb()
    } else {
        decoded.into_gray()
    };
    Ok(Inputs { pixels, count: 1 })
}
