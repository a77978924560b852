//! Typed rows: every kind of asset is a table keyed by two text columns (name and version, or
//! endpoint and name), with its record as JSON in `doc`, a creation order `seq` (what `latest`
//! means) and, for some kinds, extra indexed columns that queries filter on.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params_from_iter};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CatalogError, Workspace};

/// `key=value` tags, sorted by key.
pub type Tags = BTreeMap<String, String>;

/// One kind of catalog row.
pub trait Asset: Serialize + DeserializeOwned {
    /// The table.
    const TABLE: &'static str;
    /// What users call it, in messages.
    const KIND: &'static str;
    /// The two key columns.
    const KEY: (&'static str, &'static str) = ("name", "version");
    /// The values of the key columns.
    fn key(&self) -> (String, String);
    /// Extra indexed columns and their values.
    fn columns(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
    /// When it was created.
    fn created_at(&self) -> &str;
}

fn decode<A: Asset>(doc: String) -> Result<A, CatalogError> {
    serde_json::from_str(&doc).map_err(|e| CatalogError::invalid(A::TABLE, format!("a row does not read back: {e}")))
}

fn encode<A: Asset>(a: &A) -> String {
    serde_json::to_string(a).expect("serialisable")
}

impl Workspace {
    /// The row with this key, if there is one.
    pub fn find<A: Asset>(&self, k1: &str, k2: &str) -> Result<Option<A>, CatalogError> {
        let (c1, c2) = A::KEY;
        let sql = format!("SELECT doc FROM {} WHERE {c1} = ?1 AND {c2} = ?2", A::TABLE);
        let doc: Option<String> =
            self.conn.query_row(&sql, [k1, k2], |r| r.get(0)).optional().map_err(|e| self.sql(e))?;
        doc.map(decode).transpose()
    }

    /// The row with this key.
    pub fn get<A: Asset>(&self, k1: &str, k2: &str) -> Result<A, CatalogError> {
        self.find(k1, k2)?.ok_or_else(|| {
            let name = if k2.is_empty() { k1.to_string() } else { format!("{k1}:{k2}") };
            CatalogError::not_found(A::KIND, name)
        })
    }

    /// The last created row whose first key is `k1` (`@latest` of a versioned asset).
    pub fn latest<A: Asset>(&self, k1: &str) -> Result<A, CatalogError> {
        let sql = format!("SELECT doc FROM {} WHERE {} = ?1 ORDER BY seq DESC LIMIT 1", A::TABLE, A::KEY.0);
        let doc: Option<String> = self.conn.query_row(&sql, [k1], |r| r.get(0)).optional().map_err(|e| self.sql(e))?;
        doc.map(decode).transpose()?.ok_or_else(|| CatalogError::not_found(A::KIND, k1))
    }

    /// Rows in creation order, optionally only those whose first key is `k1`, or whose extra
    /// column equals a value (`filters`).
    pub fn list<A: Asset>(&self, k1: Option<&str>, filters: &[(&str, &str)]) -> Result<Vec<A>, CatalogError> {
        let (clause, args) = where_clause::<A>(k1, filters);
        let sql = format!("SELECT doc FROM {}{clause} ORDER BY seq", A::TABLE);
        self.docs(&sql, &args)
    }

    /// One window of [`Workspace::list`] (in creation order, or newest first), and how many
    /// rows the whole list has: a page reads only its own rows.
    pub fn list_window<A: Asset>(
        &self,
        k1: Option<&str>,
        filters: &[(&str, &str)],
        w: Window,
    ) -> Result<(Vec<A>, usize), CatalogError> {
        let (clause, args) = where_clause::<A>(k1, filters);
        let order = if w.newest { "DESC" } else { "ASC" };
        let sql =
            format!("SELECT doc FROM {}{clause} ORDER BY seq {order} LIMIT {} OFFSET {}", A::TABLE, w.top, w.skip);
        let rows = self.docs(&sql, &args)?;
        let count: i64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {}{clause}", A::TABLE), params_from_iter(args.iter()), |r| {
                r.get(0)
            })
            .map_err(|e| self.sql(e))?;
        Ok((rows, count as usize))
    }

    fn docs<A: Asset>(&self, sql: &str, args: &[String]) -> Result<Vec<A>, CatalogError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        let docs: Vec<String> = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        docs.into_iter().map(decode).collect()
    }
}

/// A window of a list: `top` rows after the first `skip`, oldest or newest first.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub skip: usize,
    pub top: usize,
    pub newest: bool,
}

