//! A connection's way out: the bytes for its socket, shared by its session and by the
//! tick task of the lobby it plays in.
//!
//! The tick task writes each player's snapshot straight to the socket with one
//! non-blocking `send`: no task wakes up, no channel is crossed, no per-player buffer is
//! kept. The lobby's events (players joining and leaving, scores) take the same way, so
//! they stay in order with the snapshots, and so do the session's own messages (its
//! tungstenite frames pass through [`Conn`]'s `AsyncWrite`). Every writer hands over
//! whole WebSocket frames and writes only when nothing waits before it, so frames never
//! interleave.
//!
//! What the socket does not take at once waits here, and the session finishes the write
//! when the socket has room again (the lobby wakes it):
//! - must-arrive frames (events, the session's messages, the rest of a partly written
//!   frame), in order, up to [`MAX_QUEUED`] bytes; a lobby event beyond that means the
//!   player cannot follow the lobby, and it is dropped from it (close 4004);
//! - at most one snapshot, always after them: a newer snapshot replaces it (latest wins,
//!   counted as a skip). A replacing snapshot is never a delta, since the one it
//!   replaces, its baseline, never reaches the client.
//!
//! Operators' and resumes' requests to the connection (kick, notice, replaced) wait here
//! too, a few at most ([`CONTROL_QUEUE`]), and reach the session before anything else.
//!
//! The session stamps each stay in a lobby with a seat epoch; the tick task's writes carry
//! the epoch of the seat they are for, and a write for a seat the session has left is
//! refused ([`Delivery::Stale`]), which also tells the lobby the player is gone.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::frame::payload_len;

/// Must-arrive bytes a connection may have waiting before a lobby gives up on it.
pub(crate) const MAX_QUEUED: usize = 64 * 1024;
/// Controls a connection may have waiting.
pub(crate) const CONTROL_QUEUE: usize = 8;

/// Something the server asks of a live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// Another connection resumed this player: close with `REPLACED`.
    Replaced,
    /// An operator removed the player.
    Kick(String),
    /// An operator's message to show.
    Notice(String),
}

/// The write side of a socket, usable from any task without `&mut`.
pub(crate) trait RawWrite: Send + Sync {
    /// Writes what the socket takes now; `WouldBlock` if it takes nothing.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes, or registers `cx` to be woken when the socket has room.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Shuts the write direction down (a FIN after what was written).
    fn shutdown(&self);
}

impl RawWrite for OwnedWriteHalf {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        OwnedWriteHalf::try_write(self, buf)
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.as_ref().poll_write_ready(cx))?;
            match OwnedWriteHalf::try_write(self, buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn shutdown(&self) {
        let _ = socket2::SockRef::from(self.as_ref()).shutdown(std::net::Shutdown::Write);
    }
}

/// Any other byte stream (an in-memory pipe in tests): its write half behind a lock.
struct Locked<W>(Mutex<W>);

impl<W> Locked<W> {
    fn lock(&self) -> MutexGuard<'_, W> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: AsyncWrite + Unpin + Send> RawWrite for Locked<W> {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        // A refused write always wakes the session (see `keep`), which polls again with
        // its own waker: the no-op one left here is never the only one registered.
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_write(&mut cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn shutdown(&self) {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(&mut *self.lock()).poll_shutdown(&mut cx);
    }
}

/// What became of a frame a lobby handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// On the socket, whole.
    Written,
    /// Kept for the session to finish writing.
    Kept,
    /// Kept in place of an older snapshot, which the client will never get.
    Replaced,
    /// Not for this connection any more (the player left the seat, or the connection
    /// broke): the lobby should treat the player as away.
    Stale,
    /// The client is too far behind to follow the lobby: the frame was refused and the
    /// session told to close.
    Overflow,
}

