//! The `.npy` records `bnn classify --format npy` writes and `bnn serve`
//! answers with on `Accept: application/x-npy`: one layout, written in one
//! place, so that a file and a server answer read back alike with
//! `numpy.load`.
//!
//! Without scores the array is `(N,)` int64 classes; with scores it is a
//! structured array of `class` (`<i8`) and `scores` (`<f4` × classes).

/// A version 1.0 `.npy` header for `count` rows, padded with spaces to a
/// multiple of 64 bytes as NumPy writes it.
pub fn npy_header(count: u64, classes: usize, scores: bool) -> Vec<u8> {
    let descr = if scores {
        format!("[('class', '<i8'), ('scores', '<f4', ({classes},))]")
    } else {
        "'<i8'".to_string()
    };
    let dict = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': ({count},), }}");
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    let unpadded = header.len() + 2 + dict.len() + 1;
    let len = unpadded.next_multiple_of(64) - header.len() - 2;
    // The dict is a few hundred bytes at most, far below u16::MAX.
    header.extend_from_slice(&(len as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header.resize(header.len() + len - dict.len() - 1, b' ');
    header.push(b'\n');
    header
}

/// One record: the class, then its scores when the layout has them.
pub fn npy_row(out: &mut Vec<u8>, class: usize, s: &[f32], scores: bool) {
    // Class indices are below the output width, far below i64::MAX.
    out.extend_from_slice(&(class as i64).to_le_bytes());
    if scores {
        for &v in s {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_and_names_the_layout() {
        let h = npy_header(3, 10, true);
        assert_eq!(h.len() % 64, 0);
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.starts_with(
            "{'descr': [('class', '<i8'), ('scores', '<f4', (10,))], 'fortran_order': False, 'shape': (3,), }"
        ));
        assert!(h.ends_with(b"\n"));
        let mut row = Vec::new();
        npy_row(&mut row, 7, &[1.5, -2.0], true);
        assert_eq!(row.len(), 8 + 8);
        assert_eq!(&row[..8], &7i64.to_le_bytes());
    }
}
