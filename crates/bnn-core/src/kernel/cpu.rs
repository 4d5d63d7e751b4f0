//! The CPU features each group of SIMD loops enables, and their run-time
//! checks, from one list per [`Level`]: the check tests exactly the
//! features the list names, and a test holds every `#[target_feature]` set
//! in the x86 and ARM kernel files against the level that guards it. A
//! level that runs another level's loops lists that level's features too
//! (AVX-512 runs AVX2 loops, so [`Level::Avx512`] lists `avx2`). Each level
//! belongs to one architecture, and on any other it is never detected.
//!
//! `BNN_FEATURES_OFF` (a comma-separated list of `vnni`, `vbmi2`, `bmi` and
//! `dotprod`) hides the optional levels inside a kernel, so a CPU that has
//! them can still run, and CI can still test, the paths of CPUs that lack
//! them: the AVX-512 kernel without VPDPBUSD or without the compress
//! lister, the portable minority lister instead of the `TZCNT` one, and
//! the NEON kernel's u8 layer without `UDOT`.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Whether this CPU has every feature listed, by the detection macro of
/// the level's architecture; `false` in a build for another one.
macro_rules! detect {
    (x86_64, $($f:tt),+) => {{
        #[cfg(target_arch = "x86_64")]
        let on = true $(&& std::is_x86_feature_detected!($f))+;
        #[cfg(not(target_arch = "x86_64"))]
        let on = false;
        on
    }};
    (aarch64, $($f:tt),+) => {{
        #[cfg(target_arch = "aarch64")]
        let on = true $(&& std::arch::is_aarch64_feature_detected!($f))+;
        #[cfg(not(target_arch = "aarch64"))]
        let on = false;
        on
    }};
}

macro_rules! levels {
    ($($(#[$doc:meta])* $level:ident $(($off:literal))? [$arch:ident] = [$($f:tt),+ $(,)?];)+) => {
        /// A set of CPU features that a group of SIMD loops enables.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Level {
            $($(#[$doc])* $level,)+
        }

        impl Level {
            /// Every level, in declaration order.
            pub const ALL: &'static [Level] = &[$(Level::$level),+];

            /// The features this level's loops may enable, and that its
            /// check tests.
            pub fn features(self) -> &'static [&'static str] {
                match self {
                    $(Level::$level => &[$($f),+],)+
                }
            }

            /// The name `BNN_FEATURES_OFF` hides this level by, if it may
            /// be hidden (the kernels' own levels may not: `BNN_KERNEL`
            /// picks those).
            pub fn off_name(self) -> Option<&'static str> {
                match self {
                    $(Level::$level => None $(.or(Some($off)))?,)+
                }
            }

            /// The architecture whose kernels the level's loops belong to.
            pub fn arch(self) -> &'static str {
                match self {
                    $(Level::$level => stringify!($arch),)+
                }
            }

            fn detect(self) -> bool {
                match self {
                    $(Level::$level => detect!($arch, $($f),+),)+
                }
            }
        }
    };
}

levels! {
    /// The AVX2 kernel.
    Avx2 [x86_64] = ["avx2"];
    /// The AVX-512 kernel, which also runs the AVX2 loops where it has no
    /// 512-bit form.
    Avx512 [x86_64] = ["avx2", "avx512f", "avx512bw", "avx512vpopcntdq", "popcnt"];
    /// The u8 first layer's `VPDPBUSD` loops, inside the AVX-512 kernel.
    Vnni("vnni") [x86_64] = ["avx2", "avx512f", "avx512bw", "avx512vpopcntdq", "popcnt", "avx512vnni"];
    /// The compress listing of minority positions (`VPCOMPRESSB`/`W`),
    /// inside the AVX-512 kernel.
    Vbmi2("vbmi2") [x86_64] = ["avx2", "avx512f", "avx512bw", "avx512vpopcntdq", "popcnt", "avx512vbmi2"];
    /// `POPCNT` counts and the `TZCNT` minority lister, inside either x86
    /// SIMD kernel.
    Bmi("bmi") [x86_64] = ["popcnt", "bmi1"];
    /// The NEON kernel. Every AArch64 CPU has NEON (the target enables
    /// it), but it is checked like any other level.
    Neon [aarch64] = ["neon"];
    /// The u8 first layer's `UDOT` loops (Armv8.2 dot product, in every
    /// Cortex-A55/A76 and Neoverse core and later), inside the NEON kernel.
    Dotprod("dotprod") [aarch64] = ["neon", "dotprod"];
}

impl Level {
    /// Whether this CPU has every feature of the level and
    /// `BNN_FEATURES_OFF` does not hide it. Asked on every dispatch, so the
    /// answers are detected once and kept.
    pub fn on(self) -> bool {
        static ON: OnceLock<Vec<bool>> = OnceLock::new();
        ON.get_or_init(|| {
            let off = std::env::var("BNN_FEATURES_OFF").unwrap_or_default();
            let hidden = parse_off(&off).unwrap_or_default();
            Level::ALL
                .iter()
                .map(|l| l.detect() && !hidden.contains(l))
                .collect()
        })[self as usize]
    }

    /// Whether the CPU has the level, whatever `BNN_FEATURES_OFF` says.
    pub fn detected(self) -> bool {
        self.detect()
    }
}

/// The levels a `BNN_FEATURES_OFF` value hides; an unknown name is an
/// error that lists the known ones.
pub fn parse_off(value: &str) -> Result<Vec<Level>> {
    let known = || {
        Level::ALL
            .iter()
            .filter_map(|l| l.off_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            let name = name.to_ascii_lowercase();
            Level::ALL
                .iter()
                .copied()
                .find(|l| l.off_name() == Some(name.as_str()))
                .ok_or_else(|| {
                    Error::Kernel(format!(
                        "BNN_FEATURES_OFF: unknown feature '{}' (known: {})",
                        name.chars().take(40).collect::<String>(),
                        known()
                    ))
                })
        })
        .collect()
}

/// Checks `BNN_FEATURES_OFF`, so that a caller can report a wrong value
/// (the kernels themselves ignore it, as they do a wrong `BNN_KERNEL`).
pub fn check_env() -> Result<()> {
    parse_off(&std::env::var("BNN_FEATURES_OFF").unwrap_or_default()).map(drop)
}
