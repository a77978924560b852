//! Open catalog connections, reused across requests: opening one reads the config, sets the
//! pragmas and checks the schema, which a request should not pay for (twice: the token check
//! and the handler).

use std::path::PathBuf;
use std::sync::Mutex;

use crate::service::Result;
use crate::workspace::Workspace;

/// At most this many idle connections are kept.
const KEEP: usize = 16;

pub struct Pool {
    root: PathBuf,
    idle: Mutex<Vec<Workspace>>,
}

impl Pool {
    pub fn new(root: PathBuf) -> Pool {
        Pool { root, idle: Mutex::new(Vec::new()) }
    }

    /// Runs `f` on an idle connection, or a new one; blocking (call it off the async threads).
    pub fn with<T>(&self, f: impl FnOnce(&mut Workspace) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut ws = match idle {
            Some(ws) => ws,
            None => Workspace::open(&self.root)?,
        };
        let out = f(&mut ws);
        // A connection left inside a transaction by a panic never comes back here; one that
        // answered an error is as good as new (every write is its own transaction).
        if ws.connection().is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEEP {
                idle.push(ws);
            }
        }
        out
    }
}
