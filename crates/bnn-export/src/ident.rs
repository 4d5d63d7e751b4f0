//! The export name: the prefix of every C symbol, C macro, Verilog module and
//! file the export writes, so it has to be an identifier in both languages.

use crate::error::{ExportError, Result};

/// Longest accepted name. C99 promises only 31 significant characters for
/// external names and the longest suffix added is `_predict`.
pub const MAX_NAME: usize = 23;

/// C99 keywords. (The `_Bool`-style ones already fail the leading-underscore
/// rule.)
const C_KEYWORDS: &[&str] = &[
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while",
];

/// The standard C headers (C99 and C11) by stem. The export writes
/// `NAME.h` and its C file includes some of these, so a `stdint.h` of our own
/// beside it would be found first by `#include "..."` and `-I.` searches and
/// break the build in ways that are hard to trace.
const C_HEADERS: &[&str] = &[
    "assert",
    "complex",
    "ctype",
    "errno",
    "fenv",
    "float",
    "inttypes",
    "iso646",
    "limits",
    "locale",
    "math",
    "setjmp",
    "signal",
    "stdalign",
    "stdarg",
    "stdatomic",
    "stdbool",
    "stddef",
    "stdint",
    "stdio",
    "stdlib",
    "stdnoreturn",
    "string",
    "tgmath",
    "threads",
    "time",
    "uchar",
    "wchar",
    "wctype",
];

/// Reserved words of Verilog and SystemVerilog, as one table: IEEE
/// 1800-2017 annex B, which holds every Verilog-2001 and Verilog-2005 (IEEE
/// 1364) reserved word as well. The name is the Verilog module's, and
/// simulators and synthesis tools read `.v` files with the SystemVerilog
/// keywords on (Verilator always, Icarus with `-g2012`), so `logic` or
/// `class` is refused here rather than by the user's tools.
const VERILOG_KEYWORDS: &[&str] = &[
    "accept_on",
    "alias",
    "always",
    "always_comb",
    "always_ff",
    "always_latch",
    "and",
    "assert",
    "assign",
    "assume",
    "automatic",
    "before",
    "begin",
    "bind",
    "bins",
    "binsof",
    "bit",
    "break",
    "buf",
    "bufif0",
    "bufif1",
    "byte",
    "case",
    "casex",
    "casez",
    "cell",
    "chandle",
    "checker",
    "class",
    "clocking",
    "cmos",
    "config",
    "const",
    "constraint",
    "context",
    "continue",
    "cover",
    "covergroup",
    "coverpoint",
    "cross",
    "deassign",
    "default",
    "defparam",
    "design",
    "disable",
    "dist",
    "do",
    "edge",
    "else",
    "end",
    "endcase",
    "endchecker",
    "endclass",
    "endclocking",
    "endconfig",
    "endfunction",
    "endgenerate",
    "endgroup",
    "endinterface",
    "endmodule",
    "endpackage",
    "endprimitive",
    "endprogram",
    "endproperty",
    "endspecify",
    "endsequence",
    "endtable",
    "endtask",
    "enum",
    "event",
    "eventually",
    "expect",
    "export",
    "extends",
    "extern",
    "final",
    "first_match",
    "for",
    "force",
    "foreach",
    "forever",
    "fork",
    "forkjoin",
    "function",
    "generate",
    "genvar",
    "global",
    "highz0",
    "highz1",
    "if",
    "iff",
    "ifnone",
    "ignore_bins",
    "illegal_bins",
    "implements",
    "implies",
    "import",
    "incdir",
    "include",
    "initial",
    "inout",
    "input",
    "inside",
    "instance",
    "int",
    "integer",
    "interconnect",
    "interface",
    "intersect",
    "join",
    "join_any",
    "join_none",
    "large",
    "let",
    "liblist",
    "library",
    "local",
    "localparam",
    "logic",
    "longint",
    "macromodule",
    "matches",
    "medium",
    "modport",
    "module",
    "nand",
    "negedge",
    "nettype",
    "new",
    "nexttime",
    "nmos",
    "nor",
    "noshowcancelled",
    "not",
    "notif0",
    "notif1",
    "null",
    "or",
    "output",
    "package",
    "packed",
    "parameter",
    "pmos",
    "posedge",
    "primitive",
    "priority",
    "program",
    "property",
    "protected",
    "pull0",
    "pull1",
    "pulldown",
    "pullup",
    "pulsestyle_ondetect",
    "pulsestyle_onevent",
    "pure",
    "rand",
    "randc",
    "randcase",
    "randsequence",
    "rcmos",
    "real",
    "realtime",
    "ref",
    "reg",
    "reject_on",
    "release",
    "repeat",
    "restrict",
    "return",
    "rnmos",
    "rpmos",
    "rtran",
    "rtranif0",
    "rtranif1",
    "s_always",
    "s_eventually",
    "s_nexttime",
    "s_until",
    "s_until_with",
    "scalared",
    "sequence",
    "shortint",
    "shortreal",
    "showcancelled",
    "signed",
    "small",
    "soft",
    "solve",
    "specify",
    "specparam",
    "static",
    "string",
    "strong",
    "strong0",
    "strong1",
    "struct",
    "super",
    "supply0",
    "supply1",
    "sync_accept_on",
    "sync_reject_on",
    "table",
    "tagged",
    "task",
    "this",
    "throughout",
    "time",
    "timeprecision",
    "timeunit",
    "tran",
    "tranif0",
    "tranif1",
    "tri",
    "tri0",
    "tri1",
    "triand",
    "trior",
    "trireg",
    "type",
    "typedef",
    "union",
    "unique",
    "unique0",
    "unsigned",
    "until",
    "until_with",
    "untyped",
    "use",
    "uwire",
    "var",
    "vectored",
    "virtual",
    "void",
    "wait",
    "wait_order",
    "wand",
    "weak",
    "weak0",
    "weak1",
    "while",
    "wildcard",
    "wire",
    "with",
    "within",
    "wor",
    "xnor",
    "xor",
];

