//! Secrets stay out of error text, logs and reports.
//!
//! Credentials reach batchscore as storage options, environment variables and URL query strings
//! (SAS tokens, pre-signed URLs). They never go into a message on purpose, but a store's error
//! can carry them back: S3 answers a bad signature with the `StringToSign` and the access key
//! id, Azure with the string it signed, and a proxy may echo the whole request, query string
//! and `Authorization` header included. So every text that leaves the process (stderr, the
//! log, `job_result.json`, `failures.jsonl`, `mini_batches.csv`) goes through [`scrub`]:
//!
//! 1. the values of every credential this process was given ([`register`], and the usual
//!    credential environment variables) are replaced by `***`;
//! 2. what looks like a credential is cut: URL query strings, `sig=`/`X-Amz-*=`/`token=`-style
//!    parameters, `Authorization:` headers, AWS access key ids, and the XML elements in which
//!    S3 and Azure repeat what was signed;
//! 3. store errors are summarised: [`summarize`] keeps their first part, never a whole body.

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Environment variables whose values are credentials.
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
];

/// Keys whose values are secret, as they appear in storage options and URL parameters.
const SECRET_KEYS: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "token",
    "access_token",
    "sas",
    "password",
    "secret",
    "client_secret",
    "account_key",
    "access_key",
    "sas_key",
    "sas_token",
    "session_token",
    "secret_access_key",
    "access_key_id",
    "service_account_key",
];

/// Whether a storage option's key names a credential (its value is then [`register`]ed).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "key", "token", "password", "sas", "credential", "signature"].iter().any(|w| k.contains(w))
}

/// Adds a value that must never be shown.
pub fn register(value: &str) {
    let v = value.trim();
    // Very short values would scrub ordinary words; such values are not credentials anyway.
    if v.len() < 6 {
        return;
    }
    let mut s = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !s.iter().any(|x| x == v) {
        s.push(v.to_string());
    }
}

/// Registers the credentials of the environment and the query string of a URL (a SAS token).
pub fn register_environment_and_url(urls: &[&str]) {
    for var in SECRET_VARS {
        if let Ok(v) = std::env::var(var) {
            register(&v);
        }
    }
    for u in urls {
        if let Some((_, q)) = u.split_once('?') {
            register(q);
            for (raw, (_, decoded)) in q.split('&').zip(url::form_urlencoded::parse(q.as_bytes())) {
                if let Some((_, v)) = raw.split_once('=') {
                    register(v);
                }
                register(&decoded);
            }
        }
    }
}

/// `text` with secrets and what looks like them replaced (see the module docs).
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), "***"));
            }
        }
    }
    let patterns =
        [cut_xml as fn(&str) -> Option<String>, cut_query_strings, cut_parameters, cut_authorization, cut_key_ids];
    for f in patterns {
        if let Some(s) = f(&out) {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Characters of a store's error kept at most.
pub const SUMMARY_CHARS: usize = 400;

/// A store error's text, scrubbed and cut to [`SUMMARY_CHARS`]: the first lines say what failed;
/// the rest is the server's body, which may be long or repeat the request.
pub fn summarize(text: &str) -> String {
    let s = scrub(text);
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(SUMMARY_CHARS) {
        None => one_line,
        Some((cut, _)) => format!("{} … ({} more characters)", &one_line[..cut], one_line.len() - cut),
    }
}

/// Query strings of URLs: `https://host/p?sig=...` -> `https://host/p?[redacted]`.
fn cut_query_strings(s: &str) -> Option<String> {
    if !s.contains("://") || !s.contains('?') {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '`'))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        match url.find('?') {
            Some(q) if q + 1 < url.len() => {
                out.push_str(&url[..=q]);
                out.push_str("[redacted]");
                changed = true;
            }
            _ => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `key=value` for secret keys (`sig=`, `X-Amz-Signature=`, `token=`, ...), anywhere.
fn cut_parameters(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    if !lower.contains('=') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut i = 0;
    let mut changed = false;
    while let Some(eq) = lower[i..].find('=').map(|e| e + i) {
        // The key: the word before `=`.
        let start = lower[..eq]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let key = &lower[start..eq];
        let value_end = s[eq + 1..]
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | ';' | ',' | '"' | '\'' | '<' | ')'))
            .map_or(s.len(), |e| e + eq + 1);
        if SECRET_KEYS.contains(&key) && value_end > eq + 1 && !s[eq + 1..value_end].starts_with("***") {
            out.push_str(&s[last..=eq]);
            out.push_str("***");
            last = value_end;
            changed = true;
        }
        i = eq + 1;
        if i >= bytes.len() {
            break;
        }
    }
    out.push_str(&s[last..]);
    changed.then_some(out)
}

/// `Authorization: <anything to the end of the line>`.
fn cut_authorization(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let mut found = lower.match_indices("authorization").peekable();
    found.peek()?;
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (i, m) in found {
        let after = i + m.len();
        let rest = &s[after..];
        let sep = rest.trim_start_matches(['"', '\'']).trim_start();
        if !(sep.starts_with(':') || sep.starts_with('=')) || i < last {
            continue;
        }
        let end = rest.find(['\n', '\r']).map_or(s.len(), |e| e + after);
        out.push_str(&s[last..after]);
        out.push_str(": ***");
        last = end;
    }
    if last == 0 {
        return None;
    }
    out.push_str(&s[last..]);
    Some(out)
}

/// AWS access key ids (`AKIA` or `ASIA` and 16 more capitals or digits).
fn cut_key_ids(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut i = 0;
    while i + 20 <= b.len() {
        let head = &b[i..i + 4];
        if (head == b"AKIA" || head == b"ASIA")
            && b[i + 4..i + 20].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            let o = out.get_or_insert_with(String::new);
            o.push_str(&s[last..i + 4]);
            o.push_str("****");
            last = i + 20;
            i += 20;
        } else {
            i += 1;
        }
    }
    out.map(|mut o| {
        o.push_str(&s[last..]);
        o
    })
}

