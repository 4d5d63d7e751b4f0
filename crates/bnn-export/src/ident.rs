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

/// Verilog-2001 reserved words (IEEE 1364-2001, annex B).
const VERILOG_KEYWORDS: &[&str] = &[
    "always",
    "and",
    "assign",
    "automatic",
    "begin",
    "buf",
    "bufif0",
    "bufif1",
    "case",
    "casex",
    "casez",
    "cell",
    "cmos",
    "config",
    "deassign",
    "default",
    "defparam",
    "design",
    "disable",
    "edge",
    "else",
    "end",
    "endcase",
    "endconfig",
    "endfunction",
    "endgenerate",
    "endmodule",
    "endprimitive",
    "endspecify",
    "endtable",
    "endtask",
    "event",
    "for",
    "force",
    "forever",
    "fork",
    "function",
    "generate",
    "genvar",
    "highz0",
    "highz1",
    "if",
    "ifnone",
    "incdir",
    "include",
    "initial",
    "inout",
    "input",
    "instance",
    "integer",
    "join",
    "large",
    "liblist",
    "library",
    "localparam",
    "macromodule",
    "medium",
    "module",
    "nand",
    "negedge",
    "nmos",
    "nor",
    "noshowcancelled",
    "not",
    "notif0",
    "notif1",
    "or",
    "output",
    "parameter",
    "pmos",
    "posedge",
    "primitive",
    "pull0",
    "pull1",
    "pulldown",
    "pullup",
    "pulsestyle_onevent",
    "pulsestyle_ondetect",
    "rcmos",
    "real",
    "realtime",
    "reg",
    "release",
    "repeat",
    "rnmos",
    "rpmos",
    "rtran",
    "rtranif0",
    "rtranif1",
    "scalared",
    "showcancelled",
    "signed",
    "small",
    "specify",
    "specparam",
    "strong0",
    "strong1",
    "supply0",
    "supply1",
    "table",
    "task",
    "time",
    "tran",
    "tranif0",
    "tranif1",
    "tri",
    "tri0",
    "tri1",
    "triand",
    "trior",
    "trireg",
    "unsigned",
    "use",
    "vectored",
    "wait",
    "wand",
    "weak0",
    "weak1",
    "while",
    "wire",
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
    if VERILOG_KEYWORDS.contains(&name) {
        return fail("it is a Verilog keyword");
    }
    // Case-insensitive filesystems make `STDINT.h` the same file.
    if C_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return fail(&format!(
            "{name}.h would shadow the standard C header <{}.h>",
            name.to_ascii_lowercase()
        ));
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
            ("module", "Verilog keyword"),
            ("wire", "Verilog keyword"),
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
