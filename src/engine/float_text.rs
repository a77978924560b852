//! Floats as output text: `NaN`, `Infinity`, `-Infinity`, or the shortest digits that read
//! back to the value, in exponent notation (`1e-7`, `1.5e15`) outside 1e-4..1e15 and positional
//! (`0.25`, `-0`, `123456789`) inside it. The text is byte for byte what Rust's own `{}` and
//! `{:e}` write, which earlier releases wrote, made without the formatting machinery (on
//! bench-compare's W1-linear CSV job the rows' encoding fell from 1.1 to 0.75 s of core time).
//!
//! The digits come from `ryu`. Among the shortest texts that read back to a value, both take the
//! one closest to it, and they differ only when the value lies exactly half way between two of
//! them (f32 312985.125: ryu `312985.12`, std `312985.13`): ryu rounds such a tie to an even
//! digit, std rounds it up. [`Decimal::std_tie`] finds those ties exactly, from the value's
//! binary exponent, and takes std's side. Checked against std over every one of the 2^32 f32
//! bit patterns (the `ignored` test) and a sample of f64 ones (the unit tests).

/// Appends a float's text.
pub trait FloatText: Copy {
    fn write_text(self, out: &mut Vec<u8>);

    /// The text as a `String`.
    fn text(self) -> String {
        let mut out = Vec::with_capacity(24);
        self.write_text(&mut out);
        String::from_utf8(out).expect("float text is ASCII")
    }
}

macro_rules! float_text {
    ($t:ty, $bits:ty, $mantissa_bits:expr, $exp_bias:expr) => {
        impl FloatText for $t {
            fn write_text(self, out: &mut Vec<u8>) {
                if self.is_nan() {
                    return out.extend_from_slice(b"NaN");
                }
                if self.is_infinite() {
                    return out.extend_from_slice(if self > 0.0 { b"Infinity" } else { b"-Infinity" });
                }
                if self.is_sign_negative() {
                    out.push(b'-');
                }
                if self == 0.0 {
                    return out.push(b'0');
                }
                let a = self.abs();
                let mut buf = ryu::Buffer::new();
                let text = buf.format_finite(a);
                let bits = self.to_bits() as $bits;
                let frac = (bits & ((1 << $mantissa_bits) - 1)) as u64;
                let biased = ((bits >> $mantissa_bits) & ((1 << (<$bits>::BITS - 1 - $mantissa_bits)) - 1)) as i32;
                let (m, k) = if biased == 0 {
                    (frac, 1 - $exp_bias - $mantissa_bits)
                } else {
                    (frac | (1 << $mantissa_bits), biased - $exp_bias - $mantissa_bits)
                };
                let positional = (1e-4..1e15).contains(&a);
                if positional && let Some(text) = std_already(text, m, k) {
                    return out.extend_from_slice(text.as_bytes());
                }
                let mut d = Decimal::parse(text);
                d.std_tie(m, k);
                if positional { d.positional(out) } else { d.exponent(out) }
            }
        }
    };
}
float_text!(f32, u32, 23, 127);
float_text!(f64, u64, 52, 1023);

/// ryu's text of a positive value `m * 2^k` in std's positional range, when it is std's text as
/// it stands (the usual case, taken without reading the digits back): written positionally with
/// a fraction that ends in a non-zero digit (not `12.0`, not `1e13`), and no tie (the early
/// return of [`Decimal::std_tie`], with the text's exponent read off its length).
fn std_already(text: &str, m: u64, k: i32) -> Option<&str> {
    let b = text.as_bytes();
    if b.last() == Some(&b'0') || b.contains(&b'e') {
        return None;
    }
    let point = b.iter().position(|&c| c == b'.')?;
    let exp = -((b.len() - point - 1) as i32);
    let place = k + m.trailing_zeros() as i32 + 1;
    (place < 0 && exp != place).then_some(text)
}

/// A positive value as `digits * 10^exp`, `digits` without trailing zeros.
struct Decimal {
    digits: u64,
    exp: i32,
}

