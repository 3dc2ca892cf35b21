//! The Game API (protocol 2): what a game author implements, and the adapter the lobby
//! drives.
//!
//! A game declares its replicated types with the derives of `ticksync_protocol`
//! (`#[derive(State)]`, `#[derive(Messages)]`, `#[derive(StateEnum)]`) and implements
//! [`Game`]: hooks for players joining, leaving, resuming and sending messages, a
//! deterministic [`Game::step`], and [`Game::write`], which writes the state every tick.
//! The server does everything else: sessions, lobbies, ticks, input validation, the
//! schema every client receives, snapshots (encoded once per tick for what everyone
//! sees), deltas, events in order with the snapshots.
//!
//! ```text
//!  GameFactory::create(spec) ──► Box<dyn Sim> (a GameSim<G>) owned by the lobby task
//!     every tick:  sim.input(seat, newest input)   (clamped by the schema's ranges)
//!                  sim.step(tick, dt)              -> G::step(ctx, inputs, tick, dt)
//!                  sim.write(&mut state)           -> G::write(writer)
//!                  sim.take_output(&mut output)    events, match end, close
//! ```
//!
//! - [`Game`]: the typed trait. Its associated types are the game's entity kinds (an
//!   enum with one variant per kind), lobby-wide state, per-player private state, input,
//!   client-to-game messages and game-to-client events.
//! - [`Ctx`]: what a hook may do besides changing the game's own fields: spawn and
//!   despawn entities (the server allocates ids, never reused in a lobby), send events
//!   to one player or to everyone, end the match with results, close the lobby.
//! - [`Writer`]: how [`Game::write`] describes the state of a tick: the lobby row, each
//!   player's private row, and every entity with its kind, optional controlling player
//!   and [`Visibility`] (fog of war).
//! - [`Sim`]: the object-safe form the lobby holds (`Box<dyn Sim>`); [`GameSim`] makes
//!   one of any [`Game`], and runs it without a runtime in unit tests.
//! - [`GameFactory`]: makes each lobby's game from its [`LobbySpec`]; [`factory`] builds
//!   one from a closure and validates the game's schema (a declaration mistake is a
//!   start-up error, not a surprise on the wire).
//!
//! A game is deterministic: its hooks see only their arguments (inputs, the tick, dt;
//! no clock, no I/O, no randomness but what the game seeds itself), so it replays
//! exactly and is tested by stepping a [`GameSim`].

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
pub use ticksync_protocol::GameOptions;
pub use ticksync_protocol::schema::NoMessages;
use ticksync_protocol::schema::{Fields, Messages, Schema, SchemaError};
use ticksync_protocol::state::io::{Decoded, DecodedInput, encode_event};
pub use ticksync_protocol::state::{Button, PlayerRef, Visibility};
use ticksync_protocol::state::{Codec, Row, State, StateError};

/// An entity's id: allocated by the server ([`Ctx::spawn`]), unique and never reused
/// within a lobby. Ids start at 1 and increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(u32);

impl EntityId {
    /// The id as it goes on the wire.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Why a player left ([`Game::on_leave`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// The player left on purpose (`LeaveLobby`, or closed its connection with a
    /// goodbye), or the server closed its connection (an operator's kick, a bad message,
    /// a flood).
    Left,
    /// The player's connection dropped (or timed out writing or idling) and it did not
    /// come back within the resume grace.
    Dropped,
    /// The lobby removed the player: too far behind to follow it (its events' queue
    /// overflowed).
    Kicked,
}

/// Who receives an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every player in the lobby.
    Everyone,
    /// One player (dropped if that seat is empty).
    Player(PlayerRef),
}

/// One player's place in a match's results ([`Ctx::end_match`]). The server adds the
/// player's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The player.
    pub player: PlayerRef,
    /// Their score.
    pub score: i32,
    /// Their place: 1 for the winner; equal scores may share a place.
    pub place: u16,
}

/// Standings ranked by score, highest first; equal scores share a place (1, 1, 3), and
/// ties are listed by seat.
pub fn rank_by_score(scores: impl IntoIterator<Item = (PlayerRef, i32)>) -> Vec<Standing> {
    let mut scores: Vec<(PlayerRef, i32)> = scores.into_iter().collect();
    scores.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<Standing> = Vec::with_capacity(scores.len());
    for (i, &(player, score)) in scores.iter().enumerate() {
        let place = match out.last() {
            Some(prev) if prev.score == score => prev.place,
            _ => u16::try_from(i + 1).unwrap_or(u16::MAX),
        };
        out.push(Standing {
            player,
            score,
            place,
        });
    }
    out
}

/// The end of a match ([`Ctx::end_match`]): every player receives `MatchEnded` with the
/// summary and the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchEnd {
    /// A line for people ("Red wins 3 to 1").
    pub summary: String,
    /// Every player's standing.
    pub results: Vec<Standing>,
}

/// One player's input for a tick, as [`Game::step`] sees it.
///
/// `input` is the newest input the server received from the player (continuous
/// controls: the newest wins; a player keeps its last input until a newer one arrives,
/// and is idle, the input's default, while away). Buttons are never lost: a
/// [`Button`] carries a wrapping press counter, and [`PlayerInput::presses`] counts the
/// presses between the input applied at the previous step and this one, however many
/// inputs arrived in between (up to 15 per tick tell apart).
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerInput<I> {
    /// Whose input.
    pub player: PlayerRef,
    /// The input's sequence number (acknowledged in this player's snapshots); 0 before
    /// the first one.
    pub seq: u32,
    /// The client's tick when it sampled the input.
    pub client_tick: u32,
    /// The input, validated and clamped by the schema's ranges.
    pub input: I,
    /// Whether `input` arrived since the previous step (false: the same as last tick).
    pub fresh: bool,
    /// The input applied at the previous step: the baseline of the press counters.
    previous: I,
}

