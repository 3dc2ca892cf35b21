//! [`LeanClient`]: a WebSocket client cut down to what a load generator needs, so that one
//! core of bots can drive thousands of players.
//!
//! [`crate::Client`] is tungstenite's general client: every received message becomes an
//! owned `Message`, and its read path zero-fills its buffer before every socket read. At
//! 30 snapshots per second for thousands of connections those costs are the bots' CPU,
//! and the figures would then measure the bots rather than the server. This client:
//! - does the HTTP upgrade itself (RFC 6455 section 4.1) and checks the server's accept
//!   key;
//! - reads into one fixed buffer, zeroed once, and hands out each binary message as a
//!   slice of it: no allocation and no copy per message (fragmented messages, which the
//!   ticksync server never sends, are assembled in a side buffer);
//! - writes each message as one masked frame with one `write` (TCP_NODELAY on), pongs and
//!   close replies riding along with the next message;
//! - refuses what a client must refuse: masked or oversized server frames, reserved bits,
//!   unknown opcodes, data frames inside a fragmented message.
//!
//! [`LeanClient::next_binary`] is cancel-safe: it only awaits socket reads and keeps its
//! parse state in `self`, so it can sit in a `select!` beside a timer. `send` is not
//! (a half-written frame would corrupt the stream): await it outside `select!`.
//!
//! [`LeanClient::into_split`] gives a [`LeanReader`] for a task that waits on the socket
//! and a [`LeanWriter`] whose `try_send` never waits, so that one task can send for
//! many connections on one timer.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use ticksync_protocol::limits::MAX_SERVER_MESSAGE_BYTES;
use ticksync_protocol::{
    ClientMessage, Joined, PROTOCOL_VERSION, ServerMessage, close, codec::encode_client_into,
    decode_server,
};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{ClientError, Welcome};

/// Default read buffer: 25 snapshots of a lobby of 10, or one of 250 players, with room.
pub const DEFAULT_READ_BUFFER: usize = 4 * 1024;

/// Longest HTTP response head accepted during the upgrade.
const MAX_RESPONSE_HEAD: usize = 4 * 1024;
/// Largest frame header: 2 bytes, an 8-byte length (server frames carry no mask).
const MAX_FRAME_HEADER: usize = 10;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Where to connect: a parsed `ws://host:port/path` URL with its address resolved once,
/// so that thousands of connections do not each resolve the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The resolved address.
    pub addr: SocketAddr,
    /// The `Host` header: the URL's authority.
    pub host: String,
    /// The request path (with any query).
    pub path: String,
}

