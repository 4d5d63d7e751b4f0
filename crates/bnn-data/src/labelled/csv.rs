//! A CSV file: a header row naming the columns, then one sample a line of
//! numeric feature columns (read as `f32`) and a label column
//! ([`SourceOptions::label_column`], by default the last).
//!
//! Labels that are all integers are the classes themselves (`1 +` the
//! largest); otherwise every distinct label is a class name, the names
//! sorted (byte order) and each label the index of its name. Cells may be
//! quoted (`"a, b"`, `""` for a quote inside) and surrounded by spaces;
//! lines may end in `\r\n`, and blank lines may end the file. A ragged row,
//! an empty cell, a cell that is not a number or not finite is an error
//! naming the line and the column.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{finish, invalid, Found, LabelledSet, Part, SourceOptions, Values};
use super::{MAX_CLASSES, MAX_VALUES};
use crate::error::DataError;

/// Longest line accepted: far more than any row of features needs, and a
/// bound on what one line of a file without line breaks can cost.
const MAX_LINE: u64 = 16 << 20;

/// The cells of one line, unquoted and trimmed, or what is wrong with it.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&'\t') {
            chars.next();
        }
        let mut cell = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        cell.push('"');
                    }
                    Some('"') => break,
                    Some(c) => cell.push(c),
                    None => {
                        return Err(format!(
                            "column {}: a quote is not closed on its line",
                            cells.len() + 1
                        ))
                    }
                }
            }
            while chars.peek() == Some(&' ') || chars.peek() == Some(&'\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    cells.push(cell);
                    return Ok(cells);
                }
                Some(',') => cells.push(cell),
                Some(c) => {
                    return Err(format!(
                        "column {}: {c:?} after a closing quote",
                        cells.len() + 1
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        cells.push(cell.trim_end().to_string());
                        return Ok(cells);
                    }
                    Some(',') => break,
                    Some(c) => cell.push(c),
                }
            }
            cells.push(cell.trim_end().to_string());
        }
    }
}