impl<I> PlayerInput<I> {
    /// Presses of the button `button` picks out of the input, since the previous step
    /// (0 when no new input arrived): `players[i].presses(|i| i.fire)`.
    pub fn presses(&self, button: impl Fn(&I) -> Button) -> u8 {
        button(&self.input).presses_since(button(&self.previous))
    }

    /// Whether the button was pressed at least once since the previous step.
    pub fn pressed(&self, button: impl Fn(&I) -> Button) -> bool {
        self.presses(button) > 0
    }
}

/// The rules of one game: implement this, declare the associated types with the
/// derives, and hand [`factory`] a closure that makes one per lobby.
///
/// The lobby's tick task owns the value; nothing else touches it, so it needs no locks.
/// Every hook runs on the tick task: keep them short (a tick is 33 ms at 30 Hz for the
/// whole lobby). A panic in a hook ends only this lobby.
pub trait Game: Send + 'static {
    /// The game's name in the schema (ASCII letters, digits, `_`).
    const NAME: &'static str;
    /// The game's name for people (`/api/game`'s `title`, which a page shows before
    /// joining). `None`, the default: [`title_from_name`] of [`Game::NAME`].
    const TITLE: Option<&'static str> = None;

    /// The entity kinds: an enum with one variant per kind, each with the kind's fields
    /// (`#[derive(Messages)]`; `#[state(owner_only)]` on a field sends it only to the
    /// entity's controlling player). The variant index is the kind's wire number.
    type Entity: Messages;
    /// Lobby-wide state, seen by every player (match phase, timer, scores):
    /// `#[derive(State)]`, or `()` for none.
    type Lobby: Fields;
    /// Per-player private state, sent only to that player (ammo, a hand of cards):
    /// `#[derive(State)]`, or `()` for none.
    type Private: Fields;
    /// A player's input (`#[derive(State)]`): the server clamps every field to its
    /// declared range before the game sees it; [`Button`] fields count presses. The
    /// default is the idle input (before the first one, and while the player is away).
    type Input: Fields + Default + Clone + Send;
    /// Client-to-game messages (`#[derive(Messages)]`), or [`NoMessages`].
    type Message: Messages;
    /// Game-to-client events (`#[derive(Messages)]`), or [`NoMessages`].
    type Event: Messages + Send;

    /// A player asks to join with its display name and join options (from `JoinLobby`
    /// or `QuickJoin`). Return `Err(reason)` to refuse: the client receives an
    /// `Error { code: JoinRefused, message: reason }` and takes no seat. On `Ok`, set the
    /// player up (spawn its entity with [`Ctx::spawn`]). The default accepts everyone
    /// and sets nothing up.
    fn on_join(
        &mut self,
        ctx: &mut Ctx<'_, Self::Event>,
        player: PlayerRef,
        name: &str,
        options: &GameOptions,
    ) -> Result<(), String> {
        let _ = (ctx, player, name, options);
        Ok(())
    }

    /// A player is gone for good ([`LeaveReason`]): remove what is theirs. Its seat may
    /// be given to another player afterwards. The default does nothing.
    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self::Event>, player: PlayerRef, reason: LeaveReason) {
        let _ = (ctx, player, reason);
    }

    /// A player whose connection dropped came back within the resume grace: same seat,
    /// same entities. The default does nothing (the player was idle meanwhile).
    fn on_resume(&mut self, ctx: &mut Ctx<'_, Self::Event>, player: PlayerRef) {
        let _ = (ctx, player);
    }

    /// A player sent a message (validated against the schema, within the size and rate
    /// limits). Called before the tick's step: players in seat order, each player's messages
    /// in the order they arrived. The default ignores it.
    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, Self::Event>,
        player: PlayerRef,
        message: Self::Message,
    ) {
        let _ = (ctx, player, message);
    }

    /// Advances the world by one tick of `dt` seconds. `inputs` holds one entry per
    /// seated player, ascending seats. Deterministic: use only the arguments and the
    /// game's own state.
    fn step(
        &mut self,
        ctx: &mut Ctx<'_, Self::Event>,
        inputs: &[PlayerInput<Self::Input>],
        tick: u32,
        dt: f32,
    );

    /// Writes the state of this tick: the lobby row, each player's private row and every
    /// entity that exists (spawned and not despawned). What is not written is not in the
    /// snapshot: an entity the game leaves out disappears for the clients.
    fn write(&self, out: &mut Writer<'_, Self>);
}

/// Where the hooks' effects go; kept by [`GameSim`] between hooks.
#[derive(Debug)]
struct Effects<E> {
    /// The tick being (or about to be) simulated: the tick of events sent now.
    tick: u32,
    /// The next entity id to hand out.
    next_id: u32,
    /// Ids spawned and not despawned, ascending.
    live: Vec<u32>,
    /// Events not yet taken by the lobby, with the tick they were sent at.
    events: Vec<(u32, Audience, E)>,
    /// A match end not yet taken.
    ended: Option<MatchEnd>,
    /// The lobby should close, for this reason.
    close: Option<String>,
    /// Seated players, ascending.
    players: Vec<PlayerRef>,
}

/// What a hook may do: spawn and despawn entities, send events, end the match, close the
/// lobby. `E` is the game's event type.
#[derive(Debug)]
pub struct Ctx<'a, E> {
    fx: &'a mut Effects<E>,
}

