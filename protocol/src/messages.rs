//! The messages of both directions. Field order is wire order; `PROTOCOL.md` gives the
//! bytes. Adding a variant at the end is compatible; reordering is not.

use bincode::de::{BorrowDecoder, Decoder};
use bincode::enc::Encoder;
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};
use serde::Serialize;

/// A session token: 128 random bits that let a client resume its session.
pub type SessionToken = [u8; 16];

/// A message from a client to the server. Tags 0 to 63 are these control messages
/// (bincode); an input and a game message are game frames, tags
/// [`crate::state::io::INPUT_TAG`] and [`crate::state::io::MESSAGE_TAG`] (64 and 65),
/// encoded by the lobby's schema.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// Tag 0. The first message of every connection.
    Hello {
        /// Must equal the server's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// Display name, 1 to 24 bytes of UTF-8, no control characters.
        name: String,
        /// A token from an earlier `Welcome`, to resume that session.
        resume_token: Option<SessionToken>,
    },
    /// Tag 1. Ask for the public lobbies; answered by `LobbyList`.
    ListLobbies,
    /// Tag 2. Create a lobby and join it; answered by `Joined`.
    CreateLobby {
        /// Lobby name, 1 to 32 bytes of UTF-8.
        name: String,
        /// Player cap, 1 up to the server's `--max-players-per-lobby`.
        max_players: u16,
        /// A private lobby is not listed and is joined by its code.
        private: bool,
        /// The game's creation options (map, mode...), also the creator's join options.
        options: GameOptions,
    },
    /// Tag 3. Join an existing lobby; answered by `Joined` or `Error`.
    JoinLobby {
        /// Which lobby.
        target: JoinTarget,
        /// The join options the game sees (team, class...).
        options: GameOptions,
    },
    /// Tag 4. Join the fullest public lobby that has room, or create one.
    QuickJoin {
        /// The join options (also the creation options of a lobby made for it).
        options: GameOptions,
    },
    /// Tag 5. Leave the current lobby; answered by `Left` (`Requested`), also outside a
    /// lobby.
    LeaveLobby,
    /// Tag 6. Answered at once by `Pong` with the same `client_time`.
    Ping {
        /// Any value the client wants back (typically milliseconds of its own clock).
        client_time: u32,
    },
    /// Tag 7. Session options; may be sent at any time after `Hello`. They belong to the
    /// player's session and are kept across a resume.
    Options {
        /// Snapshots as changes against the previous snapshot this connection received
        /// (true, the default) or always in full (false).
        delta_snapshots: bool,
    },
    /// Tag 8. Cluster mode: take the seat a `Redirect` reserved on this node (after
    /// `Hello`, outside a lobby); answered by `Joined` or `Error` (`ReservationFailed`).
    JoinReserved {
        /// The `reservation` of the `Redirect`, as it came (see `PROTOCOL.md`).
        reservation: String,
    },
}

/// Game options of a `CreateLobby` (the lobby's map, mode...) or of a join: key-value
/// pairs, in bincode a `Vec<(String, String)>` (a varint count, then each key and value).
/// The game reads them; the server only checks the limits
/// ([`crate::limits::check_game_options`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode, Serialize)]
pub struct GameOptions(pub Vec<(String, String)>);

