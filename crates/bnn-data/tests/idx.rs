//! IDX reading and writing: round trips and every kind of damage.

use std::path::Path;

use bnn_data::idx::{
    read_images, read_labels, write_images, write_labels, ImageStream, Images, Labels,
};
use bnn_data::DataError;
use bnn_testkit::expect::error as fails;
use bnn_testkit::files::{gzip, image_header, images, labels, write};

fn msg(e: &DataError) -> String {
    e.to_string()
}

/// The error of a call that must fail, without printing the (large) value
/// if it unexpectedly succeeds.
#[test]
fn raw_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(37, 5, 3, 1);
    let labs = labels(37, 2);
    let ip = dir.path().join("i");
    let lp = dir.path().join("l");
    write_images(&ip, &imgs).unwrap();
    write_labels(&lp, &labs).unwrap();
    assert_eq!(std::fs::metadata(&ip).unwrap().len(), 16 + 37 * 15);
    assert_eq!(std::fs::metadata(&lp).unwrap().len(), 8 + 37);
    assert_eq!(read_images(&ip).unwrap(), imgs);
    assert_eq!(read_labels(&lp).unwrap(), labs);
    assert_eq!(read_images(&ip).unwrap().image(36), &imgs.pixels[36 * 15..]);
}

#[test]
fn gzip_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(20, 28, 28, 3);
    let labs = labels(20, 4);
    let raw = dir.path().join("raw");
    write_images(&raw, &imgs).unwrap();
    let gz = gzip(&std::fs::read(&raw).unwrap());
    // Once with the usual extension, once without any.
    for name in ["imgs.gz", "imgs-no-extension"] {
        let p = dir.path().join(name);
        write(&p, &gz);
        assert_eq!(read_images(&p).unwrap(), imgs, "{name}");
    }
    let lraw = dir.path().join("lraw");
    write_labels(&lraw, &labs).unwrap();
    let lp = dir.path().join("labels");
    write(&lp, &gzip(&std::fs::read(&lraw).unwrap()));
    assert_eq!(read_labels(&lp).unwrap(), labs);
}

#[test]
fn write_rejects_inconsistent_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    let mut imgs = images(3, 2, 2, 1);
    imgs.pixels.pop();
    let e = write_images(&p, &imgs).unwrap_err();
    assert!(matches!(e, DataError::BadDimensions { .. }), "{e}");
    assert!(
        msg(&e).contains("needs 12 bytes") && msg(&e).contains("11"),
        "{e}"
    );
    assert!(!p.exists());
    // No labels is an empty file, not an inconsistent one: it reads back.
    write_labels(&p, &Labels { labels: vec![] }).unwrap();
    assert!(read_labels(&p).unwrap().labels.is_empty());
}

/// Cuts a valid raw file at several offsets in the header and the data.
#[test]
fn raw_truncation_is_reported_with_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    write_images(&full, &images(10, 28, 28, 5)).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    assert_eq!(bytes.len(), 7856);
    for cut in [0usize, 3, 4, 8, 15, 16, 17, 800, 7000, 7855] {
        let p = dir.path().join(format!("cut{cut}"));
        write(&p, &bytes[..cut]);
        let e = fails(read_images(&p));
        let m = msg(&e);
        assert!(m.starts_with(&p.display().to_string()), "{m}");
        match e {
            DataError::Truncated {
                expected, found, ..
            } => {
                assert_eq!(found, cut as u64, "{m}");
                if cut >= 16 {
                    assert_eq!(expected, 7856, "{m}");
                    assert!(
                        m.contains("truncated IDX image file: header claims 10 images of 28x28 (7856 bytes) but file has")
                            && m.contains(&format!("{cut} bytes")),
                        "{m}"
                    );
                } else {
                    assert!(m.contains("header needs 16 bytes"), "{m}");
                }
            }
            other => panic!("cut at {cut}: expected Truncated, got {other}"),
        }
        // The stream reader checks the length up front for raw files.
        let e = fails(ImageStream::open(&p));
        assert!(matches!(e, DataError::Truncated { .. }), "{e}");
    }
}