impl<E> Ctx<'_, E> {
    /// The tick being simulated (in `on_join` and the other hooks between ticks: the
    /// next tick to be simulated).
    pub fn tick(&self) -> u32 {
        self.fx.tick
    }

    /// The seated players (connected or away), ascending seats. In `on_join`, without
    /// the joining player; in `on_leave`, still with the leaving one.
    pub fn players(&self) -> &[PlayerRef] {
        &self.fx.players
    }

    /// A new entity id, never handed out before in this lobby. Write the entity in
    /// [`Game::write`] from now on.
    ///
    /// # Panics
    /// After 2^32 - 1 ids in one lobby (which ends only that lobby).
    pub fn spawn(&mut self) -> EntityId {
        let id = self.fx.next_id;
        self.fx.next_id = id
            .checked_add(1)
            .unwrap_or_else(|| panic!("entity ids exhausted in this lobby"));
        self.fx.live.push(id);
        EntityId(id)
    }

    /// Ends entity `id`: clients see it removed in the next snapshot. False if it was not
    /// alive.
    pub fn despawn(&mut self, id: EntityId) -> bool {
        match self.fx.live.binary_search(&id.0) {
            Ok(at) => {
                self.fx.live.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `id` is alive (spawned, not despawned).
    pub fn is_alive(&self, id: EntityId) -> bool {
        self.fx.live.binary_search(&id.0).is_ok()
    }

    /// Sends `event` to one player: reliable, in order with the snapshots (it arrives
    /// before the snapshot of this tick).
    pub fn send(&mut self, to: PlayerRef, event: E) {
        self.fx
            .events
            .push((self.fx.tick, Audience::Player(to), event));
    }

    /// Sends `event` to every player, like [`Ctx::send`].
    pub fn broadcast(&mut self, event: E) {
        self.fx
            .events
            .push((self.fx.tick, Audience::Everyone, event));
    }

    /// Ends the match: every player receives `MatchEnded` with `summary` and `results`
    /// (after this tick's events). The lobby goes on (a new round may start) unless the
    /// game also calls [`Ctx::close_lobby`].
    pub fn end_match(&mut self, summary: impl Into<String>, results: Vec<Standing>) {
        self.fx.ended = Some(MatchEnd {
            summary: summary.into(),
            results,
        });
    }

    /// Closes the lobby after this tick: every player receives `Left { MatchEnded }`
    /// (after the match results, if any) and the lobby is gone.
    pub fn close_lobby(&mut self, reason: impl Into<String>) {
        self.fx.close = Some(reason.into());
    }
}

/// How [`Game::write`] describes a tick's state. Values are quantized as the schema
/// declares as they are written.
#[derive(Debug)]
pub struct Writer<'a, G: Game + ?Sized> {
    codec: &'a Codec,
    state: &'a mut State,
    live: &'a [u32],
    /// Where in `live` the next id is looked for first: games write their entities in
    /// id order, most of them, so the check is one comparison, not a search.
    next_live: usize,
    /// Entities written that were not alive (a bug in the game); skipped.
    stale: u32,
    _game: PhantomData<fn() -> G>,
}

impl<G: Game + ?Sized> Writer<'_, G> {
    /// Sets the lobby-wide state.
    pub fn lobby(&mut self, value: &G::Lobby) {
        self.state.set_lobby(self.codec, value);
    }

    /// Sets `player`'s private state (a seat outside the lobby is ignored).
    pub fn private(&mut self, player: PlayerRef, value: &G::Private) {
        let _ = self.state.set_private(self.codec, player, value);
    }

    /// Writes entity `id`, seen by everyone and controlled by nobody.
    pub fn entity(&mut self, id: EntityId, value: &G::Entity) {
        self.entity_with(id, PlayerRef::NONE, Visibility::Everyone, value);
    }

    /// Writes entity `id`, seen by everyone and controlled by `player` (whose client
    /// predicts it and receives its `owner_only` fields).
    pub fn controlled(&mut self, id: EntityId, player: PlayerRef, value: &G::Entity) {
        self.entity_with(id, player, Visibility::Everyone, value);
    }

    /// Writes entity `id` with its controlling player (or [`PlayerRef::NONE`]) and who
    /// sees it: an entity hidden from a player never reaches that player's connection.
    /// Entities seen by everyone are encoded once per tick for the whole lobby; the
    /// others go in each viewer's own part of the snapshot.
    pub fn entity_with(
        &mut self,
        id: EntityId,
        controlled_by: PlayerRef,
        visibility: Visibility,
        value: &G::Entity,
    ) {
        let at = match self.live.get(self.next_live) {
            Some(&next) if next == id.0 => Ok(self.next_live),
            _ => self.live.binary_search(&id.0),
        };
        let Ok(at) = at else {
            self.stale += 1;
            return;
        };
        self.next_live = at + 1;
        let _ = self
            .state
            .push_entity_of(self.codec, id.0, controlled_by, visibility, value);
    }
}

/// Per-seat input bookkeeping of a [`GameSim`].
#[derive(Debug, Clone)]
struct SeatInput<I> {
    seq: u32,
    client_tick: u32,
    current: I,
    previous: I,
    fresh: bool,
    /// The next input sets the press baseline (after a resume: the client may count
    /// presses from anywhere).
    rebase: bool,
}

impl<I: Default> SeatInput<I> {
    fn new() -> Self {
        Self {
            seq: 0,
            client_tick: 0,
            current: I::default(),
            previous: I::default(),
            fresh: false,
            rebase: false,
        }
    }
}

