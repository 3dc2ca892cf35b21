//! Who may play: an optional Origin allowlist and optional signed join tokens.
//!
//! A join token lets a deployment refuse anonymous players: the game's own backend signs
//! the player's name and an expiry with a secret it shares with the server, and the
//! browser passes the token in the WebSocket URL (`/ws?token=...`). The token is
//! `<expiry>.<signature>`: `expiry` in Unix seconds (decimal), `signature` the lowercase
//! hex HMAC-SHA256, keyed with the secret, of the bytes `<expiry>.<name>` (the name as
//! the Hello carries it, trimmed). Such a token may be used again and again until it
//! expires.
//!
//! A single-use token carries a nonce: `<expiry>.<nonce>.<signature>`, the nonce 1 to 64
//! of `A-Z a-z 0-9 _ -`, signed over `once.<expiry>.<nonce>.<name>` (the prefix keeps the
//! two kinds apart: a reusable token's signed bytes start with a digit). The server
//! remembers the nonce until the token expires and refuses a second use; it refuses a
//! single-use token that expires more than `--join-token-max-lifetime` from now, so that
//! what it remembers stays bounded. See PROTOCOL.md.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

/// Longest nonce of a single-use join token, in bytes.
pub const MAX_NONCE_BYTES: usize = 64;

/// Most nonces remembered at once; past it, single-use tokens are refused until some
/// expire.
const MAX_NONCES: usize = 100_000;

fn mac(secret: &[u8], expiry: u64, nonce: Option<&str>, name: &str) -> HmacSha256 {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    if let Some(nonce) = nonce {
        mac.update(b"once.");
        mac.update(expiry.to_string().as_bytes());
        mac.update(b".");
        mac.update(nonce.as_bytes());
    } else {
        mac.update(expiry.to_string().as_bytes());
    }
    mac.update(b".");
    mac.update(name.as_bytes());
    mac
}