/// Reads the next line into `buf` (without its `\n` or `\r\n`); false at
/// the end of the file.
fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    path: &Path,
    line: usize,
) -> Result<bool, DataError> {
    buf.clear();
    let n = reader
        .take(MAX_LINE + 1)
        .read_until(b'\n', buf)
        .map_err(|e| DataError::io(path, "reading", e))?;
    if n == 0 {
        return Ok(false);
    }
    if buf.len() as u64 > MAX_LINE {
        return Err(invalid(
            path,
            format!("line {line} is longer than the {MAX_LINE} bytes accepted"),
        ));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}

/// Reads a CSV file (see the module documentation).
pub(crate) fn read(path: &Path, opts: &SourceOptions) -> Result<LabelledSet, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let at = |line: usize, detail: String| invalid(path, format!("line {line}: {detail}"));
    let text = |buf: &[u8], line: usize| -> Result<String, DataError> {
        String::from_utf8(buf.to_vec()).map_err(|_| at(line, "is not UTF-8 text".into()))
    };

    if !next_line(&mut reader, &mut buf, path, 1)? {
        return Err(invalid(
            path,
            "is empty: a CSV needs a header row naming its columns".into(),
        ));
    }
    let mut header_text = text(&buf, 1)?;
    if let Some(rest) = header_text.strip_prefix('\u{feff}') {
        header_text = rest.to_string();
    }
    let header = split(&header_text).map_err(|d| at(1, d))?;
    let label_col = match (&opts.label_column, opts.unlabelled) {
        (Some(name), unlabelled) => match header.iter().position(|h| h == name) {
            Some(i) => Some(i),
            None if unlabelled => None,
            None => {
                let shown: Vec<&str> = header.iter().take(8).map(String::as_str).collect();
                return Err(at(
                    1,
                    format!(
                        "no column named '{name}' (columns: {}{})",
                        shown.join(", "),
                        if header.len() > 8 { ", …" } else { "" }
                    ),
                ));
            }
        },
        (None, true) => None,
        (None, false) => Some(header.len() - 1),
    };
    let width = header.len() - usize::from(label_col.is_some());
    if width == 0 {
        return Err(at(
            1,
            "no feature columns: a CSV needs numeric columns beside the label".into(),
        ));
    }
    if let Some(i) = header.iter().position(String::is_empty) {
        return Err(at(1, format!("column {} has no name", i + 1)));
    }

    let mut values: Vec<f32> = Vec::new();
    let mut ids: Vec<u32> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut lookup: HashMap<String, u32> = HashMap::new();
    let mut count = 0usize;
    let mut blank: Option<usize> = None;
    let mut line = 1;
    while next_line(&mut reader, &mut buf, path, line + 1)? {
        line += 1;
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            blank.get_or_insert(line);
            continue;
        }
        if let Some(b) = blank {
            return Err(at(b, "is blank, with rows after it".into()));
        }
        let row = split(&text(&buf, line)?).map_err(|d| at(line, d))?;
        if row.len() != header.len() {
            return Err(at(
                line,
                format!(
                    "{} cells, but the header names {} columns",
                    row.len(),
                    header.len()
                ),
            ));
        }
        if values.len() as u64 + width as u64 > MAX_VALUES {
            return Err(at(
                line,
                format!("more than the {MAX_VALUES} values accepted"),
            ));
        }
        for (i, cell) in row.iter().enumerate() {
            let column = || format!("column '{}'", header[i]);
            if Some(i) == label_col {
                if cell.is_empty() {
                    return Err(at(line, format!("{}: empty label", column())));
                }
                let id = match lookup.get(cell) {
                    Some(&id) => id,
                    None => {
                        if names.len() >= MAX_CLASSES {
                            return Err(at(
                                line,
                                format!("{}: more than {MAX_CLASSES} distinct labels", column()),
                            ));
                        }
                        let id = names.len() as u32;
                        names.push(cell.clone());
                        lookup.insert(cell.clone(), id);
                        id
                    }
                };
                ids.push(id);
                continue;
            }
            if cell.is_empty() {
                return Err(at(line, format!("{}: empty cell", column())));
            }
            let v: f32 = cell.parse().map_err(|_| {
                at(
                    line,
                    format!(
                        "{}: '{}' is not a number",
                        column(),
                        bnn_io::text::shortened(cell, 40)
                    ),
                )
            })?;
            if !v.is_finite() {
                return Err(at(
                    line,
                    format!("{}: {cell} is not a finite number", column()),
                ));
            }
            values.push(v);
        }
        count += 1;
    }

    let (labels, class_names) = labels(&ids, &names).map_err(|(value, first)| {
        // The line of the first row with that label, for the message.
        let row = ids.iter().position(|&id| id == first).unwrap_or(0);
        let col = label_col.map_or("", |c| header[c].as_str());
        invalid(
            path,
            format!(
                "line {}: column '{col}': label {value} is not a class 0..={}",
                row + 2,
                MAX_CLASSES - 1
            ),
        )
    })?;
    finish(
        path,
        Found {
            train: Part {
                values: Values::F32(values),
                labels,
                count,
                name: "rows".into(),
            },
            test: None,
            input_map: (1, width, 1),
            class_names,
            classes: None,
        },
        opts,
    )
}

/// Labels from the distinct label texts `names` (`ids` indexes them per
/// row): integers as they are, or (when any is not an integer) the index
/// of each name in byte order. An integer out of range comes back as its
/// text and id.
#[allow(clippy::type_complexity)]
fn labels(ids: &[u32], names: &[String]) -> Result<(Vec<u16>, Option<Vec<String>>), (String, u32)> {
    let integers: Option<Vec<i64>> = names.iter().map(|n| n.parse::<i64>().ok()).collect();
    if let Some(integers) = integers {
        let mut map = Vec::with_capacity(integers.len());
        for (id, &v) in integers.iter().enumerate() {
            match u16::try_from(v)
                .ok()
                .filter(|&l| usize::from(l) < MAX_CLASSES)
            {
                Some(l) => map.push(l),
                None => return Err((names[id].clone(), id as u32)),
            }
        }
        return Ok((ids.iter().map(|&id| map[id as usize]).collect(), None));
    }
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|&a, &b| {
        names[a as usize]
            .as_bytes()
            .cmp(names[b as usize].as_bytes())
    });
    let mut index = vec![0u16; names.len()];
    for (rank, &id) in order.iter().enumerate() {
        index[id as usize] = rank as u16;
    }
    let sorted = order.iter().map(|&id| names[id as usize].clone()).collect();
    Ok((
        ids.iter().map(|&id| index[id as usize]).collect(),
        Some(sorted),
    ))
}