/// What the hooks produced since the lobby last asked ([`Sim::take_output`]).
#[derive(Debug, Default)]
pub struct Output {
    /// Event messages (tag, tick, type, fields), each encoded once, in order.
    pub events: Vec<(Audience, Bytes)>,
    /// The match ended.
    pub ended: Option<MatchEnd>,
    /// The game closed the lobby, for this reason.
    pub close: Option<String>,
}

impl Output {
    /// Empties it, keeping its buffers.
    pub fn clear(&mut self) {
        self.events.clear();
        self.ended = None;
        self.close = None;
    }
}

/// A game as the lobby task drives it: object-safe, so a lobby holds a `Box<dyn Sim>`
/// whatever the game. [`GameSim`] is the implementation for every [`Game`]; the lobby
/// calls, each tick, [`Sim::input`] for every seat with a new input, [`Sim::step`],
/// [`Sim::write`] and [`Sim::take_output`].
pub trait Sim: Send {
    /// The game's schema compiled for this lobby.
    fn codec(&self) -> &Arc<Codec>;
    /// A player asks to join ([`Game::on_join`]); `Err(reason)` refuses it.
    fn join(&mut self, player: PlayerRef, name: &str, options: &GameOptions) -> Result<(), String>;
    /// A player left for good ([`Game::on_leave`]).
    fn leave(&mut self, player: PlayerRef, reason: LeaveReason);
    /// A player's connection dropped: it keeps its seat, idle (the default input), until
    /// it resumes or leaves.
    fn away(&mut self, player: PlayerRef);
    /// A player came back ([`Game::on_resume`]).
    fn resume(&mut self, player: PlayerRef);
    /// The newest input of a player this tick, decoded by the schema (older ones are the
    /// lobby's to drop).
    fn input(&mut self, player: PlayerRef, input: &DecodedInput);
    /// A message of a player, decoded by the schema ([`Game::on_message`]).
    fn message(&mut self, player: PlayerRef, message: &Decoded);
    /// Steps the game ([`Game::step`]).
    fn step(&mut self, tick: u32, dt: f32);
    /// Builds the state of `tick` into `state` ([`Game::write`]).
    fn write(&mut self, tick: u32, state: &mut State) -> Result<(), StateError>;
    /// Moves what the hooks produced into `out` (cleared first).
    fn take_output(&mut self, out: &mut Output);
    /// The newest input sequence of a player (what its snapshots acknowledge).
    fn input_seq(&self, player: PlayerRef) -> u32;
}

/// What a new lobby is created with (`CreateLobby`, or a quick join's new lobby).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbySpec {
    /// The lobby's name.
    pub name: String,
    /// Its player cap: seats are 1 to `max_players`.
    pub max_players: u16,
    /// Whether it is private.
    pub private: bool,
    /// The creator's game options (map, mode...), checked against the limits.
    pub options: GameOptions,
}

impl LobbySpec {
    /// A public lobby without options (tests and tools).
    pub fn new(name: impl Into<String>, max_players: u16) -> Self {
        Self {
            name: name.into(),
            max_players,
            private: false,
            options: GameOptions::none(),
        }
    }
}

/// The schema of `G`, built from its types and validated.
pub fn schema_of<G: Game>() -> Result<Schema, SchemaError> {
    let mut builder = Schema::builder(G::NAME);
    for kind in G::Entity::types()? {
        builder = builder.entity_fields(kind.name, kind.fields);
    }
    builder
        .lobby::<G::Lobby>()
        .private::<G::Private>()
        .input::<G::Input>()
        .messages::<G::Message>()
        .events::<G::Event>()
        .build()
}

/// Any [`Game`] as a [`Sim`], and a runtime-free harness for a game's unit tests: join
/// players, give inputs, step, look at the state and the events.
#[derive(Debug)]
pub struct GameSim<G: Game> {
    game: G,
    codec: Arc<Codec>,
    fx: Effects<G::Event>,
    /// Indexed by seat - 1.
    seats: Vec<Option<SeatInput<G::Input>>>,
    /// The inputs handed to `step`, reused.
    inputs: Vec<PlayerInput<G::Input>>,
    /// Entities written that were not alive, in all (a game bug; see `Writer`).
    stale_writes: u64,
}

impl<G: Game> GameSim<G> {
    /// `game` running in a lobby of `max_players` seats, with the schema of its types.
    pub fn new(game: G, max_players: u16) -> Result<Self, SchemaError> {
        let codec = Codec::new(schema_of::<G>()?, max_players)?;
        Ok(Self::with_codec(game, Arc::new(codec)))
    }

    /// `game` with a schema already compiled (by [`schema_of`]) for its lobby.
    pub fn with_codec(game: G, codec: Arc<Codec>) -> Self {
        let seats = (0..codec.max_players()).map(|_| None).collect();
        Self {
            game,
            codec,
            fx: Effects {
                tick: 0,
                next_id: 1,
                live: Vec::new(),
                events: Vec::new(),
                ended: None,
                close: None,
                players: Vec::new(),
            },
            seats,
            inputs: Vec::new(),
            stale_writes: 0,
        }
    }

    /// The game.
    pub fn game(&self) -> &G {
        &self.game
    }

    /// The game, mutably (tests: put things where you want them).
    pub fn game_mut(&mut self) -> &mut G {
        &mut self.game
    }

