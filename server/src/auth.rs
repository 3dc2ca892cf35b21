//! Who may play: an optional Origin allowlist and optional signed join tokens.
//!
//! A join token lets a deployment refuse anonymous players: the game's own backend signs
//! the player's name and an expiry with a secret it shares with the server, and the
//! browser passes the token in the WebSocket URL (`/ws?token=...`). The token is
//! `<expiry>.<signature>`: `expiry` in Unix seconds (decimal), `signature` the lowercase
//! hex HMAC-SHA256, keyed with the secret, of the bytes `<expiry>.<name>` (the name as
//! the Hello carries it, trimmed). See PROTOCOL.md.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a join token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was given.
    #[error("a join token is required")]
    Missing,
    /// The token is not `<expiry>.<hex>`.
    #[error("the join token is malformed")]
    Malformed,
    /// The token's expiry has passed.
    #[error("the join token has expired")]
    Expired,
    /// The signature does not match the name and expiry.
    #[error("the join token does not match")]
    BadSignature,
}

fn mac(secret: &[u8], expiry: u64, name: &str) -> HmacSha256 {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(expiry.to_string().as_bytes());
    mac.update(b".");
    mac.update(name.as_bytes());
    mac
}

/// Signs a join token for `name`, valid until `expiry` (Unix seconds). For game backends
/// written in Rust, and for tests.
pub fn sign_join_token(secret: &[u8], name: &str, expiry: u64) -> String {
    let tag = mac(secret, expiry, name).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("{expiry}.{hex}")
}

/// Checks a join token for `name` at time `now` (Unix seconds), in constant time.
pub fn verify_join_token(
    secret: &[u8],
    name: &str,
    token: Option<&str>,
    now: u64,
) -> Result<(), TokenError> {
    let token = token.ok_or(TokenError::Missing)?;
    let (expiry, hex) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let signature = decode_hex(hex).ok_or(TokenError::Malformed)?;
    if now > expiry {
        return Err(TokenError::Expired);
    }
    mac(secret, expiry, name)
        .verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)
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
        assert_eq!(verify_join_token(secret, "ann", Some(&token), 999), Ok(()));
        assert_eq!(
            verify_join_token(secret, "ann", Some(&token), 1_000),
            Ok(())
        );
        assert_eq!(
            verify_join_token(secret, "ann", Some(&token), 1_001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_join_token(secret, "bob", Some(&token), 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_join_token(b"other", "ann", Some(&token), 999),
            Err(TokenError::BadSignature)
        );
        let forged_expiry = token.replacen("1000", "9000", 1);
        assert_eq!(
            verify_join_token(secret, "ann", Some(&forged_expiry), 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_join_token(secret, "ann", None, 0),
            Err(TokenError::Missing)
        );
        for bad in ["", "x", "1.zz", "abc.00", "5."] {
            assert_eq!(
                verify_join_token(secret, "ann", Some(bad), 0),
                Err(TokenError::Malformed),
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
    fn query_params_are_found() {
        assert_eq!(query_param("a=1&token=xyz", "token"), Some("xyz"));
        assert_eq!(query_param("token", "token"), None);
        assert_eq!(query_param("", "token"), None);
    }
}