#[test]
fn gzip_truncation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    write_images(&full, &images(10, 28, 28, 6)).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    // A well-formed gzip stream whose content is short.
    for cut in [10usize, 16, 500, 7855] {
        let p = dir.path().join(format!("short{cut}.gz"));
        write(&p, &gzip(&bytes[..cut]));
        let e = fails(read_images(&p));
        let m = msg(&e);
        assert!(matches!(e, DataError::Truncated { .. }), "{m}");
        assert!(m.starts_with(&p.display().to_string()), "{m}");
        assert!(m.contains("decompressed data has"), "{m}");
        assert!(m.contains(&cut.to_string()), "{m}");
    }
    // A gzip stream that is itself cut off.
    let gz = gzip(&bytes);
    for cut in [2usize, 11, gz.len() / 2, gz.len() - 4] {
        let p = dir.path().join(format!("cutgz{cut}"));
        write(&p, &gz[..cut]);
        let e = fails(read_images(&p));
        let m = msg(&e);
        assert!(m.starts_with(&p.display().to_string()), "{m}");
        assert!(
            matches!(e, DataError::Truncated { .. } | DataError::Io { .. }),
            "{m}"
        );
        let streamed = ImageStream::open(&p).and_then(|mut s| {
            let mut buf = Vec::new();
            while s.next_chunk(3, &mut buf)? > 0 {}
            Ok(())
        });
        let e = fails(streamed);
        let m = msg(&e);
        assert!(m.starts_with(&p.display().to_string()), "{cut}: {m}");
        assert!(
            matches!(e, DataError::Truncated { .. } | DataError::Io { .. }),
            "{cut}: {m}"
        );
    }
    // Only the gzip trailer (CRC and size) is missing: all data is there,
    // but the file is still incomplete.
    let p = dir.path().join("no-trailer.gz");
    write(&p, &gz[..gz.len() - 8]);
    let e = fails(read_images(&p));
    assert!(matches!(e, DataError::Truncated { .. }), "{e}");
    assert!(msg(&e).contains("gzip stream is cut off"), "{e}");
    // A corrupted checksum is caught too.
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    write(&p, &bad);
    let e = fails(read_images(&p));
    assert!(msg(&e).contains("checksum"), "{e}");
}

#[test]
fn huge_claim_in_tiny_file_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = image_header(1 << 31, 28, 28);
    data.extend_from_slice(&[0u8; 100]);
    let raw = dir.path().join("huge-raw");
    write(&raw, &data);
    let gz = dir.path().join("huge.gz");
    write(&gz, &gzip(&data));
    let expected_total = (1u64 << 31) * 784 + 16;
    for p in [&raw, &gz] {
        let e = fails(read_images(p));
        let m = msg(&e);
        match e {
            DataError::Truncated {
                expected, found, ..
            } => {
                assert_eq!(expected, expected_total);
                assert_eq!(found, 116);
            }
            other => panic!("expected Truncated, got {other}"),
        }
        assert!(m.contains("2147483648 images of 28x28"), "{m}");
    }
    // Streaming the gzip file: opening cannot know, the first chunk finds out.
    let mut s = ImageStream::open(&gz).unwrap();
    assert_eq!(s.count(), 1 << 31);
    let mut buf = Vec::new();
    let e = s.next_chunk(usize::MAX, &mut buf).unwrap_err();
    assert!(matches!(e, DataError::Truncated { found: 116, .. }), "{e}");
    assert!(
        buf.capacity() < 64 << 20,
        "buffer sized by the header's claim"
    );
}

#[test]
fn overflowing_dimensions_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("overflow");
    write(&p, &image_header(u32::MAX, u32::MAX, u32::MAX));
    let e = fails(read_images(&p));
    assert!(matches!(e, DataError::BadDimensions { .. }), "{e}");
    assert!(msg(&e).contains("overflows"), "{e}");
}

#[test]
fn zero_dimensions_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (n, r, c) in [(0, 0, 28), (5, 0, 28), (5, 28, 0)] {
        let p = dir.path().join(format!("z{n}{r}{c}"));
        write(&p, &image_header(n, r, c));
        let e = fails(read_images(&p));
        assert!(matches!(e, DataError::BadDimensions { .. }), "{e}");
        assert!(msg(&e).contains("zero") && msg(&e).contains(&format!("{n} images of {r}x{c}")));
    }
}

/// A well-formed file of no images or labels is read as an empty set,
/// whole or streamed, as a `.npy` of shape (0, 784) is: classifying it gives
/// an empty result (training on it is refused where the set is formed).
#[test]
fn zero_images_are_an_empty_set() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.idx");
    write(&p, &image_header(0, 28, 28));
    let images = read_images(&p).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (0, 28, 28));
    assert!(images.pixels.is_empty());
    assert_eq!(bnn_data::idx::ImageStream::open(&p).unwrap().count(), 0);
    let p = dir.path().join("empty-labels.idx");
    write(&p, &[0, 0, 8, 1, 0, 0, 0, 0]);
    assert!(read_labels(&p).unwrap().labels.is_empty());
}

#[test]
fn wrong_magic_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let lp = dir.path().join("labels");
    write_labels(&lp, &labels(5, 1)).unwrap();
    let e = fails(read_images(&lp));
    assert!(
        matches!(
            e,
            DataError::BadMagic {
                expected: 0x803,
                found: 0x801,
                ..
            }
        ),
        "{e}"
    );
    let m = msg(&e);
    assert!(m.contains("expected 0x00000803, found 0x00000801"), "{m}");
    assert!(m.starts_with(&lp.display().to_string()), "{m}");

    let junk = dir.path().join("junk.gz");
    write(&junk, &gzip(b"PK\x03\x04 this is not idx at all"));
    let e = fails(read_labels(&junk));
    assert!(msg(&e).contains("expected 0x00000801"), "{e}");
}