    /// Runs a hook with a context.
    fn with_ctx<R>(&mut self, hook: impl FnOnce(&mut G, &mut Ctx<'_, G::Event>) -> R) -> R {
        let mut ctx = Ctx { fx: &mut self.fx };
        hook(&mut self.game, &mut ctx)
    }

    fn seat_mut(&mut self, player: PlayerRef) -> Option<&mut SeatInput<G::Input>> {
        let i = usize::from(player.0).checked_sub(1)?;
        self.seats.get_mut(i)?.as_mut()
    }

    /// Gives a player a typed input, quantized as the schema declares (what the server
    /// does with the bytes a client sends).
    pub fn push_input(&mut self, player: PlayerRef, seq: u32, client_tick: u32, input: &G::Input) {
        let mut row = Row::default();
        row.set(self.codec.input_row(), input);
        let input = row.get::<G::Input>(self.codec.input_row());
        self.set_input(player, seq, client_tick, input);
    }

    fn set_input(&mut self, player: PlayerRef, seq: u32, client_tick: u32, input: G::Input) {
        let Some(seat) = self.seat_mut(player) else {
            return;
        };
        if seat.rebase {
            seat.previous = input.clone();
            seat.rebase = false;
        }
        seat.seq = seq;
        seat.client_tick = client_tick;
        seat.current = input;
        seat.fresh = true;
    }

    /// Takes the events sent since the last call, typed (tests).
    pub fn take_events(&mut self) -> Vec<(Audience, G::Event)> {
        self.fx.events.drain(..).map(|(_, to, e)| (to, e)).collect()
    }

    /// Takes the match end, if the game ended its match since the last call (tests).
    pub fn take_match_end(&mut self) -> Option<MatchEnd> {
        self.fx.ended.take()
    }

    /// Whether the game closed its lobby, and why.
    pub fn close_requested(&self) -> Option<&str> {
        self.fx.close.as_deref()
    }

    /// The live entity ids, ascending.
    pub fn live_entities(&self) -> impl Iterator<Item = EntityId> + '_ {
        self.fx.live.iter().map(|&id| EntityId(id))
    }

    /// The state the game writes for `tick`, built fresh (tests; the lobby reuses one).
    pub fn state(&mut self, tick: u32) -> Result<State, StateError> {
        let mut state = State::new(&self.codec);
        self.write(tick, &mut state)?;
        Ok(state)
    }

    /// Entities the game wrote without their being alive, so far (each one skipped).
    pub fn stale_writes(&self) -> u64 {
        self.stale_writes
    }
}

impl<G: Game> Sim for GameSim<G> {
    fn codec(&self) -> &Arc<Codec> {
        &self.codec
    }

    fn join(&mut self, player: PlayerRef, name: &str, options: &GameOptions) -> Result<(), String> {
        let Some(i) = usize::from(player.0).checked_sub(1) else {
            return Err("no such seat".into());
        };
        if self.seats.get(i).is_none_or(Option::is_some) {
            return Err("the seat is taken".into());
        }
        self.with_ctx(|game, ctx| game.on_join(ctx, player, name, options))?;
        self.seats[i] = Some(SeatInput::new());
        if let Err(at) = self.fx.players.binary_search(&player) {
            self.fx.players.insert(at, player);
        }
        Ok(())
    }

    fn leave(&mut self, player: PlayerRef, reason: LeaveReason) {
        if self.seat_mut(player).is_none() {
            return;
        }
        self.with_ctx(|game, ctx| game.on_leave(ctx, player, reason));
        if let Some(slot) = usize::from(player.0)
            .checked_sub(1)
            .and_then(|i| self.seats.get_mut(i))
        {
            *slot = None;
        }
        self.fx.players.retain(|&p| p != player);
    }

    fn away(&mut self, player: PlayerRef) {
        if let Some(seat) = self.seat_mut(player) {
            // Idle while away; the buttons keep their counters (no press is invented).
            let idle = G::Input::default();
            seat.previous = idle.clone();
            seat.current = idle;
            seat.fresh = false;
        }
    }

    fn resume(&mut self, player: PlayerRef) {
        let Some(seat) = self.seat_mut(player) else {
            return;
        };
        // The new connection's client counts inputs and presses afresh.
        seat.seq = 0;
        seat.rebase = true;
        self.with_ctx(|game, ctx| game.on_resume(ctx, player));
    }

    fn input(&mut self, player: PlayerRef, input: &DecodedInput) {
        let typed = input.row.get::<G::Input>(self.codec.input_row());
        self.set_input(player, input.seq, input.client_tick, typed);
    }

    fn message(&mut self, player: PlayerRef, message: &Decoded) {
        if self.seat_mut(player).is_none() {
            return;
        }
        let Some(row) = self.codec.message_row(message.index) else {
            return;
        };
        if let Some(typed) = message.get::<G::Message>(row) {
            self.with_ctx(|game, ctx| game.on_message(ctx, player, typed));
        }
    }

    fn step(&mut self, tick: u32, dt: f32) {
        self.fx.tick = tick;
        let mut inputs = std::mem::take(&mut self.inputs);
        inputs.clear();
        for (i, seat) in self.seats.iter().enumerate() {
            let Some(seat) = seat else { continue };
            inputs.push(PlayerInput {
                player: PlayerRef(u16::try_from(i + 1).unwrap_or(u16::MAX)),
                seq: seat.seq,
                client_tick: seat.client_tick,
                input: seat.current.clone(),
                fresh: seat.fresh,
                previous: seat.previous.clone(),
            });
        }
        self.with_ctx(|game, ctx| game.step(ctx, &inputs, tick, dt));
        self.inputs = inputs;
        for seat in self.seats.iter_mut().flatten() {
            if seat.fresh {
                seat.previous = seat.current.clone();
                seat.fresh = false;
            }
        }
        self.fx.tick = tick.wrapping_add(1);
    }