impl Target {
    /// Parses a `ws://` URL and resolves its host (blocking: call it once, at start-up).
    /// `wss://` is refused: a load generator on loopback has no use for TLS.
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| ClientError::Handshake(format!("{url}: only ws:// URLs")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(ClientError::Handshake(format!("{url}: bad host")));
        }
        // A port-less authority gets 80; "[::1]" and "[::1]:80" both work.
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_owned()
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(ClientError::Io)?
            .next()
            .ok_or_else(|| ClientError::Handshake(format!("{url}: no address")))?;
        Ok(Self {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One lean WebSocket connection. See the module documentation.
#[derive(Debug)]
pub struct LeanClient {
    stream: TcpStream,
    reader: Reader,
    writer: Writer,
    /// The read buffer size asked for (a redirect's new connection gets the same).
    read_buffer: usize,
    /// The name of the last `Hello` (said again after a redirect).
    name: Option<String>,
    /// Redirects followed (cluster mode).
    redirects: u32,
}

/// The receiving end of a [`LeanClient`] after [`LeanClient::into_split`].
#[derive(Debug)]
pub struct LeanReader {
    half: OwnedReadHalf,
    reader: Reader,
}

/// The sending end of a [`LeanClient`] after [`LeanClient::into_split`]. Its
/// [`LeanWriter::try_send`] never waits, so one task can send for many connections.
#[derive(Debug)]
pub struct LeanWriter {
    half: OwnedWriteHalf,
    writer: Writer,
}

/// Framed pongs owed to the server: the reader finds pings, the writer sends the pongs
/// with its next message. Shared once the connection is split.
#[derive(Debug, Default)]
struct Owed {
    frames: Mutex<Vec<u8>>,
    any: AtomicBool,
}

impl Owed {
    fn push(&self, frame: impl FnOnce(&mut Vec<u8>)) {
        frame(&mut self.frames.lock().unwrap_or_else(PoisonError::into_inner));
        self.any.store(true, Ordering::Release);
    }

    fn take_into(&self, out: &mut Vec<u8>) {
        // A plain load first: the swap is a locked instruction, and pongs are rare.
        if self.any.load(Ordering::Relaxed) && self.any.swap(false, Ordering::Acquire) {
            out.append(&mut self.frames.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

/// The receive state: buffer, parser, fragments.
#[derive(Debug)]
struct Reader {
    /// Received bytes; `buf[start..end]` is not parsed yet. Zeroed once, grown only for a
    /// frame larger than it.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being assembled, while `in_fragments`.
    fragments: Vec<u8>,
    in_fragments: bool,
    owed: Arc<Owed>,
    mask: Mask,
    bytes_in: u64,
}

/// The send state: encoding and framing buffers.
#[derive(Debug)]
struct Writer {
    /// Encoded payload of the message being sent.
    payload: Vec<u8>,
    /// Framed bytes not yet written: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    owed: Arc<Owed>,
    mask: Mask,
    bytes_out: u64,
}

/// Most bytes [`LeanWriter::try_send`] keeps when the socket takes no more: 16 KiB is
/// ~700 inputs, so a server that stopped reading long ago.
const MAX_UNSENT: usize = 16 * 1024;

/// What parsing the buffered bytes gave.
enum Step {
    /// A frame needs this many bytes from `start`.
    Need(usize),
    /// A whole binary message at `buf[at..at + len]`.
    Message { at: usize, len: usize },
    /// A fragmented message completed in `fragments`.
    Assembled,
    /// A frame was consumed (control frame or fragment); parse on.
    Consumed,
}

impl LeanClient {
    /// Connects and upgrades to WebSocket with a read buffer of `read_buffer` bytes
    /// (grown if a larger frame arrives, up to the protocol's largest message).
    pub async fn connect(target: &Target, read_buffer: usize) -> Result<Self, ClientError> {
        let mut stream = TcpStream::connect(target.addr)
            .await
            .map_err(ClientError::Io)?;
        stream.set_nodelay(true).map_err(ClientError::Io)?;
        let key = generate_key();
        let seed = seed_from(&key);
        let owed = Arc::new(Owed::default());
        let mut reader = Reader {
            buf: vec![0; read_buffer.max(MAX_RESPONSE_HEAD)],
            start: 0,
            end: 0,
            fragments: Vec::new(),
            in_fragments: false,
            owed: Arc::clone(&owed),
            mask: Mask(seed ^ 0x5555_5555_5555_5555),
            bytes_in: 0,
        };
        reader.upgrade(&mut stream, target, &key).await?;
        // The head needed up to 4 KiB; the connection's life needs only `read_buffer`.
        let keep = (reader.end - reader.start).max(read_buffer).max(64);
        reader.buf.copy_within(reader.start..reader.end, 0);
        reader.end -= reader.start;
        reader.start = 0;
        reader.buf.truncate(keep);
        reader.buf.shrink_to_fit();
        // The upgrade's bytes are not WebSocket traffic.
        reader.bytes_in = reader.end as u64;
        let writer = Writer {
            payload: Vec::with_capacity(64),
            out: Vec::with_capacity(64),
            sent: 0,
            owed,
            mask: Mask(seed),
            bytes_out: 0,
        };
        Ok(Self {
            stream,
            reader,
            writer,
            read_buffer,
            name: None,
            redirects: 0,
        })
    }

    /// Redirects this client followed to another node (cluster mode).
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// The next binary message, as a slice of the read buffer valid until the next call.
    /// Pings are answered (with the next `send`), pongs skipped; a close frame, a text
    /// frame or a protocol violation is an error. Cancel-safe.
    pub async fn next_binary(&mut self) -> Result<&[u8], ClientError> {
        self.reader.next_binary(&mut self.stream).await
    }

    /// Receives and decodes the next control message (game frames are skipped: read
    /// them with [`LeanClient::next_binary`]).
    pub async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            let bytes = self.next_binary().await?;
            if !ticksync_protocol::codec::is_game_frame(bytes) {
                return Ok(decode_server(bytes)?);
            }
        }
    }

    /// Receives and decodes the next message within `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<ServerMessage, ClientError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Sends a message as one masked binary frame, in one `write` together with any
    /// replies owed to the server. Not cancel-safe.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        self.writer.frame(OP_BINARY, Some(message), &[]);
        self.write_out().await
    }

    /// Sends an encoded game frame (an input or a game message) as one masked binary
    /// frame, like [`LeanClient::send`]. Not cancel-safe.
    pub async fn send_frame(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.frame(OP_BINARY, None, bytes);
        self.write_out().await
    }

    async fn write_out(&mut self) -> Result<(), ClientError> {
        let unsent = &self.writer.out[self.writer.sent..];
        self.stream
            .write_all(unsent)
            .await
            .map_err(ClientError::Io)?;
        self.writer.bytes_out += unsent.len() as u64;
        self.writer.out.clear();
        self.writer.sent = 0;
        Ok(())
    }

    /// Sends a close frame (code [`close::NORMAL`]) and shuts the write side; errors are
    /// ignored, the connection is ending anyway.
    pub async fn close(mut self) {
        self.writer
            .frame(OP_CLOSE, None, &close::NORMAL.to_be_bytes());
        if self.stream.write_all(&self.writer.out).await.is_ok() {
            let _ = self.stream.shutdown().await;
        }
    }

    /// Splits the connection: a reader for one task, a non-blocking writer for another
    /// (pongs for pings the reader finds still go out with the writer's next message).
    pub fn into_split(self) -> (LeanReader, LeanWriter) {
        let (read, write) = self.stream.into_split();
        (
            LeanReader {
                half: read,
                reader: self.reader,
            },
            LeanWriter {
                half: write,
                writer: self.writer,
            },
        )
    }

    /// Says Hello and waits for Welcome (a failed resume is skipped, as in
    /// [`crate::Client::hello`]).
    pub async fn hello(&mut self, name: &str, limit: Duration) -> Result<Welcome, ClientError> {
        self.name = Some(name.to_owned());
        self.send(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            name: name.into(),
            resume_token: None,
        })
        .await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.recv_timeout(left).await?;
            if let Some(outcome) = crate::expect_welcome(message) {
                return outcome;
            }
        }
    }

    /// Sends a lobby request and waits for `Joined`, skipping anything else but errors.
    /// A `Redirect` (cluster mode) is followed once: the client moves to the lobby's
    /// node, says `Hello` there and sends `JoinReserved`.
    pub async fn join(
        &mut self,
        request: &ClientMessage,
        limit: Duration,
    ) -> Result<Joined, ClientError> {
        self.send(request).await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_timeout(left).await? {
                ServerMessage::Joined(joined) => return Ok(joined),
                ServerMessage::Redirect { url, reservation }
                    if self.redirects == 0 && !reservation.is_empty() =>
                {
                    let name = self
                        .name
                        .clone()
                        .ok_or_else(|| ClientError::Unexpected("a redirect before Hello".into()))?;
                    let target = Target::parse(&url)?;
                    let mut next = LeanClient::connect(&target, self.read_buffer).await?;
                    next.redirects = self.redirects + 1;
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    next.hello(&name, left).await?;
                    let old = std::mem::replace(self, next);
                    old.close().await;
                    let request = ClientMessage::JoinReserved { reservation };
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    return Box::pin(self.join(&request, left)).await;
                }
                ServerMessage::Error { code, message } => {
                    return Err(ClientError::Server { code, message });
                }
                _ => continue,
            }
        }
    }

    /// WebSocket bytes received since the upgrade (payload and framing).
    pub fn bytes_in(&self) -> u64 {
        self.reader.bytes_in
    }

    /// WebSocket bytes sent since the upgrade (payload and framing).
    pub fn bytes_out(&self) -> u64 {
        self.writer.bytes_out
    }
}

impl LeanReader {
    /// As [`LeanClient::next_binary`]. Cancel-safe.
    pub async fn next_binary(&mut self) -> Result<&[u8], ClientError> {
        self.reader.next_binary(&mut self.half).await
    }

