//! `batchscore token create|list|revoke`: access tokens for `batchscore serve`.

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, Listed, Name, Plain};
use crate::service::ServiceError;
use crate::service::tokens::{self, Created};
use crate::workspace::assets::Scope;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create(Create),
    /// List the tokens (names, scopes, expiry; never the tokens).
    List(Plain),
    /// Revoke a token: it is refused from now on.
    Revoke(Name),
}

#[derive(Debug, Args)]
pub struct Create {
    #[arg(long, short = 'n')]
    pub name: String,
    /// read (GET only), invoke (also start and cancel jobs) or admin (everything).
    #[arg(long, short = 's')]
    pub scope: String,
    /// How long it lives: 30d, 12h, 90m, or never.
    #[arg(long, default_value = "90d")]
    pub expires: String,
    #[command(flatten)]
    pub common: Common,
}

impl Listed for Created {
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("Name", "name"), ("Scope", "scope"), ("Expires", "expires_at"), ("Token", "token")];
}

fn create(a: &Create) -> Result<Created, ServiceError> {
    let scope = Scope::parse(&a.scope)
        .ok_or_else(|| ServiceError::invalid(format!("--scope {}", a.scope), "use read, invoke or admin"))?;
    let expires = tokens::parse_expiry(&a.expires)?;
    let created = tokens::create(&mut a.common.open()?, &a.name, scope, expires)?;
    eprintln!("the token is shown once; keep it now (only its hash is stored)");
    Ok(created)
}

pub fn run(cmd: &TokenCommand) -> Exit {
    match cmd {
        TokenCommand::Create(a) => a.common.show(create(a)),
        TokenCommand::List(a) => a.common.show(a.common.open().and_then(|ws| tokens::list(&ws))),
        TokenCommand::Revoke(a) => a.common.show(a.common.open().and_then(|mut ws| tokens::revoke(&mut ws, &a.name))),
    }
}