impl GameOptions {
    /// No options.
    pub fn none() -> Self {
        Self::default()
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a pair (builder style, for clients and tests).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Checks the limits ([`crate::limits::check_game_options`]).
    pub fn check(&self) -> Result<(), crate::limits::OptionsProblem> {
        crate::limits::check_game_options(&self.0)
    }
}

/// Which lobby a `JoinLobby` means.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
#[serde(tag = "type", content = "value")]
pub enum JoinTarget {
    /// Tag 0. A public lobby by id.
    Id(u32),
    /// Tag 1. A private lobby by its join code (see [`crate::join_code`]).
    Code(String),
}

/// A message from the server to a client. Tags 0 to 63 are these control messages
/// (bincode); a snapshot and a game event are game frames, tags
/// [`crate::state::SNAPSHOT_TAG`] and [`crate::state::io::EVENT_TAG`] (64 and 65),
/// encoded by the lobby's schema.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// Tag 0. The answer to `Hello`.
    Welcome {
        /// This player's id, unique on the server.
        player_id: u32,
        /// Keep it secret: it resumes this session after a lost connection.
        session_token: SessionToken,
        /// Simulation ticks (and snapshots) per second.
        tick_rate: u16,
        /// The server's protocol version.
        protocol_version: u16,
    },
    /// Tag 1. The public lobbies, fullest first.
    LobbyList {
        /// At most [`crate::limits::MAX_LISTED_LOBBIES`] entries.
        lobbies: Vec<LobbyInfo>,
    },
    /// Tag 2. The player is now in a lobby.
    Joined(Joined),
    /// Tag 3. Another player joined this lobby.
    PlayerJoined(PlayerInfo),
    /// Tag 4. Another player left this lobby.
    PlayerLeft {
        /// Their seat, free now.
        seat: u16,
        /// Their player id.
        player_id: u32,
    },
    /// Tag 5. The answer to `Ping`.
    Pong {
        /// The `client_time` of the ping.
        client_time: u32,
        /// The tick number the lobby's next snapshot will carry (the newest published
        /// snapshot's tick + 1), or 0 outside a lobby.
        server_tick: u32,
    },
    /// Tag 6. Something went wrong; `code` says what.
    Error {
        /// An [`ErrorCode`] value (unknown values must be tolerated).
        code: u16,
        /// A human-readable explanation.
        message: String,
    },
    /// Tag 7. The player is no longer in a lobby.
    Left {
        /// A [`LeftReason`] value.
        reason: u8,
    },
    /// Tag 8. A message from the operators, to be shown to the player.
    Notice {
        /// The text.
        text: String,
    },
    /// Tag 9. The lobby's game ended its match (in order with the snapshots).
    MatchEnded {
        /// A line for people ("Red wins 3 to 1").
        summary: String,
        /// Every player's standing, best first.
        results: Vec<MatchResult>,
    },
    /// Tag 10. Cluster mode: the lobby asked for (or quick-join's pick, or the player of
    /// a resume token) is on another node: connect to `url`, say `Hello`, and send
    /// `JoinReserved { reservation }`. An empty `reservation` answers a `Hello` whose
    /// resume token belongs to that node: say `Hello` there with the same token.
    Redirect {
        /// The other node's WebSocket URL (`ws://` or `wss://`).
        url: String,
        /// The signed, single-use seat reservation (lowercase hex), or empty.
        reservation: String,
    },
}

/// One player's standing in a `MatchEnded`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct MatchResult {
    /// Their seat.
    pub seat: u16,
    /// Their display name.
    pub name: String,
    /// Their score (meaning defined by the game).
    pub score: i32,
    /// Their place, 1 for the winner (equal scores may share one).
    pub place: u16,
}

/// One lobby in a `LobbyList`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct LobbyInfo {
    /// The lobby id, for `JoinLobby`.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Players in it now.
    pub players: u16,
    /// Its cap.
    pub max_players: u16,
}

/// Everything a client needs when it enters a lobby.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Serialize)]
pub struct Joined {
    /// The lobby id.
    pub lobby_id: u32,
    /// The lobby name.
    pub name: String,
    /// The join code, for players to share (private lobbies only).
    pub code: Option<String>,
    /// The lobby's player cap (the width of player references in the game frames).
    pub max_players: u16,
    /// This player's seat, 1 to `max_players` (the `PlayerRef` of its state).
    pub seat: u16,
    /// The lobby's tick when the player joined.
    pub tick: u32,
    /// The game's schema: [`crate::schema::Schema::encode`] bytes.
    pub schema: Vec<u8>,
    /// [`crate::schema::Schema::hash`] of those bytes, little-endian (to cache schemas).
    pub schema_hash: [u8; 8],
    /// Everyone in the lobby, this player included.
    pub players: Vec<PlayerInfo>,
}

/// A player in a lobby.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct PlayerInfo {
    /// Their seat.
    pub seat: u16,
    /// Their player id.
    pub player_id: u32,
    /// Their display name.
    pub name: String,
}

/// Protocol 1's arena entity, kept as the reference the generic state encoder is
/// measured against (benchmarks and the figures test); not on the wire any more. One
/// byte of id.
pub type EntityId = u8;