    /// WebSocket bytes received since the upgrade (payload and framing).
    pub fn bytes_in(&self) -> u64 {
        self.reader.bytes_in
    }
}

impl LeanWriter {
    /// Sends a message without waiting: frames it after anything still unsent and
    /// writes what the socket takes now (one `write`, normally all of it). What it does
    /// not take is kept for the next call; more than 16 KiB kept means the server
    /// stopped reading, an error.
    pub fn try_send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        self.writer.frame(OP_BINARY, Some(message), &[]);
        self.flush_now()
    }

    /// Sends an encoded game frame (an input or a game message) without waiting, like
    /// [`LeanWriter::try_send`].
    pub fn try_send_frame(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.frame(OP_BINARY, None, bytes);
        self.flush_now()
    }

    /// Sends a close frame (code [`close::NORMAL`]) without waiting; the caller drops the
    /// writer next, which shuts the write side.
    pub fn try_close(&mut self) -> Result<(), ClientError> {
        self.writer
            .frame(OP_CLOSE, None, &close::NORMAL.to_be_bytes());
        self.flush_now()
    }

    fn flush_now(&mut self) -> Result<(), ClientError> {
        let w = &mut self.writer;
        while w.sent < w.out.len() {
            match self.half.try_write(&w.out[w.sent..]) {
                Ok(n) => {
                    w.sent += n;
                    w.bytes_out += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        if w.sent == w.out.len() {
            w.out.clear();
            w.sent = 0;
        } else if w.out.len() - w.sent > MAX_UNSENT {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the server is not reading",
            )));
        }
        Ok(())
    }

