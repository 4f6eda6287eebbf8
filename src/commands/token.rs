//! `sselab token`: print a token signed with the server's key, so a curl line stays a
//! one-liner: `curl -H "Authorization: Bearer $(sselab token --publish 'topics/*')" …`.
//!
//! The token goes alone to stdout; what it grants and until when goes to the log (stderr).

use std::io::Write;

use super::access;
use crate::auth::Grants;
use crate::cli::TokenArgs;

pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let grants = Grants {
        publish: args.publish.clone(),
        subscribe: args.subscribe.clone(),
        admin: args.admin,
    };
    if grants.is_empty() {
        anyhow::bail!(
            "the token would grant nothing: give --publish PATTERN, --subscribe PATTERN or --admin"
        );
    }
    let signer = access::signer(args)?;
    let token = signer
        .sign(grants.clone(), args.ttl)
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        algorithm = ?signer.algorithm(),
        ttl_secs = args.ttl.as_secs(),
        publish = ?grants.publish.iter().map(ToString::to_string).collect::<Vec<_>>(),
        subscribe = ?grants.subscribe.iter().map(ToString::to_string).collect::<Vec<_>>(),
        admin = grants.admin,
        "signed a token"
    );
    // A closed pipe (`| head`) is not worth a panic.
    let _ = writeln!(std::io::stdout(), "{token}");
    Ok(())
}