/// What the session must do for its outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    /// An operator's or a resume's request.
    Control(Control),
    /// Bytes wait: finish writing them.
    Flush,
    /// The lobby closed and has said `Left`: the player is in no lobby now.
    Left,
    /// The client could not keep up with its lobby and was dropped from it.
    Overflow,
    /// A write failed: the connection is gone.
    Broken,
}

#[derive(Debug, Default)]
struct State {
    /// The seat the lobby's writes must be for; 0: none.
    epoch: u64,
    /// The last epoch handed out.
    epochs: u64,
    /// Whole frames waiting, in order; `written` bytes of the first are on the socket.
    queue: VecDeque<Bytes>,
    written: usize,
    /// Bytes in `queue`.
    queued: usize,
    /// The newest snapshot, behind everything in `queue`.
    snapshot: Option<Bytes>,
    /// Tick of the last snapshot written or kept in this seat: a delta's baseline.
    last_tick: Option<u32>,
    /// A lobby's news for the session.
    signal: Option<Signal>,
    /// Requests for the session, oldest first.
    controls: VecDeque<Control>,
    /// The session, to wake when something is kept or signalled.
    waker: Option<Waker>,
    /// A write failed.
    broken: bool,
}

impl State {
    fn idle(&self) -> bool {
        self.queue.is_empty() && self.snapshot.is_none()
    }

    fn push(&mut self, frame: Bytes) {
        self.queued += frame.len();
        self.queue.push_back(frame);
    }

    /// The snapshot must go before any frame queued after it.
    fn settle_snapshot(&mut self) {
        if let Some(snapshot) = self.snapshot.take() {
            self.push(snapshot);
        }
    }

    fn take_waker(&mut self) -> Option<Waker> {
        self.waker.take()
    }

