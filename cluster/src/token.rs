//! Reservation tokens: what a node hands a player to carry to another node. Pure bytes and
//! HMAC, no I/O.
//!
//! Layout (all integers big-endian):
//!
//! | bytes      | field                                                          |
//! |------------|----------------------------------------------------------------|
//! | 0          | version, 1                                                     |
//! | 1..17      | reservation id (16 random bytes)                               |
//! | 17..25     | expiry, Redis time in ms since the Unix epoch (u64)            |
//! | 25..29     | the lobby's local id on its node (u32; 0: create a lobby there)|
//! | 29         | node id length `n` (1..=64)                                    |
//! | 30..30+n   | node id (ASCII)                                                |
//! | 30+n..62+n | HMAC-SHA256 over bytes 0..30+n with the cluster secret         |
//!
//! The signature lets the receiving node refuse a forged or altered token before it asks
//! Redis; Redis keeps the authority (a token is good only while its record exists, once).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ReservationError;

/// Token format version.
const VERSION: u8 = 1;
/// Bytes of a reservation id.
pub const RESERVATION_ID_LEN: usize = 16;
/// Longest node id.
pub const MAX_NODE_ID_LEN: usize = 64;
/// Bytes of the signature.
const MAC_LEN: usize = 32;
/// Bytes before the node id.
const HEAD_LEN: usize = 30;
/// Longest encoded token.
pub const MAX_TOKEN_LEN: usize = HEAD_LEN + MAX_NODE_ID_LEN + MAC_LEN;

type HmacSha256 = Hmac<Sha256>;

/// The signed content of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationToken {
    /// Random id, the Redis record's name.
    pub id: [u8; RESERVATION_ID_LEN],
    /// Expiry in Redis time (ms since the Unix epoch). Informative: Redis' record decides.
    pub expires_at_ms: u64,
    /// The lobby's local id on `node`; 0 asks `node` to create a lobby (quick-join).
    pub lobby: u32,
    /// The node that redeems it.
    pub node: String,
}

impl ReservationToken {
    /// The token's bytes, signed with `secret`.
    pub fn encode(&self, secret: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN + self.node.len() + MAC_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        out.extend_from_slice(&self.lobby.to_be_bytes());
        // Node ids are checked (1..=64 ASCII bytes) when a Directory is built.
        out.push(u8::try_from(self.node.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.node.as_bytes());
        let tag = mac(secret, &out);
        out.extend_from_slice(&tag);
        out
    }

    /// Parses `bytes` and checks the signature against each of `secrets` (the current one
    /// and the one before a Redis restart).
    pub fn decode(bytes: &[u8], secrets: &[Vec<u8>]) -> Result<Self, ReservationError> {
        if bytes.len() < HEAD_LEN + 1 + MAC_LEN || bytes.len() > MAX_TOKEN_LEN {
            return Err(ReservationError::Malformed);
        }
        if bytes[0] != VERSION {
            return Err(ReservationError::Malformed);
        }
        let n = usize::from(bytes[29]);
        if n == 0 || n > MAX_NODE_ID_LEN || bytes.len() != HEAD_LEN + n + MAC_LEN {
            return Err(ReservationError::Malformed);
        }
        let (signed, tag) = bytes.split_at(HEAD_LEN + n);
        let genuine = secrets.iter().any(|s| {
            let mut m = HmacSha256::new_from_slice(s).expect("HMAC takes a key of any length");
            m.update(signed);
            m.verify_slice(tag).is_ok()
        });
        if !genuine {
            return Err(ReservationError::BadSignature);
        }
        let mut id = [0u8; RESERVATION_ID_LEN];
        id.copy_from_slice(&signed[1..17]);
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&signed[17..25]);
        let mut lobby = [0u8; 4];
        lobby.copy_from_slice(&signed[25..29]);
        let node = std::str::from_utf8(&signed[HEAD_LEN..])
            .map_err(|_| ReservationError::Malformed)?
            .to_owned();
        Ok(Self {
            id,
            expires_at_ms: u64::from_be_bytes(exp),
            lobby: u32::from_be_bytes(lobby),
            node,
        })
    }

    /// The id as Redis names it (lowercase hex).
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }
}

fn mac(secret: &[u8], data: &[u8]) -> [u8; MAC_LEN] {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReservationToken {
        ReservationToken {
            id: [7; RESERVATION_ID_LEN],
            expires_at_ms: 1_796_000_000_123,
            lobby: 42,
            node: "node-a".to_owned(),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let t = sample();
        let bytes = t.encode(b"secret");
        assert_eq!(bytes.len(), HEAD_LEN + 6 + MAC_LEN);
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[17..25], &1_796_000_000_123u64.to_be_bytes());
        assert_eq!(&bytes[25..29], &[0, 0, 0, 42]);
        assert_eq!(bytes[29], 6);
        assert_eq!(&bytes[30..36], b"node-a");
        let back = ReservationToken::decode(&bytes, &[b"other".to_vec(), b"secret".to_vec()]);
        assert_eq!(back, Ok(t));
    }

    /// The worked example of PROTOCOL.md ("The reservation") and of the protocol's golden
    /// vectors (`join_reserved`, `redirect`): the sample signed with the key `secret`.
    #[test]
    fn the_documented_example_token() {
        let text = hex(&sample().encode(b"secret"));
        assert_eq!(
            text,
            "0107070707070707070707070707070707000001a229f1287b0000002a066e6f64652d612c38b64e6dd9d5869ef4670fb6c23c3a87afecff02b7713548171d990207e5ff"
        );
    }

    #[test]
    fn tampering_and_wrong_keys_are_refused() {
        let bytes = sample().encode(b"secret");
        assert_eq!(
            ReservationToken::decode(&bytes, &[b"other".to_vec()]),
            Err(ReservationError::BadSignature)
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(
                ReservationToken::decode(&bad, &[b"secret".to_vec()]).is_err(),
                "byte {i}"
            );
        }
        assert_eq!(
            ReservationToken::decode(&bytes[..bytes.len() - 1], &[b"secret".to_vec()]),
            Err(ReservationError::Malformed)
        );
        assert_eq!(
            ReservationToken::decode(&[], &[b"secret".to_vec()]),
            Err(ReservationError::Malformed)
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
