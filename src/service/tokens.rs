//! Access tokens for `batchscore serve`: create (the token is returned once), list, revoke, and
//! check a presented token. Only a SHA-256 of each token is stored; a presented token is hashed
//! and compared in constant time, and a revoked or expired one is refused like an unknown one.

use rusqlite::OptionalExtension;
use sha2::Digest;

use super::{Result, ServiceError};
use crate::workspace::assets::{Scope, Token};
use crate::workspace::{CatalogError, Workspace, names, store};

/// Tokens start with this, so secret scanners and people recognise them.
pub const PREFIX: &str = "bst_";

/// A new token: its record, and the token itself (shown once, never stored).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    #[serde(flatten)]
    pub record: Token,
    pub token: String,
}

/// How long a token lives: `30d`, `12h`, `90m`, or `never`.
pub fn parse_expiry(text: &str) -> Result<Option<chrono::Duration>> {
    let t = text.trim();
    if t == "never" {
        return Ok(None);
    }
    let bad = || ServiceError::invalid(format!("--expires {t}"), "give a duration such as 30d, 12h or 90m, or never");
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        _ => None,
    };
    match d {
        Some(d) if n > 0 && n <= 3650 * 24 * 60 => Ok(Some(d)),
        _ => Err(bad()),
    }
}

fn hash(token: &str) -> String {
    format!("{:x}", sha2::Sha256::digest(token.as_bytes()))
}

/// Makes a token: 256 random bits (two v4 UUIDs' worth of the OS's randomness), hex.
fn new_secret() -> String {
    format!("{PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Creates a token named `name` with `scope`, expiring after `expires` (none: never).
pub fn create(ws: &mut Workspace, name: &str, scope: Scope, expires: Option<chrono::Duration>) -> Result<Created> {
    names::check("token", name)?;
    let secret = new_secret();
    let now = chrono::Utc::now();
    let record = Token {
        name: name.to_string(),
        scope,
        prefix: secret[..PREFIX.len() + 6].to_string(),
        created_at: crate::workspace::now(),
        expires_at: expires.map(|d| (now + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        revoked_at: None,
        hash: hash(&secret),
    };
    ws.write(|tx| store::insert(tx, &record))?;
    Ok(Created { record, token: secret })
}

/// Every token (never the tokens themselves).
pub fn list(ws: &Workspace) -> Result<Vec<Token>> {
    Ok(ws.list(None, &[])?)
}

/// Revokes a token: from now on it is refused.
pub fn revoke(ws: &mut Workspace, name: &str) -> Result<Token> {
    Ok(ws.write(|tx| {
        let mut t: Token = store::find_in(tx, name, "")?.ok_or_else(|| CatalogError::not_found("token", name))?;
        // The record does not hold the hash: keep the column as it is.
        t.hash =
            tx.query_row("SELECT hash FROM tokens WHERE name = ?1", [name], |r| r.get(0)).map_err(store::sqlite)?;
        t.revoked_at.get_or_insert_with(crate::workspace::now);
        store::update(tx, &t)?;
        Ok(t)
    })?)
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Unknown, malformed, revoked or expired (HTTP 401; the reason is not told).
    Unauthenticated,
    /// Valid, but its scope is too small (HTTP 403).
    Forbidden,
}

/// Checks a presented token against the scope an action needs; returns the token's record.
pub fn check(ws: &Workspace, presented: &str, needs: Scope) -> std::result::Result<Token, Refused> {
    if !presented.starts_with(PREFIX) || presented.len() > 256 {
        return Err(Refused::Unauthenticated);
    }
    let want = hash(presented);
    let found: Option<(String, String)> = ws
        .conn
        .query_row("SELECT doc, hash FROM tokens WHERE hash = ?1", [&want], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(|_| Refused::Unauthenticated)?;
    let Some((doc, stored)) = found else { return Err(Refused::Unauthenticated) };
    if !constant_time_eq(stored.as_bytes(), want.as_bytes()) {
        return Err(Refused::Unauthenticated);
    }
    let token: Token = serde_json::from_str(&doc).map_err(|_| Refused::Unauthenticated)?;
    let expired = token
        .expires_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t <= chrono::Utc::now());
    if token.revoked_at.is_some() || expired {
        return Err(Refused::Unauthenticated);
    }
    if token.scope < needs {
        return Err(Refused::Forbidden);
    }
    Ok(token)
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse_and_bound() {
        assert_eq!(parse_expiry("30d").unwrap(), chrono::Duration::try_days(30));
        assert_eq!(parse_expiry("never").unwrap(), None);
        for bad in ["", "30", "d", "0d", "-1d", "30y", "99999999999d"] {
            assert!(parse_expiry(bad).is_err(), "{bad:?}");
        }
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab")
        );
    }
}