    /// Writes what waits, with the session's waker registered if the socket is full.
    fn poll_drain(&mut self, raw: &dyn RawWrite, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(front) = self.queue.front() {
                match raw.poll_write(cx, &front[self.written..]) {
                    Poll::Ready(Ok(0)) => {
                        self.broken = true;
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        if self.written == front.len() {
                            self.queued -= front.len();
                            self.written = 0;
                            self.queue.pop_front();
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        self.broken = true;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending => return Poll::Pending,
                }
            } else if let Some(snapshot) = self.snapshot.take() {
                // Once started it must finish: it joins the must-arrive frames.
                self.push(snapshot);
            } else {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// A lobby seat's way to its player's connection.
#[derive(Debug)]
pub(crate) struct Link {
    /// The connection's outbox.
    pub(crate) out: Arc<Outbox>,
    /// The seat epoch the session gave this stay.
    pub(crate) epoch: u64,
}

/// One connection's outgoing side. See the module documentation.
pub(crate) struct Outbox {
    raw: Box<dyn RawWrite>,
    state: Mutex<State>,
    /// Delta snapshots (the default; a client may ask for full ones).
    deltas: AtomicBool,
    /// Where the lobby counts the bytes it writes for the player (set at Hello).
    player_bytes: OnceLock<Arc<AtomicU64>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    fn new(raw: Box<dyn RawWrite>) -> Arc<Self> {
        Arc::new(Self {
            raw,
            state: Mutex::new(State::default()),
            deltas: AtomicBool::new(true),
            player_bytes: OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is completed before anything that could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ---- the session's side ----

    /// Starts a new seat: from now on, only writes stamped with the returned epoch pass.
    pub(crate) fn begin_seat(&self) -> u64 {
        let mut state = self.lock();
        state.epochs += 1;
        state.epoch = state.epochs;
        state.last_tick = None;
        state.signal = None;
        state.epoch
    }

    /// Ends the current seat (if it is `epoch`, or whatever it is with `None`): the lobby
    /// can write nothing more.
    pub(crate) fn end_seat(&self, epoch: Option<u64>) {
        let mut state = self.lock();
        if epoch.is_none_or(|e| e == state.epoch) {
            state.epoch = 0;
        }
    }

    /// Whether the client wants delta snapshots (from the next snapshot on).
    pub(crate) fn set_deltas(&self, on: bool) {
        self.deltas.store(on, Ordering::Relaxed);
    }

    /// Counts the bytes the lobby writes into the player's counter.
    pub(crate) fn count_into(&self, counter: Arc<AtomicU64>) {
        let _ = self.player_bytes.set(counter);
    }

    /// Ready when the session has something to do: write what waits, or hear a lobby's
    /// news.
    pub(crate) fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let mut state = self.lock();
        if let Some(control) = state.controls.pop_front() {
            return Poll::Ready(Signal::Control(control));
        }
        if let Some(signal) = state.signal.take() {
            return Poll::Ready(signal);
        }
        if state.broken {
            return Poll::Ready(Signal::Broken);
        }
        if !state.idle() {
            return Poll::Ready(Signal::Flush);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Writes everything that waits.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().poll_drain(self.raw.as_ref(), cx)
    }

    /// Accepts whole frames from the session's WebSocket (all of `buf`, or nothing while
    /// too much waits).
    fn poll_write_frames(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        if state.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.queued + buf.len() > MAX_QUEUED {
            ready!(state.poll_drain(self.raw.as_ref(), cx))?;
        }
        state.settle_snapshot();
        let mut rest = buf;
        if state.queue.is_empty() {
            match self.raw.poll_write(cx, buf) {
                Poll::Ready(Ok(n)) => rest = &buf[n.min(buf.len())..],
                Poll::Ready(Err(e)) => {
                    state.broken = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {}
            }
        }
        if !rest.is_empty() {
            state.push(Bytes::copy_from_slice(rest));
        }
        Poll::Ready(Ok(buf.len()))
    }

    /// Queues a request for the session; false if too many wait already.
    pub(crate) fn control(&self, control: Control) -> bool {
        let mut state = self.lock();
        if state.controls.len() >= CONTROL_QUEUE {
            return false;
        }
        state.controls.push_back(control);
        wake(state.take_waker(), state);
        true
    }

    /// Shuts the socket's write direction down once the session is done with it.
    pub(crate) fn shutdown(&self) {
        self.end_seat(None);
        self.raw.shutdown();
    }

    // ---- the lobby's side ----

    /// Hands over one snapshot for seat `epoch`, built by `build` into `scratch` from the
    /// tick of the snapshot this connection got last (`None`: build a full one).
    pub(crate) fn send_snapshot(
        &self,
        epoch: u64,
        tick: u32,
        scratch: &mut Vec<u8>,
        build: impl FnOnce(Option<u32>, &mut Vec<u8>),
    ) -> Delivery {
        let mut state = self.lock();
        if state.epoch != epoch || state.broken {
            return Delivery::Stale;
        }
        let replacing = state.snapshot.is_some();
        let previous = state
            .last_tick
            .filter(|_| !replacing && self.deltas.load(Ordering::Relaxed));
        scratch.clear();
        build(previous, scratch);
        state.last_tick = Some(tick);
        self.count(payload_len(scratch));
        if replacing {
            state.snapshot = Some(Bytes::copy_from_slice(scratch));
            return Delivery::Replaced;
        }
        let keep = |state: &mut State| state.snapshot = Some(Bytes::copy_from_slice(scratch));
        if !state.queue.is_empty() {
            keep(&mut state);
            return kept(state);
        }
        self.write_now(state, scratch, keep)
    }

    /// Hands over one must-arrive frame (already framed) for seat `epoch`.
    pub(crate) fn send_event(&self, epoch: u64, frame: &Bytes) -> Delivery {
        let mut state = self.lock();
        if state.epoch != epoch || state.broken {
            return Delivery::Stale;
        }
        self.count(payload_len(frame));
        state.settle_snapshot();
        if !state.queue.is_empty() {
            if state.queued + frame.len() > MAX_QUEUED {
                // Keep only the frame being written (its rest must follow, or the stream
                // is garbled); the close frame goes right after it.
                let keep = usize::from(state.written > 0);
                while state.queue.len() > keep {
                    if let Some(dropped) = state.queue.pop_back() {
                        state.queued -= dropped.len();
                    }
                }
                tell(state, Signal::Overflow);
                return Delivery::Overflow;
            }
            state.push(frame.clone());
            return kept(state);
        }
        self.write_now(state, frame, |state| state.push(frame.clone()))
    }

    /// Writes `frame` straight to the socket (nothing waits before it). What the socket
    /// does not take is kept: the rest of a partly written frame as a must-arrive frame
    /// (it must follow, or the stream is garbled), a frame not started by `keep`.
    fn write_now(
        &self,
        mut state: MutexGuard<'_, State>,
        frame: &[u8],
        keep: impl FnOnce(&mut State),
    ) -> Delivery {
        match self.raw.try_write(frame) {
            Ok(n) if n >= frame.len() => Delivery::Written,
            Ok(n) => {
                state.push(Bytes::copy_from_slice(&frame[n..]));
                kept(state)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                keep(&mut state);
                kept(state)
            }
            Err(_) => {
                state.broken = true;
                wake(state.take_waker(), state);
                Delivery::Stale
            }
        }
    }

    /// The lobby closed, after its last events for seat `epoch`: the session is out of
    /// it.
    pub(crate) fn lobby_left(&self, epoch: u64) {
        let state = self.lock();
        if state.epoch == epoch {
            tell(state, Signal::Left);
        }
    }

    fn count(&self, n: usize) {
        if let Some(counter) = self.player_bytes.get() {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Something was kept for the session to write: wake it.
fn kept(mut state: MutexGuard<'_, State>) -> Delivery {
    wake(state.take_waker(), state);
    Delivery::Kept
}

/// The lobby's news for the session, which ends the seat.
fn tell(mut state: MutexGuard<'_, State>, signal: Signal) {
    state.epoch = 0;
    state.signal = Some(signal);
    wake(state.take_waker(), state);
}

/// Wakes after the lock is released: the woken session may run on another thread.
fn wake(waker: Option<Waker>, state: MutexGuard<'_, State>) {
    drop(state);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// An outbox writing nowhere, for tests of what holds one.
#[cfg(test)]
pub(crate) fn detached() -> Arc<Outbox> {
    Outbox::new(Box::new(Locked(Mutex::new(tokio::io::sink()))))
}

/// A connection as the session's WebSocket sees it: reads from the socket, writes through
/// the outbox.
pub(crate) struct Conn<R> {
    read: R,
    out: Arc<Outbox>,
}

impl<R> Conn<R> {
    /// The outbox, for the session and its lobbies.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.out
    }

    /// The read side alone (the outbox lives on in its `Arc`s).
    #[cfg(feature = "testing")]
    pub(crate) fn into_read(self) -> R {
        self.read
    }
}

/// A TCP connection, split so that the lobby can write while the session reads.
pub(crate) fn tcp(stream: TcpStream) -> Conn<OwnedReadHalf> {
    let (read, write) = stream.into_split();
    Conn {
        read,
        out: Outbox::new(Box::new(write)),
    }
}

/// Any other byte stream.
pub(crate) fn any<S>(stream: S) -> Conn<ReadHalf<S>>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write): (ReadHalf<S>, WriteHalf<S>) = tokio::io::split(stream);
    Conn {
        read,
        out: Outbox::new(Box::new(Locked(Mutex::new(write)))),
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Conn<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for Conn<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.out.poll_write_frames(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.out.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.out.poll_flush(cx))?;
        self.out.shutdown();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{binary_frame, write_binary_header};
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[test]
    fn payload_lengths_skip_the_header() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let mut frame = Vec::new();
            write_binary_header(len, &mut frame);
            frame.resize(frame.len() + len, 0);
            assert_eq!(payload_len(&frame), len);
        }
    }

    #[test]
    fn headers_match_tungstenite() {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![7u8; len];
            let mut ours = Vec::new();
            write_binary_header(len, &mut ours);
            ours.extend_from_slice(&payload);
            let mut theirs = Vec::new();
            Frame::message(payload, OpCode::Data(Data::Binary), true)
                .format(&mut theirs)
                .expect("formats");
            assert_eq!(ours, theirs, "length {len}");
        }
    }

    /// A pipe whose other end reads nothing until told to: the outbox keeps what does not
    /// fit, replaces kept snapshots, and delivers everything in order once the reader
    /// reads.
    #[tokio::test]
    async fn slow_reader_gets_events_in_order_and_the_newest_snapshot() {
        let (server, mut client) = tokio::io::duplex(256);
        let conn = any(server);
        let out = Arc::clone(conn.outbox());
        out.set_deltas(true);
        let epoch = out.begin_seat();
        let mut scratch = Vec::new();
        let snapshot = |tick: u32| {
            move |previous: Option<u32>, buf: &mut Vec<u8>| {
                let mut payload = vec![u8::try_from(tick % 256).unwrap_or(0); 100];
                payload[0] = u8::from(previous.is_some());
                write_binary_header(payload.len(), buf);
                buf.extend_from_slice(&payload);
            }
        };
        let mut send = |tick| out.send_snapshot(epoch, tick, &mut scratch, snapshot(tick));
        // The pipe holds 256 bytes: the third is partly written (its rest must arrive),
        // the fourth is kept, the fifth replaces it.
        let expected = [
            Delivery::Written,
            Delivery::Written,
            Delivery::Kept,
            Delivery::Kept,
            Delivery::Replaced,
        ];
        for (tick, expected) in (1..).zip(expected) {
            assert_eq!(send(tick), expected, "tick {tick}");
        }
        let event = binary_frame(b"event");
        assert_eq!(out.send_event(epoch, &event), Delivery::Kept);
        assert_eq!(send(6), Delivery::Kept);
        // The session leaves: nothing more from that seat.
        out.end_seat(Some(epoch));
        assert_eq!(send(7), Delivery::Stale);

        let session = async {
            std::future::poll_fn(|cx| out.poll_flush(cx))
                .await
                .expect("flushes");
        };
        let reader = async {
            let mut ws = WebSocketStream::from_raw_socket(&mut client, Role::Client, None).await;
            let mut got = Vec::new();
            while got.len() < 6 {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => got.push(b),
                    other => panic!("unexpected {other:?}"),
                }
            }
            got
        };
        let ((), got) = tokio::join!(session, reader);
        let kinds: Vec<(u8, u8)> = got
            .iter()
            .map(|b| if b.len() == 100 { (b[1], b[0]) } else { (0, 0) })
            .collect();
        // 1 full; 2 and 3 deltas; 4 replaced by 5, which is full (its baseline, 4, is never
        // sent); the event; 6 a delta on 5.
        assert_eq!(kinds, [(1, 0), (2, 1), (3, 1), (5, 0), (0, 0), (6, 1)]);
        assert_eq!(&got[4][..], b"event");
        let mut rest = [0u8; 1];
        drop(out);
        drop(conn);
        assert_eq!(client.read(&mut rest).await.expect("eof"), 0);
    }

    #[tokio::test]
    async fn controls_come_first_and_are_bounded() {
        let out = detached();
        let epoch = out.begin_seat();
        out.lobby_left(epoch);
        for i in 0..CONTROL_QUEUE {
            assert!(out.control(Control::Notice(i.to_string())));
        }
        assert!(!out.control(Control::Replaced), "the queue is full");
        let mut signals = Vec::new();
        for _ in 0..=CONTROL_QUEUE {
            signals.push(std::future::poll_fn(|cx| out.poll_signal(cx)).await);
        }
        assert_eq!(signals[0], Signal::Control(Control::Notice("0".into())));
        assert_eq!(signals[CONTROL_QUEUE], Signal::Left);
    }

    #[tokio::test]
    async fn too_many_waiting_events_drop_the_player() {
        let (server, _client) = tokio::io::duplex(64);
        let conn = any(server);
        let out = Arc::clone(conn.outbox());
        let epoch = out.begin_seat();
        let event = binary_frame(&[1u8; 1000]);
        let mut deliveries = Vec::new();
        for _ in 0..100 {
            deliveries.push(out.send_event(epoch, &event));
        }
        assert_eq!(deliveries[0], Delivery::Kept);
        assert!(deliveries.contains(&Delivery::Overflow));
        assert_eq!(deliveries.last(), Some(&Delivery::Stale));
        let signal = std::future::poll_fn(|cx| out.poll_signal(cx)).await;
        assert_eq!(signal, Signal::Overflow);
        let mut ws = WebSocketStream::from_raw_socket(conn, Role::Server, None).await;
        // The session's own frames still go out (after the partly written one).
        let sent = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            ws.send(Message::Binary(Bytes::from_static(b"bye"))),
        )
        .await;
        assert!(
            sent.is_err(),
            "the reader reads nothing, so the flush waits"
        );
    }
}

/// The outbox under arbitrary interleavings of lobby writes, session writes, a reader
/// that reads in arbitrary pieces, and session flushes, over a small pipe: the byte
/// stream always parses as whole frames, in the order they were handed over; must-arrive
/// frames arrive, all of them; snapshots only move forward, a delta's baseline is always the snapshot just
/// before it on the wire, and the newest snapshot always arrives.
#[cfg(test)]
mod props {
    use super::*;
    use crate::wire::frame::write_binary_header;
    use proptest::prelude::*;
    use tokio::io::AsyncRead;

    const SNAPSHOT: u8 = 1;
    const EVENT: u8 = 2;
    const SESSION: u8 = 3;

    #[derive(Debug, Clone)]
    enum Op {
        Snapshot,
        Event(usize),
        Session(usize),
        Read(usize),
        Flush,
    }

    fn op() -> impl Strategy<Value = Op> {
        let size = prop_oneof![Just(10usize), Just(120), Just(700), Just(3000)];
        prop_oneof![
            5 => Just(Op::Snapshot),
            2 => size.clone().prop_map(Op::Event),
            1 => size.prop_map(Op::Session),
            4 => (1usize..900).prop_map(Op::Read),
            2 => Just(Op::Flush),
        ]
    }

    /// A frame whose payload says what it is: kind, id, (snapshots) the baseline, padding.
    fn frame(kind: u8, id: u32, previous: Option<u32>, len: usize, out: &mut Vec<u8>) {
        let mut payload = vec![kind];
        payload.extend_from_slice(&id.to_le_bytes());
        payload.extend_from_slice(&previous.map_or(u32::MAX, |p| p).to_le_bytes());
        payload.resize(len.max(payload.len()), 0xab);
        write_binary_header(payload.len(), out);
        out.extend_from_slice(&payload);
    }

    fn read_some(client: &mut tokio::io::DuplexStream, limit: usize, into: &mut Vec<u8>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = vec![0u8; limit];
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(client).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                into.extend_from_slice(read.filled());
                true
            }
            _ => false,
        }
    }

    /// Splits the stream into (kind, id, previous) per frame; panics on anything else.
    fn parse(mut bytes: &[u8]) -> Vec<(u8, u32, Option<u32>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[0], 0x82, "a frame starts here");
            let (len, head) = match bytes[1] {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                n => (usize::from(n), 2),
            };
            let payload = &bytes[head..head + len];
            let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
            let previous = u32::from_le_bytes([payload[5], payload[6], payload[7], payload[8]]);
            frames.push((payload[0], id, (previous != u32::MAX).then_some(previous)));
            bytes = &bytes[head + len..];
        }
        frames
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn frames_stay_whole_ordered_and_newest(ops in proptest::collection::vec(op(), 1..120)) {
            let (server, mut client) = tokio::io::duplex(1024);
            let mut conn = super::any(server);
            let out = Arc::clone(conn.outbox());
            out.set_deltas(true);
            let epoch = out.begin_seat();
            let mut cx = Context::from_waker(Waker::noop());
            let (mut tick, mut next_id) = (0u32, 0u32);
            let mut last_snapshot = None;
            let mut must_arrive = Vec::new();
            let mut overflowed = false;
            let mut received = Vec::new();
            let mut scratch = Vec::new();
            // Every frame handed over, by (kind, id), in the order it was handed over.
            let mut handed = std::collections::HashMap::new();
            for op in ops {
                match op {
                    Op::Snapshot => {
                        tick += 1;
                        let delivery = out.send_snapshot(epoch, tick, &mut scratch, |previous, buf| {
                            frame(SNAPSHOT, tick, previous, 40, buf);
                        });
                        if delivery != Delivery::Stale {
                            last_snapshot = Some(tick);
                            handed.insert((SNAPSHOT, tick), handed.len());
                        }
                    }
                    Op::Event(len) => {
                        next_id += 1;
                        let mut buf = Vec::new();
                        frame(EVENT, next_id, None, len, &mut buf);
                        match out.send_event(epoch, &Bytes::from(buf)) {
                            Delivery::Written | Delivery::Kept => {
                                must_arrive.push((EVENT, next_id));
                                handed.insert((EVENT, next_id), handed.len());
                            }
                            Delivery::Overflow => overflowed = true,
                            Delivery::Replaced | Delivery::Stale => {}
                        }
                    }
                    Op::Session(len) => {
                        next_id += 1;
                        let mut buf = Vec::new();
                        frame(SESSION, next_id, None, len, &mut buf);
                        if let Poll::Ready(Ok(n)) = Pin::new(&mut conn).poll_write(&mut cx, &buf) {
                            prop_assert_eq!(n, buf.len(), "all or nothing");
                            must_arrive.push((SESSION, next_id));
                            handed.insert((SESSION, next_id), handed.len());
                        }
                    }
                    Op::Read(n) => {
                        read_some(&mut client, n, &mut received);
                    }
                    Op::Flush => {
                        let _ = out.poll_flush(&mut cx);
                    }
                }
            }
            // The session finishes writing while the client reads everything.
            for _ in 0..10_000 {
                let flushed = out.poll_flush(&mut cx).is_ready();
                let got = read_some(&mut client, 4096, &mut received);
                if flushed && !got {
                    break;
                }
            }
            let frames = parse(&received);
            let mut last_index = None;
            for &(kind, id, _) in &frames {
                let index = handed.get(&(kind, id)).copied();
                prop_assert!(index.is_some(), "{:?} was never handed over", (kind, id));
                prop_assert!(last_index < index, "{:?} arrived out of order", (kind, id));
                last_index = index;
            }
            let arrived: Vec<(u8, u32)> =
                frames.iter().filter(|f| f.0 != SNAPSHOT).map(|f| (f.0, f.1)).collect();
            if overflowed {
                // Events queued behind the one being written were dropped with the player.
                let mut expected = must_arrive.iter();
                for got in &arrived {
                    prop_assert!(expected.any(|e| e == got), "{:?} out of order", got);
                }
            } else {
                prop_assert_eq!(&arrived, &must_arrive);
            }
            let mut previous_tick = None;
            for &(kind, id, baseline) in &frames {
                if kind != SNAPSHOT {
                    continue;
                }
                prop_assert!(previous_tick < Some(id), "snapshots move forward");
                if let Some(baseline) = baseline {
                    prop_assert_eq!(Some(baseline), previous_tick, "a delta's baseline is the snapshot before it");
                }
                previous_tick = Some(id);
            }
            if !overflowed {
                prop_assert_eq!(previous_tick, last_snapshot, "the newest snapshot arrives");
            }
        }
    }
}