    fn write(&mut self, tick: u32, state: &mut State) -> Result<(), StateError> {
        state.begin(&self.codec, tick);
        let mut writer = Writer::<G> {
            codec: &self.codec,
            state,
            live: &self.fx.live,
            next_live: 0,
            stale: 0,
            _game: PhantomData,
        };
        self.game.write(&mut writer);
        let stale = writer.stale;
        if stale > 0 {
            if self.stale_writes == 0 {
                tracing::warn!(
                    game = G::NAME,
                    "the game wrote entities it never spawned or already despawned; skipped"
                );
            }
            self.stale_writes += u64::from(stale);
        }
        state.finish(&self.codec)
    }

    fn take_output(&mut self, out: &mut Output) {
        out.clear();
        let mut bytes = Vec::new();
        for (tick, audience, event) in self.fx.events.drain(..) {
            bytes.clear();
            if encode_event(&self.codec, tick, &event, &mut bytes) {
                out.events.push((audience, Bytes::copy_from_slice(&bytes)));
            }
        }
        out.ended = self.fx.ended.take();
        out.close = self.fx.close.take();
    }

    fn input_seq(&self, player: PlayerRef) -> u32 {
        usize::from(player.0)
            .checked_sub(1)
            .and_then(|i| self.seats.get(i))
            .and_then(Option::as_ref)
            .map_or(0, |s| s.seq)
    }
}

/// Makes the game of each new lobby.
pub trait GameFactory: Send + Sync + 'static {
    /// The game's schema (validated when the factory was made).
    fn schema(&self) -> &Schema;
    /// The game's name for people ([`Game::TITLE`]).
    fn title(&self) -> String;
    /// A new game for the lobby `spec` describes, or why its options are refused (the
    /// creator receives an `InvalidArgument` error with the reason).
    fn create(&self, spec: &LobbySpec) -> Result<Box<dyn Sim>, String>;
}

/// A [`GameFactory`] from a closure that makes a `G` for a lobby.
pub struct Factory<G, F> {
    schema: Schema,
    make: F,
    _game: PhantomData<fn() -> G>,
}

impl<G, F> std::fmt::Debug for Factory<G, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("game", &self.schema.game)
            .finish_non_exhaustive()
    }
}

impl<G, F> GameFactory for Factory<G, F>
where
    G: Game,
    F: Fn(&LobbySpec) -> Result<G, String> + Send + Sync + 'static,
{
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn title(&self) -> String {
        G::TITLE.map_or_else(|| title_from_name(G::NAME), str::to_owned)
    }

    fn create(&self, spec: &LobbySpec) -> Result<Box<dyn Sim>, String> {
        let game = (self.make)(spec)?;
        let codec =
            Codec::new(self.schema.clone(), spec.max_players.max(1)).map_err(|e| e.to_string())?;
        Ok(Box::new(GameSim::with_codec(game, Arc::new(codec))))
    }
}

