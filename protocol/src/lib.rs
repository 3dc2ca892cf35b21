//! The ticksync wire protocol.
//!
//! This crate is pure: control message types ([`ClientMessage`], [`ServerMessage`]),
//! their codec ([`codec`], the only place that knows bincode's settings), the game
//! schema ([`schema`]), the game frames driven by it ([`state`]) and the limits every
//! peer enforces ([`limits`]). It does no I/O and has no clock, so the server, the bots
//! and any test can share it, and `PROTOCOL.md` at the repository root documents the
//! same bytes for clients in other languages.
//!
//! One WebSocket binary message carries exactly one message, whose first byte is its tag.
//! Tags 0 to 63 are control messages (bincode: the tag is the variant index, then the
//! fields in order). Tags from 64 ([`codec::FIRST_FRAME_TAG`]) are game frames: a game
//! describes its entities, lobby and private state, input, messages and events in a
//! [`schema::Schema`] (declared with the `ticksync-derive` macros re-exported here), sent
//! to each player in `Joined`; [`state`] quantizes them into rows and encodes snapshots,
//! deltas, inputs, messages and events by that schema, bit-packed ([`bits`]).
//!
//! It is also the one source of every protocol constant: message tags and their names
//! (`ClientMessage::tag`, `NAMES`, `KIND_NAMES`), error codes ([`ErrorCode::ALL`]), left
//! reasons, close codes ([`close::ALL`], [`close::FINAL`]), limits ([`limits::ALL`]) and
//! join codes ([`join_code`]). `protocol/tests/golden.rs` exports them to
//! `protocol/golden/vectors.json` for the JavaScript client, and `protocol/tests/doc.rs`
//! checks `PROTOCOL.md`'s tables against them.

