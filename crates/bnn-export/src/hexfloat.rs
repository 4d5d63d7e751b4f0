//! C99 hexadecimal float literals. A decimal literal is only required to
//! land on one of the two floats nearest its value (C99 6.4.4.2), so a
//! decimal bias could come out one ulp off; a hexadecimal one names the
//! exact bits.

/// The literal (with an `f` suffix) whose value is exactly `v`. `v` must be
/// finite: the engine rejects non-finite biases when a layer is built.
pub fn c_literal(v: f32) -> String {
    assert!(v.is_finite(), "non-finite bias {v} in a checked layer");
    let bits = v.to_bits();
    let sign = if bits >> 31 == 1 { "-" } else { "" };
    let exponent = (bits >> 23 & 0xff) as i32;
    // 23 fraction bits, shifted to fill six hex digits.
    let fraction = (bits & 0x7f_ffff) << 1;
    let (lead, power) = match exponent {
        0 if fraction == 0 => return format!("{sign}0.0f"),
        0 => (0, -126),
        e => (1, e - 127),
    };
    let digits = format!("{fraction:06x}");
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    format!("{sign}0x{lead}.{digits}p{power:+}f")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates a literal the way a C compiler must (exactly: at most 25
    /// significant bits, well within f64).
    fn value(lit: &str) -> f64 {
        let lit = lit.strip_suffix('f').unwrap();
        let (neg, lit) = match lit.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, lit),
        };
        if lit == "0.0" {
            return if neg { -0.0 } else { 0.0 };
        }
        let lit = lit.strip_prefix("0x").unwrap();
        let (mantissa, power) = lit.split_once('p').unwrap();
        let (int, frac) = mantissa.split_once('.').unwrap();
        let digits = format!("{int}{frac}");
        let m = u64::from_str_radix(&digits, 16).unwrap() as f64;
        let p: i32 = power.parse().unwrap();
        let v = m * 2f64.powi(p - 4 * frac.len() as i32);
        if neg {
            -v
        } else {
            v
        }
    }

    #[test]
    fn literals_are_exact() {
        let mut cases = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.5,
            0.1,
            -2.5e-3,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::from_bits(0x807f_ffff),
            1e-40,
            12345.678,
        ];
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if f.is_finite() {
                cases.push(f);
            }
        }
        for v in cases {
            let lit = c_literal(v);
            let back = value(&lit);
            assert_eq!(back as f32, v, "{lit}");
            assert_eq!(back, f64::from(v), "{lit} is exact");
            assert_eq!((back as f32).to_bits(), v.to_bits(), "{lit} keeps the sign");
        }
        assert_eq!(c_literal(1.0), "0x1.0p+0f");
        assert_eq!(c_literal(-0.75), "-0x1.8p-1f");
        assert_eq!(c_literal(-0.0), "-0.0f");
    }
}
