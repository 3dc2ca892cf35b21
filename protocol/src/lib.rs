//! The ticksync wire protocol.
//!
//! This crate is pure: message types ([`ClientMessage`], [`ServerMessage`]), the codec
//! ([`codec`], the only place that knows bincode's settings), quantization helpers
//! ([`quantize`]) and the limits every peer enforces ([`limits`]). It does no I/O and has
//! no clock, so the server, the bots and any test can share it, and `PROTOCOL.md` at the
//! repository root documents the same bytes for clients in other languages.
//!
//! One WebSocket binary message carries exactly one encoded message. Every message starts
//! with a one-byte tag (its variant index) followed by its fields in order.
//!
//! Game state (protocol 2, beside the messages above until the server switches): a game
//! describes its entities, lobby and private state, input, messages and events in a
//! [`schema::Schema`] (declared with the `ticksync-derive` macros re-exported here);
//! [`state`] quantizes them into rows and encodes snapshots, deltas, inputs, messages
//! and events by that schema, bit-packed ([`bits`]).

// The derives name `::ticksync_protocol`; let them work inside this crate too.
extern crate self as ticksync_protocol;

pub mod bits;
pub mod codec;
pub mod limits;
mod messages;
pub mod quantize;
pub mod schema;
pub mod state;

pub use codec::{CodecError, decode_client, decode_server, encode_client, encode_server};
pub use messages::*;
pub use ticksync_derive::{Messages, State, StateEnum};

/// Version of the wire protocol. A client whose `Hello` carries another version is
/// refused with [`ErrorCode::VersionMismatch`] and close code [`close::VERSION_MISMATCH`].
pub const PROTOCOL_VERSION: u16 = 1;

/// WebSocket close codes the server uses (RFC 6455 codes and ticksync's 4000-range codes).
pub mod close {
    /// The session ended normally (the client closed, or left after an error it could fix).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the protocol: an undecodable message, or one not valid now.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The client sent a text frame; ticksync speaks binary frames only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A policy was violated (rate limits, origin, authentication).
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message was larger than [`crate::limits::MAX_CLIENT_MESSAGE_BYTES`].
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server hit an internal error.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The server is at its connection cap; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The client's protocol version is not the server's.
    pub const VERSION_MISMATCH: u16 = 4001;
    /// The client sent no `Hello` in time after connecting.
    pub const HELLO_TIMEOUT: u16 = 4002;
    /// The client sent nothing for too long.
    pub const IDLE_TIMEOUT: u16 = 4003;
    /// The client did not read what the server sent for too long.
    pub const SLOW_CONSUMER: u16 = 4004;
    /// Another connection resumed this session with its token.
    pub const REPLACED: u16 = 4005;
    /// An operator removed the player.
    pub const KICKED: u16 = 4006;
}
