//! Access tokens for the REST API: created once, stored as a hash, checked by scope, refused
//! when wrong, revoked or expired.

mod common;

use batchscore::service::tokens::{self, Refused};
use batchscore::workspace::Workspace;
use batchscore::workspace::assets::Scope;
use common::catalog::{bs, json};
use common::*;

#[test]
fn tokens_are_shown_once_stored_as_hashes_and_checked_by_scope() {
    let tmp = tempdir();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(&ws, &["workspace", "create"]).expect_code(0);
    let run = bs(&ws, &["token", "create", "-n", "reader", "--scope", "read", "--query", "token", "-o", "tsv"]);
    run.expect_code(0).stderr_has(&["shown once"]);
    let reader = run.stdout.trim().to_string();
    assert!(reader.starts_with("bst_") && reader.len() == 68, "{reader}");
    let admin = json(&ws, &["token", "create", "-n", "ops", "--scope", "admin", "--expires", "never"]);
    let admin = admin["token"].as_str().unwrap().to_string();
    bs(&ws, &["token", "create", "-n", "x", "--scope", "root"])
        .expect_code(2)
        .stderr_has(&["root", "read, invoke or admin"]);
    bs(&ws, &["token", "create", "-n", "x", "--scope", "read", "--expires", "forever"])
        .expect_code(2)
        .stderr_has(&["forever"]);
    bs(&ws, &["token", "create", "-n", "ops", "--scope", "read"]).expect_code(2).stderr_has(&["already exists"]);

    let listed = bs(&ws, &["token", "list", "-o", "json"]);
    listed.expect_code(0);
    assert!(!listed.stdout.contains(&reader) && !listed.stdout.contains(&admin), "a listing shows no token");
    assert!(listed.stdout.contains("\"scope\": \"read\""), "{}", listed.stdout);
    for file in ["catalog.sqlite", "catalog.sqlite-wal"] {
        let bytes = std::fs::read(ws.join(".batchscore").join(file)).unwrap_or_default();
        for t in [&reader, &admin] {
            assert!(!bytes.windows(t.len()).any(|w| w == t.as_bytes()), "a token reached {file}");
        }
    }

    let mut w = Workspace::open(&ws).unwrap();
    assert_eq!(tokens::check(&w, &reader, Scope::Read).unwrap().name, "reader");
    assert_eq!(tokens::check(&w, &reader, Scope::Invoke).unwrap_err(), Refused::Forbidden);
    assert_eq!(tokens::check(&w, &admin, Scope::Admin).unwrap().name, "ops");
    let mut wrong = reader.clone();
    wrong.replace_range(10..11, if &reader[10..11] == "a" { "b" } else { "a" });
    for bad in [wrong.as_str(), "", "bst_", "Bearer x", &reader[..20]] {
        assert_eq!(tokens::check(&w, bad, Scope::Read).unwrap_err(), Refused::Unauthenticated, "{bad:?}");
    }
    let expired = tokens::create(&mut w, "old", Scope::Admin, Some(chrono::Duration::seconds(-1))).unwrap();
    assert_eq!(tokens::check(&w, &expired.token, Scope::Read).unwrap_err(), Refused::Unauthenticated);
    drop(w);
    let revoked = json(&ws, &["token", "revoke", "-n", "reader"]);
    assert!(revoked["revoked_at"].is_string());
    let w = Workspace::open(&ws).unwrap();
    assert_eq!(tokens::check(&w, &reader, Scope::Read).unwrap_err(), Refused::Unauthenticated, "revoked");
    assert_eq!(tokens::check(&w, &admin, Scope::Read).unwrap().name, "ops", "the others still work");
}