/// Protocol 1's arena delta of one entity (the reference of the figures test; not on
/// the wire any more): an id, a byte saying which fields follow, and those fields. Positions are sent as the wrapping difference from the baseline (`i16`),
/// velocities and flags as their new values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EntityChange {
    /// The entity.
    pub id: EntityId,
    /// `x` moved by this many steps (wrapping), if set.
    pub dx: Option<i16>,
    /// `y` moved by this many steps (wrapping), if set.
    pub dy: Option<i16>,
    /// The new `vx`, if it changed.
    pub vx: Option<i8>,
    /// The new `vy`, if it changed.
    pub vy: Option<i8>,
    /// The new `flags`, if they changed.
    pub flags: Option<u8>,
}

impl EntityChange {
    /// Bit of the field mask: `dx` follows.
    pub const DX: u8 = 1;
    /// `dy` follows.
    pub const DY: u8 = 2;
    /// `vx` follows.
    pub const VX: u8 = 4;
    /// `vy` follows.
    pub const VY: u8 = 8;
    /// `flags` follows.
    pub const FLAGS: u8 = 16;

    /// The change from `old` to `new` (same id), or None if nothing changed.
    pub fn between(old: &EntityState, new: &EntityState) -> Option<Self> {
        let change = Self {
            id: new.id,
            // Reinterpreting the wrapping difference as i16 is the point.
            dx: (old.x != new.x).then(|| new.x.wrapping_sub(old.x) as i16),
            dy: (old.y != new.y).then(|| new.y.wrapping_sub(old.y) as i16),
            vx: (old.vx != new.vx).then_some(new.vx),
            vy: (old.vy != new.vy).then_some(new.vy),
            flags: (old.flags != new.flags).then_some(new.flags),
        };
        (change.mask() != 0).then_some(change)
    }

    /// The field mask.
    pub fn mask(&self) -> u8 {
        let bit = |present: bool, bit: u8| if present { bit } else { 0 };
        bit(self.dx.is_some(), Self::DX)
            | bit(self.dy.is_some(), Self::DY)
            | bit(self.vx.is_some(), Self::VX)
            | bit(self.vy.is_some(), Self::VY)
            | bit(self.flags.is_some(), Self::FLAGS)
    }

    /// `old` with this change applied.
    pub fn apply(&self, old: &EntityState) -> EntityState {
        EntityState {
            id: old.id,
            flags: self.flags.unwrap_or(old.flags),
            x: self.dx.map_or(old.x, |d| old.x.wrapping_add(d as u16)),
            y: self.dy.map_or(old.y, |d| old.y.wrapping_add(d as u16)),
            vx: self.vx.unwrap_or(old.vx),
            vy: self.vy.unwrap_or(old.vy),
        }
    }
}

// Hand-written: the mask says which fields follow; each is fixed width (positions as
// i16 little-endian, the rest one byte).
impl Encode for EntityChange {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        let mut buf = [0u8; 9];
        buf[0] = self.id;
        buf[1] = self.mask();
        let mut n = 2;
        for d in [self.dx, self.dy].into_iter().flatten() {
            buf[n..n + 2].copy_from_slice(&d.to_le_bytes());
            n += 2;
        }
        for v in [self.vx, self.vy].into_iter().flatten() {
            buf[n] = v.to_le_bytes()[0];
            n += 1;
        }
        if let Some(f) = self.flags {
            buf[n] = f;
            n += 1;
        }
        encoder.writer().write(&buf[..n])
    }
}

impl<C> Decode<C> for EntityChange {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let [id, mask] = <[u8; 2]>::decode(decoder)?;
        if mask == 0 || mask & !0x1f != 0 {
            return Err(DecodeError::Other(
                "an entity change has an invalid field mask",
            ));
        }
        let mut change = EntityChange {
            id,
            ..Default::default()
        };
        if mask & Self::DX != 0 {
            change.dx = Some(i16::from_le_bytes(<[u8; 2]>::decode(decoder)?));
        }
        if mask & Self::DY != 0 {
            change.dy = Some(i16::from_le_bytes(<[u8; 2]>::decode(decoder)?));
        }
        if mask & Self::VX != 0 {
            change.vx = Some(i8::from_le_bytes(<[u8; 1]>::decode(decoder)?));
        }
        if mask & Self::VY != 0 {
            change.vy = Some(i8::from_le_bytes(<[u8; 1]>::decode(decoder)?));
        }
        if mask & Self::FLAGS != 0 {
            change.flags = Some(u8::decode(decoder)?);
        }
        Ok(change)
    }
}

