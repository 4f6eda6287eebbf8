//! The server's authorization rule in one place: given what a request needs and the token it
//! carried (if any), let it through or say why not.
//!
//! With no key, everything is open ([`Access::Open`]; the command layer only allows that on
//! loopback or with `--allow-anonymous`). With a key, every [`Need`] is checked against the
//! token's grants; topics matching a `--public-topics` pattern may be read without a token.
//! What gets through gets a [`Grant`]: when the token it came with stops being accepted, so
//! a stream can end then rather than outlive its credentials.
//! This module knows nothing of HTTP: where the token came from and which status a
//! [`Denied`] becomes are the HTTP layer's business.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::claims::Claims;
use super::pattern::{Channel, Kind, Pattern};
use super::verifier::{TokenError, Verifier};

/// What one request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Post events to a channel.
    Publish(Channel<'a>),
    /// Read a channel (its stream, or its state).
    Subscribe(Channel<'a>),
    /// Publish to every channel of a kind, including names not chosen yet (a new order).
    PublishAny(Kind),
    /// The admin endpoints: list, inspect and delete sessions, broadcast, list topics.
    Admin,
}

impl std::fmt::Display for Need<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::Publish(channel) => write!(f, "publish to {channel}"),
            Need::Subscribe(channel) => write!(f, "subscribe to {channel}"),
            Need::PublishAny(kind) => write!(f, "publish to {}/*", kind.prefix()),
            Need::Admin => f.write_str("use the admin endpoints"),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token came with a request that needs one.
    Missing,
    /// The token is not acceptable: malformed, badly signed, expired.
    Invalid(TokenError),
    /// A good token that does not grant what was asked.
    Forbidden(String),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Missing => f.write_str(
                "missing token: send `Authorization: Bearer <jwt>` (subscribers may also use \
                 the sselab_auth cookie or ?access_token=)",
            ),
            Denied::Invalid(error) => error.fmt(f),
            Denied::Forbidden(reason) => f.write_str(reason),
        }
    }
}

/// What a request was let through with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grant {
    /// When the token it came with stops being accepted; `None` when no token was needed
    /// (an open server, a public topic).
    pub expiry: Option<Expiry>,
}

impl Grant {
    /// What two checks of one request let through together: the earlier expiry.
    pub fn and(self, other: Grant) -> Grant {
        let expiry = match (self.expiry, other.expiry) {
            (Some(a), Some(b)) if b.accepted_until < a.accepted_until => Some(b),
            (a, b) => a.or(b),
        };
        Grant { expiry }
    }
}

/// When a token stops being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The token's `exp` claim.
    pub exp: u64,
    /// The last whole second of the Unix clock at which it is accepted: `exp` plus the
    /// leeway ([`Verifier::accepted_until`]).
    pub accepted_until: u64,
}

impl Expiry {
    /// The first instant at which the token is refused: the start of the second after
    /// `accepted_until`. `None` when that lies beyond what the clock can say (a token good
    /// for ever, in effect).
    pub fn refused_from(&self) -> Option<SystemTime> {
        let secs = self.accepted_until.checked_add(1)?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    }
}

/// Why a server without a key is open, for the banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenBecause {
    /// Every listener is on loopback.
    LoopbackOnly,
    /// `--allow-anonymous` was given.
    AllowAnonymous,
}

/// The server's rule: open, or checked with a key.
#[derive(Debug, Clone)]
pub enum Access {
    Open(OpenBecause),
    Checked(Arc<Checked>),
}

/// The key and the topics anyone may read.
#[derive(Debug)]
pub struct Checked {
    pub verifier: Verifier,
    pub public_topics: Vec<Pattern>,
}

impl Access {
    pub fn checked(verifier: Verifier, public_topics: Vec<Pattern>) -> Self {
        Access::Checked(Arc::new(Checked {
            verifier,
            public_topics,
        }))
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Access::Open(_))
    }

    /// The verifier, when a key is configured.
    pub fn verifier(&self) -> Option<&Verifier> {
        match self {
            Access::Open(_) => None,
            Access::Checked(checked) => Some(&checked.verifier),
        }
    }

    /// May a request carrying `token` do what it `need`s? If so, until when.
    pub fn check(&self, token: Option<&str>, need: Need<'_>) -> Result<Grant, Denied> {
        let Access::Checked(checked) = self else {
            return Ok(Grant::default());
        };
        if let Need::Subscribe(channel) = need
            && channel.kind == Kind::Topic
            && checked.public_topics.iter().any(|p| p.matches(channel))
        {
            // Public: no token needed, and a stale one (an old cookie) does not get in the way.
            return Ok(Grant::default());
        }
        let token = token.ok_or(Denied::Missing)?;
        let claims = checked.verifier.verify(token).map_err(Denied::Invalid)?;
        grants(&claims, need)?;
        Ok(Grant {
            expiry: Some(Expiry {
                exp: claims.exp,
                accepted_until: checked.verifier.accepted_until(claims.exp),
            }),
        })
    }
}