impl Decimal {
    /// Reads ryu's text of a positive finite value: `1.0`, `0.3`, `123.45`, `1e30`, `1.2e-8`.
    fn parse(text: &str) -> Decimal {
        let (mut digits, mut frac_digits, mut exp) = (0u64, 0i32, 0i32);
        let mut after_point = false;
        let mut bytes = text.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'.' => after_point = true,
                b'e' => {
                    let e = &text[text.len() - bytes.len()..];
                    exp = e.parse::<i32>().expect("ryu writes an integer exponent");
                    break;
                }
                _ => {
                    digits = digits * 10 + u64::from(b - b'0');
                    frac_digits += i32::from(after_point);
                }
            }
        }
        let mut d = Decimal { digits, exp: exp - frac_digits };
        while d.digits != 0 && d.digits.is_multiple_of(10) {
            d.digits /= 10;
            d.exp += 1;
        }
        d
    }

    /// Where the value `m * 2^k` lies exactly half way between two shortest texts, takes the
    /// upper one, as std does.
    ///
    /// Strip `m`'s trailing zero bits first, so that `m` is odd. A tie is a value whose last
    /// decimal digit is a 5 one place below the text's last digit. For `k < 0` the value has
    /// exactly `-k` decimals and the last is 5 (an odd multiple of 5^-k over 10^-k), so a tie
    /// sits at place `10^(k+1)`; for `k >= 0` the value's lowest non-zero digit is a 5 only at
    /// place `10^k`. At place `10^(k+1)` the value is `q / 2` units with `q = m * 5^-(k+1)`
    /// (or `m / 5^(k+1)`, when that divides): a tie when `q` is an odd integer and the text is
    /// `(q - 1) / 2` or `(q + 1) / 2` units; std's text is `(q + 1) / 2`. (No value that is
    /// not a tie can have a text exactly half a unit away: its digits would not all fit.)
    fn std_tie(&mut self, m: u64, k: i32) {
        let tz = m.trailing_zeros() as i32;
        let (m, k) = (u128::from(m >> tz), k + tz);
        let place = k + 1;
        // Below the units (place < 0), q is an odd multiple of 5, so a tie's text ends at
        // `place` itself: no trailing zero. The usual case, ruled out here at once.
        if place < 0 && self.exp != place {
            return;
        }
        let Some(scale) = u32::try_from(self.exp - place).ok().and_then(|s| 10u128.checked_pow(s)) else {
            return;
        };
        let Some(text_units) = u128::from(self.digits).checked_mul(scale).and_then(|t| t.checked_mul(2)) else {
            return;
        };
        let q = if place <= 0 {
            match 5u128.checked_pow((-place) as u32).and_then(|p| m.checked_mul(p)) {
                Some(q) => q,
                None => return,
            }
        } else {
            match 5u128.checked_pow(place as u32) {
                Some(p) if m.is_multiple_of(p) => m / p,
                _ => return,
            }
        };
        if text_units.abs_diff(q) == 1 {
            let mut up = q.div_ceil(2);
            let mut exp = place;
            while up.is_multiple_of(10) {
                up /= 10;
                exp += 1;
            }
            *self = Decimal { digits: u64::try_from(up).expect("a tie's text has at most 17 digits"), exp };
        }
    }

    /// `0.00123`, `12.5`, `1200`.
    fn positional(&self, out: &mut Vec<u8>) {
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(self.digits).as_bytes();
        let n = digits.len() as i32;
        if self.exp >= 0 {
            out.extend_from_slice(digits);
            out.resize(out.len() + self.exp as usize, b'0');
        } else if n > -self.exp {
            let (int, frac) = digits.split_at((n + self.exp) as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-self.exp - n) as usize, b'0');
            out.extend_from_slice(digits);
        }
    }

    /// `1e-7`, `1.25e20`.
    fn exponent(&self, out: &mut Vec<u8>) {
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(self.digits).as_bytes();
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.extend_from_slice(itoa::Buffer::new().format(self.exp + digits.len() as i32 - 1).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What std's text of a float depends on, in the float's own type: the bounds of the
    /// positional range compared as f64 would put f32 1e-4 (9.99999975e-5) outside it.
    trait StdText: std::fmt::Display + std::fmt::LowerExp + Copy {
        fn special(self) -> Option<&'static str>;
        fn positional(self) -> bool;
    }

    macro_rules! std_text_of {
        ($t:ty) => {
            impl StdText for $t {
                fn special(self) -> Option<&'static str> {
                    if self.is_nan() {
                        Some("NaN")
                    } else if self.is_infinite() {
                        Some(if self > 0.0 { "Infinity" } else { "-Infinity" })
                    } else {
                        None
                    }
                }
                fn positional(self) -> bool {
                    self == 0.0 || (1e-4..1e15).contains(&self.abs())
                }
            }
        };
    }
    std_text_of!(f32);
    std_text_of!(f64);

    /// std's text of `v`, formatted in its own type.
    fn std_text<T: StdText>(v: T) -> String {
        let mut out = String::new();
        write_std_text(v, &mut out);
        out
    }

    /// [`std_text`] appended to `out`.
    fn write_std_text<T: StdText>(v: T, out: &mut String) {
        use std::fmt::Write;
        let _ = match v.special() {
            Some(s) => write!(out, "{s}"),
            None if v.positional() => write!(out, "{v}"),
            None => write!(out, "{v:e}"),
        };
    }

    /// A small xorshift, so that the sample is the same on every run.
    fn bits(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    #[test]
    // 312985.125 is the exact f32 value, a tie: the point of the test.
    #[allow(clippy::excessive_precision)]
    fn ties_are_rounded_up_as_std_does() {
        for v in [312985.125f32, 0.5, 2.5, 1.5e-5, 8.5, 16777215.0, 3.4028235e38, 1e-45, 1.1754944e-38] {
            assert_eq!(v.text(), std_text(v), "{v}");
            assert_eq!((-v).text(), std_text(-v), "-{v}");
        }
        assert_eq!(312985.125f32.text(), "312985.13");
        // The positional range's bounds, in the value's own type (f32 1e-4 is 9.99999975e-5).
        assert_eq!(1e-4f32.text(), "0.0001");
        assert_eq!(1e15f32.text(), "1e15");
        assert_eq!(1e-4f64.text(), "0.0001");
        assert_eq!(9.99e-5f32.text(), "9.99e-5");
        for v in [0.0f64, -0.0, 1e-4, 1e15, 0.1, 123456789.0, 5e-324, f64::MAX, f64::MIN_POSITIVE, 2.5, 1e21] {
            assert_eq!(v.text(), std_text(v), "{v}");
        }
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0] {
            assert_eq!(v.text(), std_text(v));
        }
    }

    #[test]
    fn random_bit_patterns_are_written_as_std_writes_them() {
        for b in bits(0x9E37_79B9_7F4A_7C15).take(400_000) {
            let v = f32::from_bits(b as u32);
            assert_eq!(v.text(), std_text(v), "f32 bits {:#x}", b as u32);
            let w = f64::from_bits(b);
            assert_eq!(w.text(), std_text(w), "f64 bits {b:#x}");
        }
        // Values with few significant bits, where ties are common.
        for b in bits(7).take(400_000) {
            let v = (b % 100_000) as f32 / 8.0 * [1.0, 1e-3, 1e6, 1e-9][(b >> 40) as usize % 4];
            assert_eq!(v.text(), std_text(v), "{v:?}");
            let w = (b % 10_000_000) as f64 / 64.0 * [1.0, 1e-3, 1e12, 1e-20][(b >> 40) as usize % 4];
            assert_eq!(w.text(), std_text(w), "{w:?}");
        }
    }

    /// Every one of the 2^32 f32 bit patterns: minutes, so run by hand
    /// (`cargo test --release float_text -- --ignored`).
    #[test]
    #[ignore]
    fn every_f32_is_written_as_std_writes_it() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let wrong = AtomicU64::new(0);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        std::thread::scope(|s| {
            for t in 0..threads {
                let wrong = &wrong;
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut expected = String::new();
                    let mut b = t;
                    while b <= u64::from(u32::MAX) {
                        let v = f32::from_bits(b as u32);
                        out.clear();
                        v.write_text(&mut out);
                        expected.clear();
                        write_std_text(v, &mut expected);
                        if out != expected.as_bytes() && wrong.fetch_add(1, Ordering::Relaxed) < 10 {
                            eprintln!("{:#x}: {} against std {expected}", b, String::from_utf8_lossy(&out));
                        }
                        b += threads;
                    }
                });
            }
        });
        assert_eq!(wrong.load(Ordering::Relaxed), 0);
    }
}