impl<'de, C> BorrowDecode<'de, C> for EntityChange {
    fn borrow_decode<D: BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        Self::decode(decoder)
    }
}

/// Protocol 1's arena entity (the reference of the figures test and the benchmarks; not
/// on the wire any more): 8 bytes, fixed width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EntityState {
    /// The entity id.
    pub id: EntityId,
    /// Game-defined bits (the arena game: bit 0 = this player is "it").
    pub flags: u8,
    /// Position x, quantized over the arena's 0..=1000.
    pub x: u16,
    /// Position y, quantized.
    pub y: u16,
    /// Velocity x, quantized over ±200.
    pub vx: i8,
    /// Velocity y, quantized.
    pub vy: i8,
}

impl EntityState {
    /// Bytes of one entity on the wire.
    pub const WIRE_BYTES: usize = 8;

    fn to_bytes(self) -> [u8; Self::WIRE_BYTES] {
        let [x0, x1] = self.x.to_le_bytes();
        let [y0, y1] = self.y.to_le_bytes();
        [
            self.id,
            self.flags,
            x0,
            x1,
            y0,
            y1,
            self.vx.to_le_bytes()[0],
            self.vy.to_le_bytes()[0],
        ]
    }

    fn from_bytes(b: [u8; Self::WIRE_BYTES]) -> Self {
        Self {
            id: b[0],
            flags: b[1],
            x: u16::from_le_bytes([b[2], b[3]]),
            y: u16::from_le_bytes([b[4], b[5]]),
            vx: i8::from_le_bytes([b[6]]),
            vy: i8::from_le_bytes([b[7]]),
        }
    }
}

// Fixed width on purpose: quantized coordinates spread over the whole u16 range, where
// bincode's varint would spend 3 bytes on most of them.
impl Encode for EntityState {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        encoder.writer().write(&self.to_bytes())
    }
}

impl<C> Decode<C> for EntityState {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let bytes = <[u8; Self::WIRE_BYTES]>::decode(decoder)?;
        Ok(Self::from_bytes(bytes))
    }
}

impl<'de, C> BorrowDecode<'de, C> for EntityState {
    fn borrow_decode<D: BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        Self::decode(decoder)
    }
}

crate::wire_enum! {
    /// Error codes carried by `ServerMessage::Error`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ErrorCode: u16 {
        /// A message could not be decoded.
        BadMessage = 1,
        /// The client's protocol version is not the server's.
        VersionMismatch = 2,
        /// The message is not valid in the session's current state (e.g. Input before joining).
        InvalidState = 3,
        /// No lobby has that id or code.
        LobbyNotFound = 4,
        /// The lobby is at its player cap.
        LobbyFull = 5,
        /// A name was empty, too long or had control characters.
        InvalidName = 6,
        /// A field was out of range (e.g. max players).
        InvalidArgument = 7,
        /// The client sent too much, too fast.
        RateLimited = 8,
        /// The client sent a text frame.
        TextFrame = 9,
        /// A message was over the size limit.
        MessageTooLarge = 10,
        /// The server is at its connection or lobby cap.
        ServerFull = 11,
        /// The lobby closed (its game failed, or an operator closed it).
        LobbyClosed = 12,
        /// The server is shutting down.
        ShuttingDown = 13,
        /// The resume token is unknown or expired.
        ResumeFailed = 14,
        /// The client sent nothing in time.
        Timeout = 15,
        /// An operator removed the player.
        Kicked = 16,
        /// The server failed; not the client's fault.
        Internal = 17,
        /// The server requires a valid join token (`/ws?token=...`).
        Unauthorized = 18,
        /// The game refused the join; the message is the game's reason.
        JoinRefused = 19,
        /// Cluster mode: the request needs another node and the cluster's directory
        /// (Redis) does not answer; local play goes on. Try again shortly.
        ClusterUnavailable = 20,
        /// Cluster mode: the reservation of a `JoinReserved` is malformed, forged, for
        /// another node, expired or unknown, already used, or for another lobby; also any
        /// `JoinReserved` sent to a node not in cluster mode.
        ReservationFailed = 21,
    }
}