/// A title from a game's schema name: `_` as spaces, each word capitalised
/// (`king_of_hill` → `King Of Hill`).
pub fn title_from_name(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A factory making each lobby's game with `make`; builds and validates `G`'s schema
/// now, so that a declaration mistake stops the server at start-up with a clear message.
pub fn factory<G, F>(make: F) -> Result<Arc<dyn GameFactory>, SchemaError>
where
    G: Game,
    F: Fn(&LobbySpec) -> Result<G, String> + Send + Sync + 'static,
{
    Ok(Arc::new(Factory {
        schema: schema_of::<G>()?,
        make,
        _game: PhantomData,
    }))
}

#[cfg(test)]
mod tests {
    use ticksync_protocol::state::io::{decode_event, encode_input, encode_message};
    use ticksync_protocol::{Messages, State as DeriveState};

    use super::*;

    #[derive(Messages, Debug, Clone, PartialEq)]
    enum Thing {
        Avatar {
            #[state(range = 0..=100)]
            hp: u8,
            #[state(owner_only, range = 0..=9)]
            ammo: u8,
        },
        Coin,
    }

    #[derive(DeriveState, Debug, Clone, Default, PartialEq)]
    struct Input {
        #[state(range = -1.0..=1.0, precision = 0.01)]
        aim: f32,
        fire: Button,
    }

    #[derive(DeriveState, Debug, Clone, Default, PartialEq)]
    struct Lobby {
        #[state(range = 0..=1000)]
        shots: u16,
    }

    #[derive(Messages, Debug, Clone, PartialEq)]
    enum Msg {
        Chat {
            #[state(max_len = 16)]
            text: String,
        },
    }

    #[derive(Messages, Debug, Clone, PartialEq)]
    enum Event {
        Said {
            who: PlayerRef,
            #[state(max_len = 16)]
            text: String,
        },
        Shot {
            #[state(range = 0..=15)]
            count: u8,
        },
    }

    /// Counts shots (presses), refuses a name, ends the match at 3 shots.
    #[derive(Default)]
    struct Probe {
        shots: u16,
        avatars: Vec<(PlayerRef, EntityId)>,
        coin: Option<EntityId>,
        seen_seqs: Vec<u32>,
    }

    impl Game for Probe {
        const NAME: &'static str = "probe";
        type Entity = Thing;
        type Lobby = Lobby;
        type Private = ();
        type Input = Input;
        type Message = Msg;
        type Event = Event;

        fn on_join(
            &mut self,
            ctx: &mut Ctx<'_, Event>,
            player: PlayerRef,
            name: &str,
            options: &GameOptions,
        ) -> Result<(), String> {
            if name == "mallory" {
                return Err("no mallories".into());
            }
            if options.get("team") == Some("spectator") {
                return Err("no spectators yet".into());
            }
            let id = ctx.spawn();
            self.avatars.push((player, id));
            if self.coin.is_none() {
                self.coin = Some(ctx.spawn());
            }
            Ok(())
        }

        fn on_leave(&mut self, ctx: &mut Ctx<'_, Event>, player: PlayerRef, _: LeaveReason) {
            for &(_, id) in self.avatars.iter().filter(|(p, _)| *p == player) {
                ctx.despawn(id);
            }
            self.avatars.retain(|(p, _)| *p != player);
        }

        fn on_message(&mut self, ctx: &mut Ctx<'_, Event>, player: PlayerRef, message: Msg) {
            let Msg::Chat { text } = message;
            ctx.broadcast(Event::Said { who: player, text });
        }

        fn step(
            &mut self,
            ctx: &mut Ctx<'_, Event>,
            inputs: &[PlayerInput<Input>],
            _tick: u32,
            _dt: f32,
        ) {
            for i in inputs {
                self.seen_seqs.push(i.seq);
                let n = i.presses(|i| i.fire);
                if n > 0 {
                    self.shots += u16::from(n);
                    ctx.send(i.player, Event::Shot { count: n });
                }
            }
            if self.shots >= 3 {
                if let Some(coin) = self.coin.take() {
                    ctx.despawn(coin);
                }
                let scores = self
                    .avatars
                    .iter()
                    .map(|&(p, _)| (p, i32::from(self.shots)));
                ctx.end_match("three shots", rank_by_score(scores));
                ctx.close_lobby("match over");
            }
        }

        fn write(&self, out: &mut Writer<'_, Self>) {
            out.lobby(&Lobby { shots: self.shots });
            for &(p, id) in &self.avatars {
                out.controlled(id, p, &Thing::Avatar { hp: 100, ammo: 3 });
            }
            if let Some(coin) = self.coin {
                out.entity_with(
                    coin,
                    PlayerRef::NONE,
                    Visibility::Only(PlayerRef(1)),
                    &Thing::Coin,
                );
            }
        }
    }

    fn probe() -> GameSim<Probe> {
        GameSim::new(Probe::default(), 4).expect("valid schema")
    }

    fn fire(presses: u8, held: bool) -> Input {
        Input {
            aim: 0.5,
            fire: Button { held, presses },
        }
    }

    #[test]
    fn the_schema_comes_from_the_types() {
        let schema = schema_of::<Probe>().expect("valid");
        assert_eq!(schema.game, "probe");
        let kinds: Vec<&str> = schema.entities.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(kinds, ["Avatar", "Coin"]);
        assert!(schema.entities[0].fields[1].owner_only);
        assert_eq!(schema.lobby.len(), 1);
        assert!(schema.private.is_empty());
        assert_eq!(schema.input.len(), 2);
        assert_eq!(schema.messages.len(), 1);
        assert_eq!(schema.events.len(), 2);
        let f = factory(|_| Ok(Probe::default())).expect("valid");
        assert_eq!(f.schema(), &schema);
        let sim = f.create(&LobbySpec::new("l", 4)).expect("made");
        assert_eq!(sim.codec().max_players(), 4);
        assert_eq!(sim.codec().hash(), schema.hash());
    }

    #[derive(Messages, Debug, Clone, PartialEq)]
    enum BadThing {
        Car {
            // An integer range outside what the type holds: caught at start-up.
            #[state(range = 0..=300)]
            speed: u8,
        },
    }

    struct Bad;

    impl Game for Bad {
        const NAME: &'static str = "bad";
        type Entity = BadThing;
        type Lobby = ();
        type Private = ();
        type Input = Input;
        type Message = NoMessages;
        type Event = NoMessages;
        fn step(&mut self, _: &mut Ctx<'_, NoMessages>, _: &[PlayerInput<Input>], _: u32, _: f32) {}
        fn write(&self, _: &mut Writer<'_, Self>) {}
    }

    #[test]
    fn a_declaration_mistake_is_a_start_up_error() {
        let Err(e) = factory(|_| Ok(Bad)) else {
            panic!("a schema with a mistake was accepted");
        };
        let e = e.to_string();
        assert!(
            e.contains("Car.speed") && e.contains("outside the type's 0..=255"),
            "{e}"
        );
    }

    #[test]
    fn a_refused_join_takes_no_seat_and_gives_the_reason() {
        let mut sim = probe();
        let e = sim.join(PlayerRef(1), "mallory", &GameOptions::none());
        assert_eq!(e, Err("no mallories".into()));
        let opts = GameOptions::none().with("team", "spectator");
        assert_eq!(
            sim.join(PlayerRef(1), "bob", &opts),
            Err("no spectators yet".into())
        );
        assert_eq!(sim.live_entities().count(), 0);
        sim.join(PlayerRef(1), "bob", &GameOptions::none())
            .expect("joins");
        assert_eq!(
            sim.join(PlayerRef(1), "eve", &GameOptions::none()),
            Err("the seat is taken".into())
        );
        assert!(sim.join(PlayerRef(5), "eve", &GameOptions::none()).is_err());
        assert!(sim.join(PlayerRef(0), "eve", &GameOptions::none()).is_err());
    }

    #[test]
    fn a_press_between_two_ticks_counts_once_and_a_burst_applies_the_newest() {
        let mut sim = probe();
        sim.join(PlayerRef(1), "a", &GameOptions::none())
            .expect("joins");
        // Pressed and released before the tick: held is false, the counter says 1.
        sim.push_input(PlayerRef(1), 1, 0, &fire(1, false));
        sim.step(0, 0.1);
        assert_eq!(sim.game().shots, 1);
        // No new input: no press again.
        sim.step(1, 0.1);
        assert_eq!(sim.game().shots, 1);
        // A burst of 12 inputs in one tick, the last two with presses: the newest wins,
        // both presses count.
        for seq in 2..14 {
            let presses = if seq >= 12 { seq - 10 } else { 1 };
            sim.push_input(PlayerRef(1), seq, seq, &fire(presses as u8, false));
        }
        sim.step(2, 0.1);
        assert_eq!(sim.game().shots, 3);
        assert_eq!(sim.game().seen_seqs, [1, 1, 13]);
        assert_eq!(sim.input_seq(PlayerRef(1)), 13);
        let events = sim.take_events();
        assert_eq!(
            events,
            [
                (Audience::Player(PlayerRef(1)), Event::Shot { count: 1 }),
                (Audience::Player(PlayerRef(1)), Event::Shot { count: 2 }),
            ]
        );
        let end = sim.take_match_end().expect("ended");
        assert_eq!(end.summary, "three shots");
        assert_eq!(
            end.results,
            [Standing {
                player: PlayerRef(1),
                score: 3,
                place: 1
            }]
        );
        assert_eq!(sim.close_requested(), Some("match over"));
    }

    #[test]
    fn a_resumed_client_counting_presses_afresh_fires_nothing_by_itself() {
        let mut sim = probe();
        sim.join(PlayerRef(1), "a", &GameOptions::none())
            .expect("joins");
        sim.push_input(PlayerRef(1), 1, 0, &fire(2, true));
        sim.step(0, 0.1);
        assert_eq!(sim.game().shots, 2);
        sim.away(PlayerRef(1));
        sim.step(1, 0.1);
        sim.resume(PlayerRef(1));
        assert_eq!(sim.input_seq(PlayerRef(1)), 0);
        // The new connection's counter starts at 0: no phantom presses.
        sim.push_input(PlayerRef(1), 1, 0, &fire(0, false));
        sim.step(2, 0.1);
        assert_eq!(sim.game().shots, 2);
        sim.push_input(PlayerRef(1), 2, 0, &fire(1, true));
        sim.step(3, 0.1);
        assert_eq!(sim.game().shots, 3);
    }

    #[test]
    fn inputs_messages_and_events_go_through_the_schema() {
        let mut sim = probe();
        sim.join(PlayerRef(2), "a", &GameOptions::none())
            .expect("joins");
        let codec = Arc::clone(sim.codec());
        let mut bytes = Vec::new();
        encode_input(
            &codec,
            7,
            3,
            &Input {
                aim: 9.0,
                fire: Button::default(),
            },
            &mut bytes,
        );
        let decoded = ticksync_protocol::state::io::decode_input(&codec, &bytes).expect("ok");
        assert_eq!(decoded.clamped, 0, "the writer clamps already");
        sim.input(PlayerRef(2), &decoded);
        assert_eq!(sim.input_seq(PlayerRef(2)), 7);
        sim.step(0, 0.1);
        bytes.clear();
        encode_message(&codec, &Msg::Chat { text: "hi".into() }, &mut bytes);
        let m = ticksync_protocol::state::io::decode_message(&codec, &bytes).expect("ok");
        sim.message(PlayerRef(2), &m);
        // A message from an empty seat is dropped.
        sim.message(PlayerRef(3), &m);
        let mut out = Output::default();
        sim.take_output(&mut out);
        assert_eq!(out.events.len(), 1);
        let (to, frame) = &out.events[0];
        assert_eq!(*to, Audience::Everyone);
        let event = decode_event(&codec, frame).expect("decodes");
        assert_eq!(event.tick, 1, "sent between ticks 0 and 1");
        let row = codec.event_row(event.index).expect("type");
        assert_eq!(
            event.get::<Event>(row),
            Some(Event::Said {
                who: PlayerRef(2),
                text: "hi".into()
            })
        );
        assert!(out.ended.is_none() && out.close.is_none());
    }

    #[test]
    fn the_state_has_the_written_entities_with_their_carriage() {
        let mut sim = probe();
        sim.join(PlayerRef(1), "a", &GameOptions::none())
            .expect("joins");
        sim.join(PlayerRef(2), "b", &GameOptions::none())
            .expect("joins");
        let state = sim.state(0).expect("state");
        let e = state.entities();
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].id, e[0].controlled_by), (1, PlayerRef(1)));
        assert_eq!(
            (e[1].id, e[1].kind, e[1].visibility),
            (2, 1, Visibility::Only(PlayerRef(1)))
        );
        assert_eq!((e[2].id, e[2].controlled_by), (3, PlayerRef(2)));
        sim.leave(PlayerRef(1), LeaveReason::Kicked);
        let state = sim.state(1).expect("state");
        let ids: Vec<u32> = state.entities().iter().map(|e| e.id).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(sim.stale_writes(), 0);
    }

    #[test]
    fn ranks_share_places_on_ties() {
        let r = rank_by_score([(PlayerRef(3), 5), (PlayerRef(1), 9), (PlayerRef(2), 5)]);
        let places: Vec<(u16, u16)> = r.iter().map(|s| (s.player.0, s.place)).collect();
        assert_eq!(places, [(1, 1), (2, 2), (3, 2)]);
    }
}