fn hex(tag: &[u8]) -> String {
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_nonce(nonce: &str) -> bool {
    (1..=MAX_NONCE_BYTES).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Signs a join token for `name`, valid until `expiry` (Unix seconds). For game backends
/// written in Rust, and for tests.
pub fn sign_join_token(secret: &[u8], name: &str, expiry: u64) -> String {
    let tag = mac(secret, expiry, None, name).finalize().into_bytes();
    format!("{expiry}.{}", hex(&tag))
}

/// Signs a single-use join token for `name`, valid until `expiry` (Unix seconds), with
/// `nonce` (1 to [`MAX_NONCE_BYTES`] of `A-Z a-z 0-9 _ -`, unique per token: 16 random
/// bytes in hex, say). None if the nonce is not of that form.
pub fn sign_single_use_join_token(
    secret: &[u8],
    name: &str,
    expiry: u64,
    nonce: &str,
) -> Option<String> {
    if !is_nonce(nonce) {
        return None;
    }
    let tag = mac(secret, expiry, Some(nonce), name)
        .finalize()
        .into_bytes();
    Some(format!("{expiry}.{nonce}.{}", hex(&tag)))
}

/// A join token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// When it expires (Unix seconds).
    pub expiry: u64,
    /// Its nonce, if it is single-use.
    pub nonce: Option<String>,
}

/// Checks a join token for `name` at time `now` (Unix seconds), in constant time: its
/// form, its expiry and its signature. Whether a single-use token was used before is
/// the server's to check (it remembers nonces).
pub fn check_join_token(
    secret: &[u8],
    name: &str,
    token: Option<&str>,
    now: u64,
) -> Result<JoinToken, Error> {
    let token = token.ok_or(Error::TokenMissing)?;
    let (expiry, rest) = token.split_once('.').ok_or(Error::TokenMalformed)?;
    let (nonce, hex) = match rest.split_once('.') {
        Some((nonce, hex)) if is_nonce(nonce) => (Some(nonce), hex),
        Some(_) => return Err(Error::TokenMalformed),
        None => (None, rest),
    };
    let expiry: u64 = expiry.parse().map_err(|_| Error::TokenMalformed)?;
    let signature = decode_hex(hex).ok_or(Error::TokenMalformed)?;
    if now > expiry {
        return Err(Error::TokenExpired);
    }
    mac(secret, expiry, nonce, name)
        .verify_slice(&signature)
        .map_err(|_| Error::TokenBadSignature)?;
    Ok(JoinToken {
        expiry,
        nonce: nonce.map(str::to_owned),
    })
}

/// Checks a join token for `name` at time `now` (Unix seconds), in constant time (see
/// [`check_join_token`]).
pub fn verify_join_token(
    secret: &[u8],
    name: &str,
    token: Option<&str>,
    now: u64,
) -> Result<(), Error> {
    check_join_token(secret, name, token, now).map(|_| ())
}

/// The nonces of single-use join tokens seen, each until its token expires.
#[derive(Debug, Default)]
pub(crate) struct Nonces {
    seen: Mutex<HashMap<String, u64>>,
}

impl Nonces {
    /// Lets `token` in once: a reusable token always, a single-use one if its nonce is
    /// new and it expires within `max_lifetime` of `now`.
    pub(crate) fn use_once(
        &self,
        token: &JoinToken,
        now: u64,
        max_lifetime: Duration,
    ) -> Result<(), Error> {
        let Some(nonce) = &token.nonce else {
            return Ok(());
        };
        if token.expiry > now.saturating_add(max_lifetime.as_secs()) {
            return Err(Error::TokenTooLong);
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains_key(nonce) {
            return Err(Error::TokenUsed);
        }
        if seen.len() >= MAX_NONCES {
            seen.retain(|_, expiry| *expiry >= now);
            if seen.len() >= MAX_NONCES {
                return Err(Error::TokenBusy);
            }
        }
        seen.insert(nonce.clone(), token.expiry);
        Ok(())
    }

    /// Forgets the nonces of tokens expired by `now` (they are refused as expired).
    pub(crate) fn sweep(&self, now: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, expiry| *expiry >= now);
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The value of `key` in a URL query string (no percent-decoding: tokens are plain ASCII).
pub(crate) fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_for_their_name_until_expiry() {
        let secret = b"backend secret";
        let token = sign_join_token(secret, "ann", 1_000);
        let check = |name, token: Option<&str>, now| verify_join_token(secret, name, token, now);
        assert!(check("ann", Some(&token), 999).is_ok());
        assert!(check("ann", Some(&token), 1_000).is_ok());
        assert!(matches!(
            check("ann", Some(&token), 1_001),
            Err(Error::TokenExpired)
        ));
        assert!(matches!(
            check("bob", Some(&token), 999),
            Err(Error::TokenBadSignature)
        ));
        assert!(matches!(
            verify_join_token(b"other", "ann", Some(&token), 999),
            Err(Error::TokenBadSignature)
        ));
        let forged_expiry = token.replacen("1000", "9000", 1);
        assert!(matches!(
            check("ann", Some(&forged_expiry), 999),
            Err(Error::TokenBadSignature)
        ));
        assert!(matches!(check("ann", None, 0), Err(Error::TokenMissing)));
        for bad in ["", "x", "1.zz", "abc.00", "5."] {
            assert!(
                matches!(check("ann", Some(bad), 0), Err(Error::TokenMalformed)),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_documented_example_holds() {
        // PROTOCOL.md, "Join tokens".
        assert_eq!(
            sign_join_token(b"s3cret", "ann", 4_102_444_800),
            "4102444800.a0c8bdf3674f9c3c45836e59b1ab923261ed35f23c7e621901d0efd2ee8332ff"
        );
    }

    #[test]
    fn a_single_use_token_lets_in_once() {
        let secret = b"backend secret";
        let token = sign_single_use_join_token(secret, "ann", 1_000, "n0nce-1").expect("nonce");
        assert!(token.starts_with("1000.n0nce-1."));
        let checked = check_join_token(secret, "ann", Some(&token), 900).expect("verifies");
        assert_eq!(checked.nonce.as_deref(), Some("n0nce-1"));
        let nonces = Nonces::default();
        let life = Duration::from_secs(600);
        assert!(nonces.use_once(&checked, 900, life).is_ok());
        assert!(matches!(
            nonces.use_once(&checked, 901, life),
            Err(Error::TokenUsed)
        ));
        // A token good for longer than the lifetime would have to be remembered too long.
        assert!(matches!(
            nonces.use_once(&checked, 300, life),
            Err(Error::TokenTooLong)
        ));
        nonces.sweep(1_001);
        assert!(nonces.seen.lock().expect("lock").is_empty());
        // A reusable token for the name "n0nce-1.ann" signs the same text but for the
        // prefix: it is no single-use token for "ann".
        let reusable = sign_join_token(secret, "n0nce-1.ann", 1_000);
        let (expiry, hex) = reusable.split_once('.').expect("two parts");
        let spliced = format!("{expiry}.n0nce-1.{hex}");
        assert!(matches!(
            check_join_token(secret, "ann", Some(&spliced), 900),
            Err(Error::TokenBadSignature)
        ));
        // Reusable tokens stay reusable.
        let reusable = sign_join_token(secret, "ann", 1_000);
        let checked = check_join_token(secret, "ann", Some(&reusable), 900).expect("verifies");
        assert!(nonces.use_once(&checked, 900, life).is_ok());
        assert!(nonces.use_once(&checked, 900, life).is_ok());
        assert!(sign_single_use_join_token(secret, "ann", 1, "has.dot").is_none());
        assert!(matches!(
            check_join_token(secret, "ann", Some("1000.bad nonce.00"), 900),
            Err(Error::TokenMalformed)
        ));
    }

    #[test]
    fn the_documented_single_use_example_holds() {
        // PROTOCOL.md, "Join tokens".
        assert_eq!(
            sign_single_use_join_token(b"s3cret", "ann", 4_102_444_800, "k9Qz"),
            Some(
                "4102444800.k9Qz.96410426194bc57962b44297e2ee3930879fc33ce873607ab5fc707e8ea51be1"
                    .to_owned()
            )
        );
    }

    #[test]
    fn query_params_are_found() {
        assert_eq!(query_param("a=1&token=xyz", "token"), Some("xyz"));
        assert_eq!(query_param("token", "token"), None);
        assert_eq!(query_param("", "token"), None);
    }
}
