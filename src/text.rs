//! Quoting data in messages: at most a short excerpt, on one line.
//!
//! Error messages quote values, column names and records from the user's files so that the
//! user can find them; a hostile or broken file can hold a 200 MB "value". Everything quoted
//! from data goes through [`excerpt`], which keeps the start and says how long the rest is.

/// Characters of data quoted at most.
pub const EXCERPT_CHARS: usize = 48;

/// `s` if short, else its first [`EXCERPT_CHARS`] characters, `…` and the total length.
pub fn excerpt(s: &str) -> String {
    let mut chars = s.char_indices();
    match chars.nth(EXCERPT_CHARS) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// [`excerpt`] of the first line of `s`, for one-line summaries of longer messages.
pub fn excerpt_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or_default();
    if first.len() < s.trim_end().len() { format!("{} …", excerpt(first)) } else { excerpt(first) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "x".repeat(1000);
        let e = excerpt(&long);
        assert!(e.starts_with(&"x".repeat(EXCERPT_CHARS)) && e.ends_with("… (1000 bytes)"), "{e}");
        assert_eq!(excerpt_line("one\ntwo"), "one …");
        let multi = "é".repeat(100);
        assert!(excerpt(&multi).starts_with(&"é".repeat(EXCERPT_CHARS)));
    }
}
