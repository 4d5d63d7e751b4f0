//! Every `#[target_feature]` set in the x86 and ARM kernel files, against
//! the level whose check guards the function: a loop that enables a
//! feature its check does not test fails here, and so does a new function
//! that no row names. The files are read as text, so every architecture's
//! table is checked on any machine.

use super::cpu::{parse_off, Level};

/// The SIMD kernel sources, as compiled.
const FILES: [(&str, &str); 4] = [
    ("x86_64.rs", include_str!("x86_64.rs")),
    ("x86_64_rows.rs", include_str!("x86_64_rows.rs")),
    ("sliced_x86.rs", include_str!("sliced_x86.rs")),
    ("aarch64.rs", include_str!("aarch64.rs")),
];

/// Which level's check runs before each function with target features,
/// by file and name (`mod::name` inside an inline module, `mod::*` for a
/// whole module). The dispatch in `mod.rs` calls each entry point under
/// this check, directly or through a function of the same level.
const GUARDS: &[(&str, &str, Level)] = &[
    ("x86_64.rs", "pack_pixels_avx512_impl", Level::Avx512),
    ("x86_64.rs", "pack_pixel_rows_avx512_impl", Level::Avx512),
    ("x86_64.rs", "pack_pixel_rows_avx2_impl", Level::Avx2),
    ("x86_64.rs", "pack_pixels_avx2_impl", Level::Avx2),
    ("x86_64.rs", "xor_popcount_avx512_impl", Level::Avx512),
    ("x86_64.rs", "blocks_avx512", Level::Avx512),
    ("x86_64.rs", "scores_classes_avx512_impl", Level::Avx512),
    ("x86_64.rs", "block_popcounts_avx512_impl", Level::Avx512),
    ("x86_64.rs", "fire_avx512_impl", Level::Avx512),
    ("x86_64.rs", "fire_mask", Level::Avx512),
    ("x86_64.rs", "popcount_bytes", Level::Avx2),
    ("x86_64.rs", "xor_popcount_avx2_impl", Level::Avx2),
    ("x86_64.rs", "block_avx2", Level::Avx2),
    ("x86_64.rs", "block_popcounts_avx2_impl", Level::Avx2),
    ("x86_64.rs", "fire_avx2_impl", Level::Avx2),
    ("x86_64.rs", "pixel_fire_avx512_impl", Level::Avx512),
    ("x86_64.rs", "load_pixels", Level::Avx512),
    ("x86_64.rs", "group_indices", Level::Avx512),
    ("x86_64.rs", "append", Level::Avx512),
    ("x86_64.rs", "pixel_groups_avx512_impl", Level::Avx512),
    ("x86_64.rs", "pixel_pair_groups_avx512_impl", Level::Avx512),
    ("x86_64.rs", "pixel_dots_vnni_impl", Level::Vnni),
    ("x86_64.rs", "add_groups", Level::Vnni),
    ("x86_64.rs", "store_sums", Level::Avx512),
    ("x86_64.rs", "pixel_chunk_vnni", Level::Vnni),
    ("x86_64.rs", "pixel_dots_avx2_impl", Level::Avx2),
    ("x86_64.rs", "pixel_chunk_avx2", Level::Avx2),
    ("x86_64.rs", "pixel_pair_mixed_impl", Level::Vnni),
    ("x86_64.rs", "pixel_mixed_impl", Level::Vnni),
    ("x86_64.rs", "pixel_mixed", Level::Vnni),
    ("x86_64.rs", "new", Level::Vnni),
    ("x86_64.rs", "store", Level::Vnni),
    ("x86_64.rs", "add", Level::Vnni),
    ("x86_64.rs", "pixel_pair_mixed", Level::Vnni),
    ("x86_64_rows.rs", "rows_vnni", Level::Vnni),
    ("x86_64_rows.rs", "word_vnni", Level::Vnni),
    ("x86_64_rows.rs", "rows_avx2", Level::Avx2),
    ("x86_64_rows.rs", "word_avx2", Level::Avx2),
    ("sliced_x86.rs", "fire_rows_vbmi2_impl", Level::Vbmi2),
    ("sliced_x86.rs", "fire_pixel_rows_vbmi2_impl", Level::Vbmi2),
    ("sliced_x86.rs", "ones_with_popcnt", Level::Bmi),
    ("sliced_x86.rs", "minority_popcnt", Level::Bmi),
    ("sliced_x86.rs", "avx512::*", Level::Avx512),
    ("sliced_x86.rs", "avx2::*", Level::Avx2),
    ("sliced_x86.rs", "list_by_halves", Level::Vbmi2),
    ("sliced_x86.rs", "minority_vbmi2", Level::Vbmi2),
    ("sliced_x86.rs", "byte_lanes", Level::Vbmi2),
    ("sliced_x86.rs", "list_word", Level::Vbmi2),
    ("sliced_x86.rs", "minority_of_pixels_vbmi2", Level::Vbmi2),
    ("aarch64.rs", "xor_popcount_impl", Level::Neon),
    ("aarch64.rs", "block_neon", Level::Neon),
    ("aarch64.rs", "block_popcounts_impl", Level::Neon),
    ("aarch64.rs", "fire_impl", Level::Neon),
    ("aarch64.rs", "scores_classes_impl", Level::Neon),
    ("aarch64.rs", "pixel_fire_impl", Level::Neon),
    ("aarch64.rs", "udot", Level::Dotprod),
    ("aarch64.rs", "pixel_dots_udot", Level::Dotprod),
    ("aarch64.rs", "pixel_chunk_udot", Level::Dotprod),
    ("aarch64.rs", "store_dots", Level::Neon),
    ("aarch64.rs", "pixel_dots_widening", Level::Neon),
    ("aarch64.rs", "pixel_chunk_widening", Level::Neon),
    ("aarch64.rs", "neon_sliced::*", Level::Neon),
];