    /// WebSocket bytes sent since the upgrade (payload and framing).
    pub fn bytes_out(&self) -> u64 {
        self.writer.bytes_out
    }
}

impl Writer {
    /// Appends owed pongs, then one masked frame of `message` (encoded) or `raw`.
    fn frame(&mut self, opcode: u8, message: Option<&ClientMessage>, raw: &[u8]) {
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        self.owed.take_into(&mut self.out);
        self.payload.clear();
        match message {
            Some(message) => encode_client_into(message, &mut self.payload),
            None => self.payload.extend_from_slice(raw),
        }
        frame_into(&mut self.out, opcode, &self.payload, self.mask.next());
    }
}

impl Reader {
    async fn upgrade(
        &mut self,
        stream: &mut TcpStream,
        target: &Target,
        key: &str,
    ) -> Result<(), ClientError> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            target.path, target.host
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(ClientError::Io)?;
        let head_len = loop {
            if let Some(i) = find(&self.buf[..self.end], b"\r\n\r\n") {
                break i + 4;
            }
            if self.end == MAX_RESPONSE_HEAD {
                return Err(ClientError::Handshake("response head too long".into()));
            }
            let n = stream
                .read(&mut self.buf[self.end..MAX_RESPONSE_HEAD])
                .await
                .map_err(ClientError::Io)?;
            if n == 0 {
                return Err(ClientError::Handshake(
                    "connection closed during the upgrade".into(),
                ));
            }
            self.end += n;
        };
        let head = std::str::from_utf8(&self.buf[..head_len])
            .map_err(|_| ClientError::Handshake("response head is not UTF-8".into()))?;
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or_default();
        if status.split(' ').nth(1) != Some("101") {
            return Err(ClientError::Handshake(format!("refused: {status}")));
        }
        let accept = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|(_, value)| value.trim());
        if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(ClientError::Handshake("wrong Sec-WebSocket-Accept".into()));
        }
        self.start = head_len;
        Ok(())
    }

    async fn next_binary<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
    ) -> Result<&[u8], ClientError> {
        let (at, len) = loop {
            match self.step()? {
                Step::Need(total) => self.fill(io, total).await?,
                Step::Message { at, len } => break (at, len),
                Step::Assembled => return Ok(&self.fragments),
                Step::Consumed => {}
            }
        };
        Ok(&self.buf[at..at + len])
    }

    /// Parses one frame from the buffered bytes, if they hold one.
    fn step(&mut self) -> Result<Step, ClientError> {
        let avail = &self.buf[self.start..self.end];
        let [b0, b1, ..] = *avail else {
            return Ok(Step::Need(2));
        };
        if b0 & 0x70 != 0 {
            return Err(protocol("reserved bits set"));
        }
        if b1 & 0x80 != 0 {
            return Err(protocol("masked frame from the server"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        let (header, len) = match b1 & 0x7f {
            126 => match avail.get(2..4) {
                Some(&[a, b]) => (4, u64::from(u16::from_be_bytes([a, b]))),
                _ => return Ok(Step::Need(4)),
            },
            127 => match avail.get(2..10) {
                Some(b) => (10, u64::from_be_bytes(b.try_into().unwrap_or([0xff; 8]))),
                None => return Ok(Step::Need(MAX_FRAME_HEADER)),
            },
            n => (2, u64::from(n)),
        };
        let len = match usize::try_from(len) {
            Ok(len) if len <= MAX_SERVER_MESSAGE_BYTES => len,
            _ => return Err(protocol("frame over the protocol's message limit")),
        };
        if avail.len() < header + len {
            return Ok(Step::Need(header + len));
        }
        let at = self.start + header;
        self.start = at + len;
        let payload = at..at + len;
        let is_control = opcode & 0x8 != 0;
        if is_control && (!fin || len > 125) {
            return Err(protocol("fragmented or long control frame"));
        }
        match opcode {
            OP_BINARY if !self.in_fragments => {
                if fin {
                    return Ok(Step::Message { at, len });
                }
                self.fragments.clear();
                self.fragments.extend_from_slice(&self.buf[payload]);
                self.in_fragments = true;
                Ok(Step::Consumed)
            }
            OP_CONTINUATION if self.in_fragments => {
                if self.fragments.len() + len > MAX_SERVER_MESSAGE_BYTES {
                    return Err(protocol("fragmented message over the limit"));
                }
                self.fragments.extend_from_slice(&self.buf[payload]);
                if fin {
                    self.in_fragments = false;
                    return Ok(Step::Assembled);
                }
                Ok(Step::Consumed)
            }
            OP_BINARY | OP_CONTINUATION => Err(protocol("fragments out of order")),
            OP_TEXT => Err(ClientError::Unexpected("text frame".into())),
            OP_PING => {
                let mask = self.mask.next();
                let ping = &self.buf[payload];
                self.owed
                    .push(|frames| frame_into(frames, OP_PONG, ping, mask));
                Ok(Step::Consumed)
            }
            OP_PONG => Ok(Step::Consumed),
            OP_CLOSE => {
                let body = &self.buf[payload];
                let (code, reason) = match body {
                    [a, b, reason @ ..] => (
                        u16::from_be_bytes([*a, *b]),
                        String::from_utf8_lossy(reason).into_owned(),
                    ),
                    _ => (close::local::NO_CLOSE_CODE, String::new()),
                };
                Err(ClientError::Closed { code, reason })
            }
            _ => Err(protocol("unknown opcode")),
        }
    }

    /// Reads until `total` bytes from `start` are buffered or the socket has no more now.
    /// Cancel-safe: the buffer is consistent before the read is awaited.
    async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        total: usize,
    ) -> Result<(), ClientError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.start + total > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if total > self.buf.len() {
                self.buf.resize(total, 0);
            }
        }
        // A read shorter than the free space tells tokio the socket is drained, so one
        // `read` per arriving snapshot, not two.
        let n = io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(ClientError::Io)?;
        if n == 0 {
            return Err(ClientError::Closed {
                code: close::local::CONNECTION_LOST,
                reason: "connection dropped".into(),
            });
        }
        self.end += n;
        self.bytes_in += n as u64;
        Ok(())
    }
}