#[test]
fn trailing_data_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    write_images(&full, &images(4, 3, 3, 8)).unwrap();
    let mut bytes = std::fs::read(&full).unwrap();
    bytes.extend_from_slice(b"xyz");
    let raw = dir.path().join("trail");
    write(&raw, &bytes);
    let e = fails(read_images(&raw));
    assert!(
        matches!(e, DataError::TrailingData { expected: 52, .. }),
        "{e}"
    );
    assert!(msg(&e).contains("file has 55 bytes"), "{e}");
    let e = fails(ImageStream::open(&raw));
    assert!(matches!(e, DataError::TrailingData { .. }), "{e}");

    let gz = dir.path().join("trail.gz");
    write(&gz, &gzip(&bytes));
    let e = fails(read_images(&gz));
    assert!(matches!(e, DataError::TrailingData { .. }), "{e}");
    assert!(msg(&e).starts_with(&gz.display().to_string()));
    // The stream reports it when the last image is read.
    let mut s = ImageStream::open(&gz).unwrap();
    let mut buf = Vec::new();
    assert_eq!(s.next_chunk(3, &mut buf).unwrap(), 3);
    let e = s.next_chunk(3, &mut buf).unwrap_err();
    assert!(matches!(e, DataError::TrailingData { .. }), "{e}");

    let lraw = dir.path().join("ltrail");
    let mut lbytes = Vec::new();
    lbytes.extend_from_slice(&0x801u32.to_be_bytes());
    lbytes.extend_from_slice(&2u32.to_be_bytes());
    lbytes.extend_from_slice(&[1, 2, 3]);
    write(&lraw, &lbytes);
    let e = fails(read_labels(&lraw));
    assert!(
        msg(&e).contains("header claims 2 labels (10 bytes) but file has 11 bytes"),
        "{e}"
    );
}

fn stream_all(path: &Path, chunk: usize) -> Result<(Vec<u8>, Vec<usize>), DataError> {
    let mut s = ImageStream::open(path)?;
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    let mut buf = Vec::new();
    loop {
        let n = s.next_chunk(chunk, &mut buf)?;
        assert_eq!(buf.len(), n * s.image_len());
        if n == 0 {
            break;
        }
        sizes.push(n);
        all.extend_from_slice(&buf);
    }
    Ok((all, sizes))
}

#[test]
fn stream_matches_whole_file_reader() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(3001, 7, 5, 9);
    let raw = dir.path().join("s");
    write_images(&raw, &imgs).unwrap();
    let gz = dir.path().join("s.gz");
    write(&gz, &gzip(&std::fs::read(&raw).unwrap()));
    for p in [&raw, &gz] {
        let s = ImageStream::open(p).unwrap();
        assert_eq!(
            (s.count(), s.rows(), s.cols(), s.image_len()),
            (3001, 7, 5, 35)
        );
        let whole = read_images(p).unwrap();
        for chunk in [1usize, 7, 100, 1000, 3001, 5000] {
            let (all, sizes) = stream_all(p, chunk).unwrap();
            assert_eq!(all, whole.pixels, "chunk {chunk}");
            assert_eq!(sizes.iter().sum::<usize>(), 3001);
            assert!(sizes.iter().all(|&n| n <= chunk));
            assert_eq!(sizes.len(), 3001usize.div_ceil(chunk));
        }
    }
}

#[test]
fn stream_reports_truncation_in_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("s");
    write_images(&raw, &images(100, 4, 4, 10)).unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let gz = dir.path().join("s.gz");
    // 60 whole images and half of the 61st.
    write(&gz, &gzip(&bytes[..16 + 60 * 16 + 8]));
    let mut s = ImageStream::open(&gz).unwrap();
    let mut buf = Vec::new();
    assert_eq!(s.next_chunk(30, &mut buf).unwrap(), 30);
    assert_eq!(s.next_chunk(30, &mut buf).unwrap(), 30);
    let e = s.next_chunk(30, &mut buf).unwrap_err();
    let m = msg(&e);
    assert!(
        matches!(
            e,
            DataError::Truncated {
                found: 984,
                expected: 1616,
                ..
            }
        ),
        "{m}"
    );
    assert!(
        m.starts_with(&gz.display().to_string()) && m.contains("truncated"),
        "{m}"
    );
}

#[test]
fn missing_file_names_path() {
    let e = read_images(Path::new("/nonexistent/dir/imgs")).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert!(msg(&e).starts_with("/nonexistent/dir/imgs: opening"), "{e}");
}

#[test]
fn images_accessors() {
    let imgs = Images {
        count: 2,
        rows: 1,
        cols: 2,
        pixels: vec![1, 2, 3, 4],
    };
    assert_eq!(imgs.image_len(), 2);
    assert_eq!(imgs.image(1), &[3, 4]);
}
