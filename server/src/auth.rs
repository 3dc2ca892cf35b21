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

use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

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
) -> Result<(), Error> {
    let token = token.ok_or(Error::TokenMissing)?;
    let (expiry, hex) = token.split_once('.').ok_or(Error::TokenMalformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| Error::TokenMalformed)?;
    let signature = decode_hex(hex).ok_or(Error::TokenMalformed)?;
    if now > expiry {
        return Err(Error::TokenExpired);
    }
    mac(secret, expiry, name)
        .verify_slice(&signature)
        .map_err(|_| Error::TokenBadSignature)
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
    fn query_params_are_found() {
        assert_eq!(query_param("a=1&token=xyz", "token"), Some("xyz"));
        assert_eq!(query_param("token", "token"), None);
        assert_eq!(query_param("", "token"), None);
    }
}