/// One `#[target_feature(enable = "…")]` found in a file: the function it
/// applies to (`mod::name` inside an inline module; `sliced_kernel` for
/// the attribute handed to that macro) and its features.
#[derive(Debug)]
struct Enabled {
    file: &'static str,
    name: String,
    features: Vec<String>,
}

fn scan(file: &'static str, text: &str) -> Vec<Enabled> {
    const ATTR: &str = "target_feature(enable = \"";
    let lines: Vec<&str> = text.lines().collect();
    let mut module: Option<String> = None;
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("pub(crate) mod ").or(t.strip_prefix("mod ")) {
            if line.ends_with('{') && !line.starts_with(' ') {
                module = rest.split_whitespace().next().map(str::to_owned);
            }
        }
        if *line == "}" {
            module = None;
        }
        let Some(at) = line.find(ATTR) else { continue };
        let list = &line[at + ATTR.len()..];
        let features = list[..list.find('"').expect("closing quote")]
            .split(',')
            .map(|f| f.trim().to_owned())
            .collect();
        let name = if line.contains("sliced_kernel!") {
            "sliced_kernel".to_owned()
        } else {
            let decl = lines[i + 1..]
                .iter()
                .find(|l| l.contains("fn "))
                .expect("a function after the attribute");
            let after = &decl[decl.find("fn ").unwrap() + 3..];
            after
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap()
                .to_owned()
        };
        let name = match &module {
            Some(m) => format!("{m}::{name}"),
            None => name,
        };
        found.push(Enabled {
            file,
            name,
            features,
        });
    }
    found
}

fn guard(e: &Enabled) -> Option<Level> {
    GUARDS.iter().find_map(|&(file, name, level)| {
        let whole_module = name
            .strip_suffix("::*")
            .is_some_and(|m| e.name.starts_with(&format!("{m}::")));
        (file == e.file && (name == e.name || whole_module)).then_some(level)
    })
}

#[test]
fn every_target_feature_set_is_tested_by_its_guard() {
    let found: Vec<Enabled> = FILES.iter().flat_map(|&(f, t)| scan(f, t)).collect();
    assert!(found.len() > 80, "the scan finds the attributes: {found:?}");
    let mut wrong = Vec::new();
    for e in &found {
        match guard(e) {
            None => wrong.push(format!("{}: {} has no row in GUARDS", e.file, e.name)),
            Some(level) => {
                for f in &e.features {
                    if !level.features().contains(&f.as_str()) {
                        wrong.push(format!(
                            "{}: {} enables {f}, which the {level:?} check does not test",
                            e.file, e.name
                        ));
                    }
                }
            }
        }
    }
    for &(file, name, _) in GUARDS {
        let used = found.iter().any(|e| {
            e.file == file
                && (e.name == name
                    || name
                        .strip_suffix("::*")
                        .is_some_and(|m| e.name.starts_with(&format!("{m}::"))))
        });
        if !used {
            wrong.push(format!(
                "{file}: GUARDS names {name}, which no attribute has"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A level that runs inside another kernel checks everything that
/// kernel's level checks (its loops call the kernel's own).
#[test]
fn inner_levels_include_their_kernel() {
    for inner in [Level::Vnni, Level::Vbmi2] {
        for f in Level::Avx512.features() {
            assert!(inner.features().contains(f), "{inner:?} lacks {f}");
        }
    }
    for f in Level::Avx2.features() {
        assert!(Level::Avx512.features().contains(f), "Avx512 lacks {f}");
    }
    for f in Level::Neon.features() {
        assert!(Level::Dotprod.features().contains(f), "Dotprod lacks {f}");
    }
}

/// Each level belongs to one architecture, and is detected only in a build
/// for it.
#[test]
fn levels_belong_to_one_architecture() {
    for &l in Level::ALL {
        let arch = match l {
            Level::Neon | Level::Dotprod => "aarch64",
            _ => "x86_64",
        };
        assert_eq!(l.arch(), arch, "{l:?}");
        if arch != std::env::consts::ARCH {
            assert!(
                !l.detected(),
                "{l:?} detected in a build for another architecture"
            );
        }
    }
}

/// The scan reads what it claims: a file with one attribute on a
/// module's function gives that module, name and features.
#[test]
fn scan_reads_attributes() {
    let text = "mod m {\n    #[target_feature(enable = \"avx2,bmi1\")]\n    #[inline]\n    unsafe fn go<const N: usize>() {}\n}\n#[target_feature(enable = \"popcnt\")]\nfn top() {}\n";
    let found = scan("x.rs", text);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].name, "m::go");
    assert_eq!(found[0].features, ["avx2", "bmi1"]);
    assert_eq!(found[1].name, "top");
    assert_eq!(found[1].features, ["popcnt"]);
}

#[test]
fn features_off_names_levels_and_refuses_unknown_ones() {
    assert_eq!(
        parse_off(" vnni, VBMI2 ,bmi,dotprod").unwrap(),
        [Level::Vnni, Level::Vbmi2, Level::Bmi, Level::Dotprod]
    );
    assert_eq!(parse_off("").unwrap(), []);
    let e = parse_off("vnni,avx2").unwrap_err().to_string();
    assert!(
        e.contains("unknown feature 'avx2'") && e.contains("known: vnni, vbmi2, bmi, dotprod"),
        "{e}"
    );
}
