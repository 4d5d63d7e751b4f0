//! A directory of class folders, as torchvision's `ImageFolder` and Keras'
//! `image_dataset_from_directory` read: `root/<class>/*.png|*.pgm`, the
//! classes sorted by name (byte order) and named after their folders; or
//! `root/train/<class>/…` and `root/test/<class>/…`, both with the same
//! classes.
//!
//! Entries of a class folder named `*.png` or `*.pgm` (any case) are its
//! images and must be regular image files (links followed); other entries
//! are ignored, as are files and hidden (`.`) entries beside the class
//! folders. Every image has the size of the first one read. Colour follows
//! [`SourceOptions::channels`]: grey images are replicated into RGB, and
//! RGB is turned grey with [`crate::image::luma`].

use std::path::{Path, PathBuf};

use super::{finish, invalid, Found, LabelledSet, Part, SourceOptions, Values};
use super::{MAX_CLASSES, MAX_VALUES};
use crate::error::DataError;
use crate::image::{self, Decoded};

/// The class folders of `dir`, sorted by name, with their names.
fn class_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "listing", e))?;
    let mut classes = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DataError::io(dir, "listing", e))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") || !path.is_dir() {
            continue;
        }
        let Some(name) = name.to_str() else {
            return Err(invalid(
                &path,
                "a class folder's name must be UTF-8 text: it names the class".into(),
            ));
        };
        classes.push((name.to_string(), path));
    }
    classes.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if classes.len() > MAX_CLASSES {
        return Err(invalid(
            dir,
            format!(
                "{} class folders, more than the {MAX_CLASSES} accepted",
                classes.len()
            ),
        ));
    }
    Ok(classes)
}

/// The image files of a class folder, sorted by name.
fn images_of(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "listing", e))?;
    let mut images = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DataError::io(dir, "listing", e))?;
        let path = entry.path();
        if !crate::image::named_image(&path) {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, "opening", e))?;
        if !meta.is_file() {
            return Err(invalid(
                &path,
                format!(
                    "{}, not an image file (a class folder's .png and .pgm entries must be regular files)",
                    bnn_io::target::kind_of(&meta)
                ),
            ));
        }
        images.push(path);
    }
    images.sort();
    if images.is_empty() {
        return Err(invalid(
            dir,
            "class folder holds no .png or .pgm images".into(),
        ));
    }
    Ok(images)
}

/// The first image read: its file and size, which every other must have.
struct First {
    path: PathBuf,
    width: usize,
    height: usize,
}

/// Decodes one image; `first` is the size it must have, once known.
fn decode(path: &Path, first: Option<&First>) -> Result<Decoded, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
    let bytes = image::read_limited(file).map_err(|e| match e {
        image::ReadFailure::Io(e) => DataError::io(path, "reading", e),
        image::ReadFailure::TooLarge => invalid(
            path,
            format!(
                "larger than the {} bytes accepted for one image",
                image::MAX_IMAGE_BYTES
            ),
        ),
    })?;
    let decoded =
        match image::sniff(&bytes) {
            Some(image::Format::Png) => {
                image::decode_png_bounded(&bytes, first.map(|f| f.width * f.height))
                    .map_err(|e| invalid(path, format!("invalid PNG: {e}")))?
            }
            Some(image::Format::Pgm) => {
                image::decode_pgm(&bytes).map_err(|e| invalid(path, format!("invalid PGM: {e}")))?
            }
            None => return Err(invalid(
                path,
                "not a PNG or PGM image (its first bytes are neither the PNG signature nor P5/P2)"
                    .into(),
            )),
        };
    if let Some(f) = first {
        if (decoded.width, decoded.height) != (f.width, f.height) {
            return Err(invalid(
                path,
                format!(
                    "image is {}x{} (WxH), but {} is {}x{}: every image must have the same size",
                    decoded.width,
                    decoded.height,
                    f.path.display(),
                    f.width,
                    f.height
                ),
            ));
        }
    }
    Ok(decoded)
}

/// One split's images by class.
struct Split {
    name: String,
    images: Vec<Decoded>,
    labels: Vec<u16>,
}