/// Checks that `name` is usable as the export prefix; the error says why not.
pub fn check_name(name: &str) -> Result<()> {
    let fail = |problem: &str| {
        Err(ExportError::Name {
            name: name.escape_debug().to_string(),
            problem: problem.to_string(),
        })
    };
    let Some(first) = name.chars().next() else {
        return fail("it is empty");
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return fail("only ASCII letters, digits and '_' are allowed in a C identifier");
    }
    if first.is_ascii_digit() {
        return fail("a C identifier cannot start with a digit");
    }
    if first == '_' {
        return fail("names starting with '_' are reserved in C at file scope");
    }
    if name.len() > MAX_NAME {
        return fail(&format!(
            "longer than {MAX_NAME} characters (C99 guarantees 31 significant characters for `NAME_predict`)"
        ));
    }
    if C_KEYWORDS.contains(&name) {
        return fail("it is a C keyword");
    }
    // Case-insensitive filesystems make `STDINT.h` the same file.
    if C_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return fail(&format!(
            "{name}.h would shadow the standard C header <{}.h>",
            name.to_ascii_lowercase()
        ));
    }
    if VERILOG_KEYWORDS.contains(&name) {
        return fail("it is a reserved word of Verilog or SystemVerilog (IEEE 1800-2017)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_identifiers() {
        for ok in ["bnn", "a", "mnist_512", "Net2", "x_"] {
            check_name(ok).unwrap();
        }
    }

    /// The table is annex B of IEEE 1800-2017 (248 words, in its order),
    /// and every word of it is refused.
    #[test]
    fn every_reserved_word_is_refused() {
        assert_eq!(VERILOG_KEYWORDS.len(), 248);
        let distinct: std::collections::HashSet<_> = VERILOG_KEYWORDS.iter().collect();
        assert_eq!(distinct.len(), 248, "a word is listed twice");
        for word in VERILOG_KEYWORDS {
            let err = check_name(word).unwrap_err().to_string();
            // A word C reserves too is refused as such first.
            let c_word = C_KEYWORDS.contains(word) || C_HEADERS.contains(word);
            if !c_word {
                assert_eq!(
                    err,
                    format!("invalid export name '{word}': it is a reserved word of Verilog or SystemVerilog (IEEE 1800-2017)")
                );
            } else {
                assert!(
                    err.starts_with(&format!("invalid export name '{word}': ")),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn rejects_non_identifiers_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("9lives", "digit"),
            ("my-net", "letters, digits"),
            ("caf\u{e9}", "letters, digits"),
            ("a b", "letters, digits"),
            ("_net", "reserved"),
            ("int", "C keyword"),
            ("module", "reserved word of Verilog"),
            ("wire", "reserved word of Verilog"),
            ("logic", "reserved word of Verilog or SystemVerilog"),
            ("uwire", "reserved word of Verilog"),
            ("stdint", "shadow the standard C header <stdint.h>"),
            ("assert", "<assert.h>"),
            ("Math", "<math.h>"),
            ("abcdefghijklmnopqrstuvwx", "longer than 23"),
        ];
        for (name, why) in cases {
            let err = check_name(name).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
            assert!(err.starts_with("invalid export name"), "{err}");
        }
    }
}