/// xorshift64 mask keys (RFC 6455 wants them unpredictable to intermediaries; there are
/// none on loopback, so a fast generator seeded from the handshake key will do).
#[derive(Debug)]
struct Mask(u64);

impl Mask {
    fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let [a, b, c, d, ..] = x.to_le_bytes();
        [a, b, c, d]
    }
}

/// Appends one masked, final frame.
fn frame_into(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    match payload.len() {
        n @ 0..=125 => out.extend_from_slice(&[0x80 | opcode, 0x80 | n as u8]),
        n @ 126..=0xffff => {
            out.extend_from_slice(&[0x80 | opcode, 0x80 | 126]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.extend_from_slice(&[0x80 | opcode, 0x80 | 127]);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    // Four bytes at a time: the key repeats every four bytes from the payload's start.
    let key = u32::from_ne_bytes(mask);
    let mut words = out[start..].chunks_exact_mut(4);
    for word in &mut words {
        let masked = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]) ^ key;
        word.copy_from_slice(&masked.to_ne_bytes());
    }
    for (byte, key) in words.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn seed_from(key: &str) -> u64 {
    // FNV-1a over the random handshake key; never zero (xorshift's fixed point).
    key.bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
        .max(1)
}

fn protocol(what: &str) -> ClientError {
    ClientError::Protocol(what.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use ticksync_protocol::decode_client;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    /// A tungstenite server on loopback that runs `script` on its one connection.
    async fn with_server<F, Fut>(script: F) -> (Target, tokio::task::JoinHandle<()>)
    where
        F: FnOnce(tokio_tungstenite::WebSocketStream<TcpStream>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let ws = tokio_tungstenite::accept_async(stream)
                .await
                .expect("server handshake");
            script(ws).await;
        });
        let target = Target::parse(&format!("ws://{addr}/ws")).expect("target");
        (target, task)
    }

    #[test]
    fn frames_are_masked_with_their_key() {
        for len in [0, 1, 3, 4, 5, 11, 15, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mask = [0x12, 0x34, 0x56, 0x78];
            let mut out = vec![0xee];
            frame_into(&mut out, OP_BINARY, &payload, mask);
            let header = match len {
                0..=125 => 2,
                126..=0xffff => 4,
                _ => 10,
            };
            assert_eq!(out[1], 0x82);
            assert_eq!(out[1 + 1] & 0x80, 0x80);
            assert_eq!(&out[1 + header..1 + header + 4], &mask);
            let unmasked: Vec<u8> = out[1 + header + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn urls_parse() {
        let t = Target::parse("ws://127.0.0.1:9000/ws?x=1").expect("parses");
        assert_eq!(t.addr, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/ws?x=1")
        );
        let t = Target::parse("ws://127.0.0.1").expect("parses");
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        assert!(Target::parse("wss://127.0.0.1/ws").is_err());
        assert!(Target::parse("http://127.0.0.1/ws").is_err());
    }

    #[tokio::test]
    async fn messages_both_ways_small_large_fragmented_and_pings() {
        let big = vec![7u8; 3000];
        let big_copy = big.clone();
        let (target, server) = with_server(move |mut ws| async move {
            ws.send(Message::Binary(vec![1, 2, 3].into()))
                .await
                .expect("small");
            ws.send(Message::Ping(vec![9].into())).await.expect("ping");
            ws.send(Message::Binary(big_copy.into()))
                .await
                .expect("big");
            // One message in three frames.
            use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
            use tokio_tungstenite::tungstenite::protocol::frame::{Frame, coding::Data};
            let frames = [
                Frame::message(vec![4u8], OpCode::Data(Data::Binary), false),
                Frame::message(vec![5u8], OpCode::Data(Data::Continue), false),
                Frame::message(vec![6u8], OpCode::Data(Data::Continue), true),
            ];
            for f in frames {
                ws.send(Message::Frame(f)).await.expect("fragment");
            }
            // The client's input arrives masked and decodes; the pong came with it.
            let mut got_pong = false;
            loop {
                match ws.next().await.expect("open").expect("frame") {
                    Message::Pong(p) => {
                        assert_eq!(&p[..], &[9]);
                        got_pong = true;
                    }
                    Message::Binary(b) => {
                        let m = decode_client(&b).expect("decodes");
                        assert!(matches!(m, ClientMessage::Ping { client_time: 42 }));
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(got_pong, "the pong rides with the next message");
            ws.close(Some(CloseFrame {
                code: CloseCode::from(close::SLOW_CONSUMER),
                reason: "slow consumer".into(),
            }))
            .await
            .expect("close");
        })
        .await;
        let mut client = LeanClient::connect(&target, 256).await.expect("connects");
        assert_eq!(client.next_binary().await.expect("small"), &[1, 2, 3]);
        assert_eq!(client.next_binary().await.expect("big"), &big[..]);
        assert_eq!(client.next_binary().await.expect("fragmented"), &[4, 5, 6]);
        client
            .send(&ClientMessage::Ping { client_time: 42 })
            .await
            .expect("sends");
        match client.next_binary().await {
            Err(ClientError::Closed { code, reason }) => {
                assert_eq!(
                    (code, reason.as_str()),
                    (close::SLOW_CONSUMER, "slow consumer")
                );
            }
            other => panic!("expected the close, got {other:?}"),
        }
        assert!(client.bytes_in() > 3000 && client.bytes_out() > 0);
        server.await.expect("server script");
    }

    #[tokio::test]
    async fn split_halves_read_send_without_waiting_and_answer_pings() {
        let (target, server) = with_server(|mut ws| async move {
            ws.send(Message::Ping(vec![5].into())).await.expect("ping");
            ws.send(Message::Binary(vec![8, 9].into()))
                .await
                .expect("data");
            let mut seqs = Vec::new();
            let mut got_pong = false;
            while seqs.len() < 3 {
                match ws.next().await.expect("open").expect("frame") {
                    Message::Pong(p) => got_pong = p[..] == [5],
                    Message::Binary(b) if b.first() == Some(&64) => {
                        // A game frame: tag, seq (u32 LE), ...
                        seqs.push(u32::from_le_bytes([b[1], b[2], b[3], b[4]]));
                    }
                    Message::Binary(b) => panic!("unexpected {:?}", decode_client(&b)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(seqs, [1, 2, 3]);
            assert!(got_pong, "the pong went out with an input");
            assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
        })
        .await;
        let client = LeanClient::connect(&target, 1024).await.expect("connects");
        let (mut reader, mut writer) = client.into_split();
        assert_eq!(reader.next_binary().await.expect("data"), &[8, 9]);
        for seq in 1u32..=3 {
            let mut input = vec![64];
            input.extend_from_slice(&seq.to_le_bytes());
            input.extend_from_slice(&[0; 4]);
            writer.try_send_frame(&input).expect("sends");
        }
        writer.try_close().expect("closes");
        assert!(writer.bytes_out() > 3 * 6);
        drop(writer);
        server.await.expect("server script");
        assert!(reader.bytes_in() > 0);
    }

    #[tokio::test]
    async fn a_refused_upgrade_is_a_handshake_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let target = Target::parse(&format!("ws://{addr}/nope")).expect("target");
        let result = LeanClient::connect(&target, 1024).await;
        assert!(
            matches!(result, Err(ClientError::Handshake(_))),
            "{result:?}"
        );
        server.await.expect("server");
    }
}