/// XML elements in which stores repeat what was signed or who signed it.
fn cut_xml(s: &str) -> Option<String> {
    const TAGS: &[&str] = &[
        "StringToSign",
        "StringToSignBytes",
        "CanonicalRequest",
        "CanonicalRequestBytes",
        "SignatureProvided",
        "AWSAccessKeyId",
        "AuthenticationErrorDetail",
        "Credential",
    ];
    if !s.contains('<') {
        return None;
    }
    let mut out = s.to_string();
    let mut changed = false;
    for tag in TAGS {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut from = 0;
        while let Some(a) = out[from..].find(&open).map(|a| a + from + open.len()) {
            let b = out[a..].find(&close).map_or(out.len(), |b| b + a);
            out.replace_range(a..b, "***");
            changed = true;
            from = a + 3;
        }
    }
    changed.then_some(out)
}

/// stderr, with secrets scrubbed from each write (one log line per write).
pub struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_pass() {
        register("TOPSECRETVALUE123");
        let text = "GET https://acct.blob.core.windows.net/c/x?sv=2024&sig=abc%2Fdef&se=2030 failed: \
                    <Error><StringToSign>PUT\n/bucket/key</StringToSign><AWSAccessKeyId>AKIAABCDEFGHIJKLMNOP</AWSAccessKeyId>\
                    <SignatureProvided>deadbeef</SignatureProvided></Error> key TOPSECRETVALUE123\n\
                    Authorization: AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/2024, Signature=0123abcd\n\
                    X-Amz-Signature=feedface&X-Amz-Credential=AKIAZZZZZZZZZZZZZZZZ%2F2024 id ASIAQWERTYUIOPASDFGH";
        let s = scrub(text);
        for secret in [
            "abc%2Fdef",
            "deadbeef",
            "AKIAABCDEFGHIJKLMNOP",
            "TOPSECRETVALUE123",
            "0123abcd",
            "feedface",
            "AKIAZZZZ",
            "QWERTYUIOPASDFGH",
            "PUT\n/bucket",
        ] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(
            s.contains("https://acct.blob.core.windows.net/c/x?[redacted]") && s.contains("Authorization: ***"),
            "{s}"
        );
        assert_eq!(scrub("nothing to see here: 42"), "nothing to see here: 42");
        // Text from data may hold any characters around `=`.
        assert_eq!(scrub("value \"é=1\" ü=ü ésé=x"), "value \"é=1\" ü=ü ésé=x");
        assert_eq!(scrub("é&sig=abc"), "é&sig=***");
        let long = format!("Server returned 403: {}", "x".repeat(10_000));
        assert!(summarize(&long).len() < SUMMARY_CHARS + 60);
    }
}