/// Reads the class folders `classes`, all images of the size of `first`
/// (or of the first image read, then recorded there).
fn read_split(
    name: &str,
    classes: &[(String, PathBuf)],
    first: &mut Option<First>,
    left: u64,
) -> Result<Split, DataError> {
    let mut files = Vec::new();
    for (label, (_, dir)) in classes.iter().enumerate() {
        for path in images_of(dir)? {
            files.push((label as u16, path));
        }
    }
    let mut images = Vec::with_capacity(files.len());
    let mut labels = Vec::with_capacity(files.len());
    for (label, path) in files.iter() {
        let decoded = decode(path, first.as_ref())?;
        if first.is_none() {
            // Values in all, at three channels an image, before the rest
            // is decoded.
            let each = (decoded.width * decoded.height * 3) as u64;
            let all = each.saturating_mul(files.len() as u64);
            if all > left {
                return Err(invalid(
                    &classes[0].1,
                    format!(
                        "{} images of {}x{}: more than the {MAX_VALUES} values accepted",
                        files.len(),
                        decoded.width,
                        decoded.height
                    ),
                ));
            }
            *first = Some(First {
                path: path.clone(),
                width: decoded.width,
                height: decoded.height,
            });
        }
        images.push(decoded);
        labels.push(*label);
    }
    Ok(Split {
        name: name.to_string(),
        images,
        labels,
    })
}

/// Reads the directory (see the module documentation).
pub(super) fn read(root: &Path, opts: &SourceOptions) -> Result<LabelledSet, DataError> {
    if let Some(c) = opts.channels.filter(|&c| c != 1 && c != 3) {
        return Err(invalid(
            root,
            format!("{c} channels asked for: image folders are read as 1 (grey) or 3 (RGB)"),
        ));
    }
    let top = class_dirs(root)?;
    let names: Vec<&str> = top.iter().map(|(n, _)| n.as_str()).collect();
    let split = names.contains(&"train") && names.contains(&"test");
    let mut first = None;
    let (train, test, class_names) = if split {
        if let Some(other) = names.iter().find(|&&n| n != "train" && n != "test") {
            return Err(invalid(
                root,
                format!(
                    "holds train/ and test/ and also {other}/: class folders go inside train/ and test/"
                ),
            ));
        }
        let train_dir = root.join("train");
        let test_dir = root.join("test");
        let train_classes = class_dirs(&train_dir)?;
        let test_classes = class_dirs(&test_dir)?;
        let train_names: Vec<String> = train_classes.iter().map(|(n, _)| n.clone()).collect();
        let test_names: Vec<String> = test_classes.iter().map(|(n, _)| n.clone()).collect();
        if train_names != test_names {
            let only = |a: &[String], b: &[String]| a.iter().find(|n| !b.contains(n)).cloned();
            let detail = match (
                only(&train_names, &test_names),
                only(&test_names, &train_names),
            ) {
                (Some(n), _) => format!("class {n} is in train/ but not in test/"),
                (None, Some(n)) => format!("class {n} is in test/ but not in train/"),
                (None, None) => "train/ and test/ differ in their classes".to_string(),
            };
            return Err(invalid(
                root,
                format!("{detail}: both must hold the same class folders"),
            ));
        }
        check_classes(&train_dir, &train_classes)?;
        let train = read_split("train/", &train_classes, &mut first, MAX_VALUES)?;
        let used =
            (train.images.len() * first.as_ref().map_or(0, |f| f.width * f.height * 3)) as u64;
        let test = read_split(
            "test/",
            &test_classes,
            &mut first,
            MAX_VALUES - used.min(MAX_VALUES),
        )?;
        (train, Some(test), train_names)
    } else {
        check_classes(root, &top)?;
        let train = read_split("", &top, &mut first, MAX_VALUES)?;
        let names = top.iter().map(|(n, _)| n.clone()).collect();
        (train, None, names)
    };
    let colour = train
        .images
        .iter()
        .chain(test.iter().flat_map(|t| &t.images))
        .any(|d| d.channels == 3);
    let channels = opts.channels.unwrap_or(if colour { 3 } else { 1 });
    let first = first.expect("check_classes found an image");
    let part = |split: Split| {
        let count = split.images.len();
        let mut values = Vec::with_capacity(count * first.width * first.height * channels);
        for d in split.images {
            if channels == 3 {
                values.extend_from_slice(&d.into_rgb());
            } else {
                values.extend_from_slice(&d.into_gray());
            }
        }
        Part {
            values: Values::U8(values),
            labels: split.labels,
            count,
            name: if split.name.is_empty() {
                "images".into()
            } else {
                split.name
            },
        }
    };
    finish(
        root,
        Found {
            train: part(train),
            test: test.map(part),
            input_map: (first.height, first.width, channels),
            class_names: Some(class_names),
            classes: None,
        },
        opts,
    )
}

/// A folder of class folders needs two of them at least.
fn check_classes(dir: &Path, classes: &[(String, PathBuf)]) -> Result<(), DataError> {
    let found = match classes {
        [] => "no class folders".to_string(),
        [(name, _)] => format!("one class folder ({name}/)"),
        _ => return Ok(()),
    };
    Err(invalid(
        dir,
        format!("holds {found}: a classifier needs at least 2 classes, a folder of images each"),
    ))
}