/// Does a verified token grant `need`? The 403 reason names what was missing.
pub fn grants(claims: &Claims, need: Need<'_>) -> Result<(), Denied> {
    let grants = &claims.sselab;
    let allowed = match need {
        Need::Publish(channel) => grants.may_publish(channel),
        Need::Subscribe(channel) => grants.may_subscribe(channel),
        Need::PublishAny(kind) => grants.may_publish_all(kind),
        Need::Admin => grants.admin,
    };
    if allowed {
        return Ok(());
    }
    let what = match need {
        Need::Admin => "`\"admin\": true`".to_string(),
        Need::Publish(_) | Need::PublishAny(_) => "a matching `publish` pattern".to_string(),
        Need::Subscribe(_) => "a matching `subscribe` pattern".to_string(),
    };
    Err(Denied::Forbidden(format!(
        "forbidden: to {need} the token needs {what}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::claims::Grants;
    use crate::auth::keys::{SignKey, VerifyKey};
    use crate::auth::signer::Signer;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn access(public: &[&str]) -> Access {
        let verifier = Verifier::new(VerifyKey::hs256(SECRET).expect("key"));
        let public = public
            .iter()
            .map(|p| Pattern::parse(p).expect("pattern"))
            .collect();
        Access::checked(verifier, public)
    }

    fn token(publish: &[&str], subscribe: &[&str], admin: bool) -> String {
        let patterns = |list: &[&str]| list.iter().map(|p| Pattern::parse(p).expect("p")).collect();
        let grants = Grants {
            publish: patterns(publish),
            subscribe: patterns(subscribe),
            admin,
        };
        Signer::new(SignKey::hs256(SECRET).expect("key"))
            .sign(grants, std::time::Duration::from_secs(60))
            .expect("signs")
    }

    #[test]
    fn open_access_lets_everything_through() {
        let open = Access::Open(OpenBecause::LoopbackOnly);
        assert_eq!(open.check(None, Need::Admin), Ok(Grant::default()));
        assert_eq!(
            open.check(Some("garbage"), Need::Publish(Channel::topic("x"))),
            Ok(Grant::default())
        );
    }

    #[test]
    fn each_need_is_checked_against_its_own_list() {
        let access = access(&[]);
        let publisher = token(&["topics/*"], &[], false);
        let reader = token(&[], &["sessions/alice"], false);
        let admin = token(&[], &[], true);
        let news = Channel::topic("news");
        assert!(access.check(Some(&publisher), Need::Publish(news)).is_ok());
        assert!(matches!(
            access.check(Some(&publisher), Need::Subscribe(news)),
            Err(Denied::Forbidden(_))
        ));
        assert!(
            access
                .check(Some(&reader), Need::Subscribe(Channel::session("alice")))
                .is_ok()
        );
        assert!(
            access
                .check(Some(&reader), Need::Subscribe(Channel::session("bob")))
                .is_err()
        );
        assert!(access.check(Some(&admin), Need::Admin).is_ok());
        assert!(access.check(Some(&publisher), Need::Admin).is_err());
        assert!(
            access
                .check(Some(&publisher), Need::PublishAny(Kind::Order))
                .is_err()
        );
        assert_eq!(access.check(None, Need::Admin), Err(Denied::Missing));
        assert!(matches!(
            access.check(Some("x.y.z"), Need::Admin),
            Err(Denied::Invalid(_))
        ));
    }

    #[test]
    fn public_topics_are_readable_without_a_token_and_only_readable() {
        let access = access(&["topics/public.*"]);
        let open_topic = Channel::topic("public.news");
        // No token needed, so none whose expiry ends the stream.
        assert_eq!(
            access.check(None, Need::Subscribe(open_topic)),
            Ok(Grant::default())
        );
        for token in ["stale", &token(&[], &["*"], false)] {
            assert_eq!(
                access.check(Some(token), Need::Subscribe(open_topic)),
                Ok(Grant::default())
            );
        }
        assert_eq!(
            access.check(None, Need::Publish(open_topic)),
            Err(Denied::Missing)
        );
        assert_eq!(
            access.check(None, Need::Subscribe(Channel::topic("private"))),
            Err(Denied::Missing)
        );
    }

    #[test]
    fn a_token_grant_lasts_until_exp_plus_the_leeway() {
        let verifier = Verifier::new(VerifyKey::hs256(SECRET).expect("key")).with_leeway(7);
        let access = Access::checked(verifier, Vec::new());
        let reader = token(&[], &["topics/a"], false);
        let grant = access
            .check(Some(&reader), Need::Subscribe(Channel::topic("a")))
            .expect("granted");
        let expiry = grant.expiry.expect("a token grant expires");
        assert_eq!(expiry.accepted_until, expiry.exp + 7);
        let refused_from = expiry.refused_from().expect("in the clock's range");
        let secs = refused_from.duration_since(UNIX_EPOCH).expect("after 1970");
        assert_eq!(secs, Duration::from_secs(expiry.exp + 8));
        let for_ever = Expiry {
            exp: u64::MAX,
            accepted_until: u64::MAX,
        };
        assert_eq!(for_ever.refused_from(), None);
    }

    #[test]
    fn forbidden_says_what_was_asked() {
        let access = access(&[]);
        let reader = token(&[], &["topics/a"], false);
        let Err(Denied::Forbidden(reason)) =
            access.check(Some(&reader), Need::Subscribe(Channel::order("o1")))
        else {
            panic!("forbidden");
        };
        assert!(reason.contains("subscribe to orders/o1"), "{reason}");
    }
}