/// Declares documented constants and `ALL`, the list of every one of them (name, value)
/// in declaration order: adding a constant lists it, so nothing that reads the list (the
/// golden vectors file, the `PROTOCOL.md` check, metric labels) can miss it.
macro_rules! listed_consts {
    ($ty:ty, $list_doc:literal; $($(#[$doc:meta])* $name:ident = $value:expr;)+) => {
        $($(#[$doc])* pub const $name: $ty = $value;)+
        #[doc = $list_doc]
        pub const ALL: &[(&str, $ty)] = &[$((stringify!($name), $name)),+];
    };
    // Constants of different integer types, listed as `$ty`.
    (as $ty:ty, $list_doc:literal; $($(#[$doc:meta])* $name:ident: $ity:ty = $value:expr;)+) => {
        $($(#[$doc])* pub const $name: $ity = $value;)+
        #[doc = $list_doc]
        pub const ALL: &[(&str, $ty)] = &[$((stringify!($name), $name as $ty)),+];
    };
}

/// Declares a `#[repr]` enum of wire values with `ALL` (every variant, in declaration
/// order), `name` (the variant's name) and `from_wire`, all generated from the one
/// declaration so that a new variant cannot be left out of them.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident: $repr:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[repr($repr)]
        pub enum $enum {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $enum {
            /// Every value, in declaration (and wire value) order.
            pub const ALL: &[$enum] = &[$($enum::$variant),+];

            /// The variant's name, as `PROTOCOL.md` and the golden vectors file spell it.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => stringify!($variant),)+
                }
            }

            /// The variant with this wire value, or None for a value this version does
            /// not know.
            pub fn from_wire(value: $repr) -> Option<Self> {
                match value {
                    $($value => Some($enum::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use {listed_consts, wire_enum};

// The derives name `::ticksync_protocol`; let them work inside this crate too.
extern crate self as ticksync_protocol;

pub mod bits;
pub mod codec;
pub mod limits;
mod messages;
pub mod schema;
pub mod state;

pub use codec::{CodecError, decode_client, decode_server, encode_client, encode_server};
pub use messages::*;
pub use ticksync_derive::{Messages, State, StateEnum};

/// Version of the wire protocol. A client whose `Hello` carries another version is
/// refused with [`ErrorCode::VersionMismatch`] and close code [`close::VERSION_MISMATCH`].
pub const PROTOCOL_VERSION: u16 = 2;

/// WebSocket close codes the server uses (RFC 6455 codes and ticksync's 4000-range codes).
pub mod close {
    crate::listed_consts! {
        u16, "Every close code the server sends: (constant name, code), ascending.";
        /// The session ended normally (the client closed, or left after an error it could fix).
        NORMAL = 1000;
        /// The server is shutting down.
        GOING_AWAY = 1001;
        /// The client broke the protocol: an undecodable message, or one not valid now.
        PROTOCOL_ERROR = 1002;
        /// The client sent a text frame; ticksync speaks binary frames only.
        UNSUPPORTED_DATA = 1003;
        /// A policy was violated (rate limits, origin, authentication).
        POLICY_VIOLATION = 1008;
        /// A message was larger than [`crate::limits::MAX_CLIENT_MESSAGE_BYTES`].
        MESSAGE_TOO_BIG = 1009;
        /// The server hit an internal error.
        INTERNAL_ERROR = 1011;
        /// The server is at its connection cap; try again later.
        TRY_AGAIN_LATER = 1013;
        /// The client's protocol version is not the server's.
        VERSION_MISMATCH = 4001;
        /// The client sent no `Hello` in time after connecting.
        HELLO_TIMEOUT = 4002;
        /// The client sent nothing for too long.
        IDLE_TIMEOUT = 4003;
        /// The client did not read what the server sent for too long.
        SLOW_CONSUMER = 4004;
        /// Another connection resumed this session with its token.
        REPLACED = 4005;
        /// An operator removed the player.
        KICKED = 4006;
    }

    /// Codes a client reports itself when a connection ends without a close code of the
    /// server's (RFC 6455 reserves them: they are never sent in a close frame).
    pub mod local {
        crate::listed_consts! {
            u16, "Every locally reported code: (constant name, code), ascending.";
            /// The close frame carried no code.
            NO_CLOSE_CODE = 1005;
            /// The connection ended without a close frame (a reset, a vanished link).
            CONNECTION_LOST = 1006;
            /// The TLS handshake failed.
            TLS_FAILURE = 1015;
        }
    }

    /// Close codes after which reconnecting would only repeat the failure, so a client
    /// should stop and show the reason: a version mismatch, replaced by a newer
    /// connection of the same session (two tabs must not take it from each other in
    /// turn), kicked, and the client's own faults (a protocol error, a text frame, a
    /// policy violation such as a rate limit or a refused join token, an oversized
    /// message). After any other code, reconnecting later (with backoff) may work.
    pub const FINAL: [u16; 7] = [
        PROTOCOL_ERROR,
        UNSUPPORTED_DATA,
        POLICY_VIOLATION,
        MESSAGE_TOO_BIG,
        VERSION_MISMATCH,
        REPLACED,
        KICKED,
    ];

    /// Whether a client should stop rather than reconnect after a close with `code`
    /// (see [`FINAL`]).
    pub fn is_final(code: u16) -> bool {
        FINAL.contains(&code)
    }

    /// The constant name of a close code the server sends, or of a locally reported one.
    pub fn name(code: u16) -> Option<&'static str> {
        ALL.iter()
            .chain(local::ALL)
            .find(|&&(_, c)| c == code)
            .map(|&(name, _)| name)
    }
}

/// Private lobby join codes: what the server issues and how it reads a typed one.
pub mod join_code {
    /// The symbols of a code: no 0/O or 1/I to misread; 32 symbols, 5 bits each.
    pub const ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    /// Symbols per code (50 random bits), shown as two groups of five: `XXXXX-XXXXX`.
    pub const SYMBOLS: usize = 10;

    /// The canonical form (`XXXXX-XXXXX`, upper case) of a typed code, or None if it
    /// cannot be one. Case does not matter; white space and dashes anywhere are ignored.
    pub fn normalize(code: &str) -> Option<String> {
        let compact: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if compact.len() != SYMBOLS || !compact.chars().all(|c| ALPHABET.contains(c)) {
            return None;
        }
        let (a, b) = compact.split_at(SYMBOLS / 2);
        Some(format!("{a}-{b}"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn typed_codes_are_forgiven_case_spaces_and_dashes() {
            assert_eq!(normalize("K7QXM-2PDHR").as_deref(), Some("K7QXM-2PDHR"));
            assert_eq!(normalize(" k7qxm 2pd-hr\t").as_deref(), Some("K7QXM-2PDHR"));
            assert_eq!(normalize("k7qx-m2pd"), None, "8 symbols");
            assert_eq!(normalize("OOOOO-OOOOO"), None, "O is not a symbol");
            assert_eq!(normalize("K7QXM-2PDHRÉ"), None);
            assert_eq!(ALPHABET.len(), 32);
            assert!(!ALPHABET.contains(['0', 'O', '1', 'I']));
        }
    }
}