/// ` WHERE k1 = ?1 AND col = ?2 ...` and its arguments.
fn where_clause<A: Asset>(k1: Option<&str>, filters: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut wheres = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(k) = k1 {
        args.push(k.to_string());
        wheres.push(format!("{} = ?{}", A::KEY.0, args.len()));
    }
    for (col, v) in filters {
        args.push(v.to_string());
        wheres.push(format!("{col} = ?{}", args.len()));
    }
    let clause = if wheres.is_empty() { String::new() } else { format!(" WHERE {}", wheres.join(" AND ")) };
    (clause, args)
}

/// Adds a row; one with the same key is [`CatalogError::AlreadyExists`].
pub fn insert<A: Asset>(tx: &Transaction, a: &A) -> Result<(), CatalogError> {
    let (k1, k2) = a.key();
    let (c1, c2) = A::KEY;
    let exists: Option<i64> = tx
        .query_row(&format!("SELECT seq FROM {} WHERE {c1} = ?1 AND {c2} = ?2", A::TABLE), [&k1, &k2], |r| r.get(0))
        .optional()
        .map_err(sqlite)?;
    if exists.is_some() {
        let name = if k2.is_empty() { k1 } else { format!("{k1}:{k2}") };
        return Err(CatalogError::AlreadyExists { kind: A::KIND, name, hint: String::new() });
    }
    let seq: i64 = tx
        .query_row(&format!("SELECT COALESCE(MAX(seq), 0) + 1 FROM {}", A::TABLE), [], |r| r.get(0))
        .map_err(sqlite)?;
    let extra = a.columns();
    let mut cols = vec![c1, c2, "seq", "created_at", "doc"];
    let mut vals: Vec<Value> =
        vec![k1.into(), k2.into(), seq.into(), a.created_at().to_string().into(), encode(a).into()];
    for (c, v) in extra {
        cols.push(c);
        vals.push(v);
    }
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!("INSERT INTO {} ({}) VALUES ({})", A::TABLE, cols.join(", "), marks.join(", "));
    tx.execute(&sql, params_from_iter(vals)).map_err(sqlite)?;
    Ok(())
}

/// Rewrites a row's record and extra columns (its key and order stay).
pub fn update<A: Asset>(tx: &Transaction, a: &A) -> Result<(), CatalogError> {
    let (k1, k2) = a.key();
    let (c1, c2) = A::KEY;
    let mut sets = vec!["doc = ?1".to_string()];
    let mut vals: Vec<Value> = vec![encode(a).into()];
    for (c, v) in a.columns() {
        vals.push(v);
        sets.push(format!("{c} = ?{}", vals.len()));
    }
    vals.push(k1.clone().into());
    vals.push(k2.into());
    let n = vals.len();
    let sql = format!("UPDATE {} SET {} WHERE {c1} = ?{} AND {c2} = ?{n}", A::TABLE, sets.join(", "), n - 1);
    if tx.execute(&sql, params_from_iter(vals)).map_err(sqlite)? == 0 {
        return Err(CatalogError::not_found(A::KIND, k1));
    }
    Ok(())
}

/// Reads a row inside a transaction.
pub fn find_in<A: Asset>(tx: &Transaction, k1: &str, k2: &str) -> Result<Option<A>, CatalogError> {
    let (c1, c2) = A::KEY;
    let sql = format!("SELECT doc FROM {} WHERE {c1} = ?1 AND {c2} = ?2", A::TABLE);
    let doc: Option<String> = tx.query_row(&sql, [k1, k2], |r| r.get(0)).optional().map_err(sqlite)?;
    doc.map(decode).transpose()
}

/// Removes a row; `false` if there was none.
pub fn delete<A: Asset>(tx: &Transaction, k1: &str, k2: &str) -> Result<bool, CatalogError> {
    let (c1, c2) = A::KEY;
    let n = tx.execute(&format!("DELETE FROM {} WHERE {c1} = ?1 AND {c2} = ?2", A::TABLE), [k1, k2]).map_err(sqlite)?;
    Ok(n > 0)
}

/// The next automatic version of `name`: one more than its highest numeric version.
pub fn next_version<A: Asset>(tx: &Transaction, name: &str) -> Result<String, CatalogError> {
    let sql = format!(
        "SELECT COALESCE(MAX(CAST(version AS INTEGER)), 0) + 1 FROM {} WHERE name = ?1 AND version GLOB '[0-9]*' \
         AND version NOT GLOB '*[^0-9]*'",
        A::TABLE
    );
    let n: i64 = tx.query_row(&sql, [name], |r| r.get(0)).map_err(sqlite)?;
    Ok(n.to_string())
}

pub(crate) fn sqlite(source: rusqlite::Error) -> CatalogError {
    CatalogError::Sqlite { path: "catalog".into(), source }
}