impl ErrorCode {
    /// The wire value.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

crate::wire_enum! {
    /// Why a player left a lobby (`ServerMessage::Left`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum LeftReason: u8 {
        /// The player asked to leave (also the answer to a `LeaveLobby` outside a lobby).
        Requested = 0,
        /// The lobby closed.
        LobbyClosed = 1,
        /// The lobby's game failed; the lobby is gone.
        LobbyCrashed = 2,
        /// An operator removed the player from the lobby.
        Kicked = 3,
        /// The game closed the lobby after its match (`MatchEnded` came first).
        MatchEnded = 4,
    }
}

impl LeftReason {
    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl ClientMessage {
    /// The variant names in tag order (index = tag), as the golden vectors file and the
    /// JSON view spell them (`"type"`).
    pub const NAMES: [&'static str; 9] = [
        "Hello",
        "ListLobbies",
        "CreateLobby",
        "JoinLobby",
        "QuickJoin",
        "LeaveLobby",
        "Ping",
        "Options",
        "JoinReserved",
    ];

    /// The variant names in snake_case, in tag order (index = tag): metric labels.
    pub const KIND_NAMES: [&'static str; 9] = [
        "hello",
        "list_lobbies",
        "create_lobby",
        "join_lobby",
        "quick_join",
        "leave_lobby",
        "ping",
        "options",
        "join_reserved",
    ];

    /// The wire tag: the first byte of the encoded message.
    pub fn tag(&self) -> u8 {
        match self {
            ClientMessage::Hello { .. } => 0,
            ClientMessage::ListLobbies => 1,
            ClientMessage::CreateLobby { .. } => 2,
            ClientMessage::JoinLobby { .. } => 3,
            ClientMessage::QuickJoin { .. } => 4,
            ClientMessage::LeaveLobby => 5,
            ClientMessage::Ping { .. } => 6,
            ClientMessage::Options { .. } => 7,
            ClientMessage::JoinReserved { .. } => 8,
        }
    }

    /// The snake_case name of this message's kind (a metric label).
    pub fn kind_name(&self) -> &'static str {
        Self::KIND_NAMES[usize::from(self.tag())]
    }
}

impl JoinTarget {
    /// The variant names in tag order (index = tag).
    pub const NAMES: [&'static str; 2] = ["Id", "Code"];
}

impl ServerMessage {
    /// The variant names in tag order (index = tag), as the golden vectors file and the
    /// JSON view spell them (`"type"`).
    pub const NAMES: [&'static str; 11] = [
        "Welcome",
        "LobbyList",
        "Joined",
        "PlayerJoined",
        "PlayerLeft",
        "Pong",
        "Error",
        "Left",
        "Notice",
        "MatchEnded",
        "Redirect",
    ];

    /// The variant names in snake_case, in tag order (index = tag): metric labels.
    pub const KIND_NAMES: [&'static str; 11] = [
        "welcome",
        "lobby_list",
        "joined",
        "player_joined",
        "player_left",
        "pong",
        "error",
        "left",
        "notice",
        "match_ended",
        "redirect",
    ];

    /// The wire tag: the first byte of the encoded message.
    pub fn tag(&self) -> u8 {
        match self {
            ServerMessage::Welcome { .. } => 0,
            ServerMessage::LobbyList { .. } => 1,
            ServerMessage::Joined(_) => 2,
            ServerMessage::PlayerJoined(_) => 3,
            ServerMessage::PlayerLeft { .. } => 4,
            ServerMessage::Pong { .. } => 5,
            ServerMessage::Error { .. } => 6,
            ServerMessage::Left { .. } => 7,
            ServerMessage::Notice { .. } => 8,
            ServerMessage::MatchEnded { .. } => 9,
            ServerMessage::Redirect { .. } => 10,
        }
    }

    /// The snake_case name of this message's kind (a metric label).
    pub fn kind_name(&self) -> &'static str {
        Self::KIND_NAMES[usize::from(self.tag())]
    }
}

impl ServerMessage {
    /// An `Error` message with `code` and `message` (cut to the text limit).
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        let keep = crate::limits::clip_text(&message).len();
        message.truncate(keep);
        ServerMessage::Error {
            code: code.as_u16(),
            message,
        }
    }
}
