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

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use ticksync_protocol::limits::MAX_SERVER_MESSAGE_BYTES;
use ticksync_protocol::{
    ClientMessage, Joined, PROTOCOL_VERSION, ServerMessage, codec::encode_client_into,
    decode_server,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
    /// Received bytes; `buf[start..end]` is not parsed yet. Zeroed once, grown only for a
    /// frame larger than it.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being assembled, while `in_fragments`.
    fragments: Vec<u8>,
    in_fragments: bool,
    /// Encoded payload of the message being sent.
    payload: Vec<u8>,
    /// The frame(s) of the next write: replies owed to the server, then the message.
    out: Vec<u8>,
    /// Framed pongs and close replies owed to the server, sent with the next message.
    owed: Vec<u8>,
    /// xorshift state for mask keys.
    mask_state: u64,
    bytes_in: u64,
    bytes_out: u64,
}

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
        let stream = TcpStream::connect(target.addr)
            .await
            .map_err(ClientError::Io)?;
        stream.set_nodelay(true).map_err(ClientError::Io)?;
        let key = generate_key();
        let mut client = Self {
            stream,
            buf: vec![0; read_buffer.max(MAX_RESPONSE_HEAD)],
            start: 0,
            end: 0,
            fragments: Vec::new(),
            in_fragments: false,
            payload: Vec::with_capacity(64),
            out: Vec::with_capacity(64),
            owed: Vec::new(),
            mask_state: seed_from(&key),
            bytes_in: 0,
            bytes_out: 0,
        };
        client.upgrade(target, &key).await?;
        // The head needed up to 4 KiB; the connection's life needs only `read_buffer`.
        let keep = (client.end - client.start).max(read_buffer).max(64);
        client.buf.copy_within(client.start..client.end, 0);
        client.end -= client.start;
        client.start = 0;
        client.buf.truncate(keep);
        client.buf.shrink_to_fit();
        // The upgrade's bytes are not WebSocket traffic.
        client.bytes_in = client.end as u64;
        client.bytes_out = 0;
        Ok(client)
    }

    async fn upgrade(&mut self, target: &Target, key: &str) -> Result<(), ClientError> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            target.path, target.host
        );
        self.stream
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
            let n = self
                .stream
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

    /// The next binary message, as a slice of the read buffer valid until the next call.
    /// Pings are answered (with the next `send`), pongs skipped; a close frame, a text
    /// frame or a protocol violation is an error. Cancel-safe.
    pub async fn next_binary(&mut self) -> Result<&[u8], ClientError> {
        let (at, len) = loop {
            match self.step()? {
                Step::Need(total) => self.fill(total).await?,
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
                let mask = self.next_mask();
                frame_into(&mut self.owed, OP_PONG, &self.buf[payload], mask);
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
                    _ => (1005, String::new()),
                };
                Err(ClientError::Closed { code, reason })
            }
            _ => Err(protocol("unknown opcode")),
        }
    }

    /// Reads until `total` bytes from `start` are buffered or the socket has no more now.
    /// Cancel-safe: the buffer is consistent before the read is awaited.
    async fn fill(&mut self, total: usize) -> Result<(), ClientError> {
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
        let n = self
            .stream
            .read(&mut self.buf[self.end..])
            .await
            .map_err(ClientError::Io)?;
        if n == 0 {
            return Err(ClientError::Closed {
                code: 1006,
                reason: "connection dropped".into(),
            });
        }
        self.end += n;
        self.bytes_in += n as u64;
        Ok(())
    }

    /// Receives and decodes the next message.
    pub async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        let bytes = self.next_binary().await?;
        Ok(decode_server(bytes)?)
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
        self.payload.clear();
        encode_client_into(message, &mut self.payload);
        self.out.clear();
        self.out.append(&mut self.owed);
        let mask = self.next_mask();
        frame_into(&mut self.out, OP_BINARY, &self.payload, mask);
        self.stream
            .write_all(&self.out)
            .await
            .map_err(ClientError::Io)?;
        self.bytes_out += self.out.len() as u64;
        Ok(())
    }

    /// Sends a close frame (code 1000) and shuts the write side; errors are ignored, the
    /// connection is ending anyway.
    pub async fn close(mut self) {
        self.out.clear();
        let mask = self.next_mask();
        frame_into(&mut self.out, OP_CLOSE, &1000u16.to_be_bytes(), mask);
        if self.stream.write_all(&self.out).await.is_ok() {
            let _ = self.stream.shutdown().await;
        }
    }

    /// Says Hello and waits for Welcome (a failed resume is skipped, as in
    /// [`crate::Client::hello`]).
    pub async fn hello(&mut self, name: &str, limit: Duration) -> Result<Welcome, ClientError> {
        self.send(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            name: name.into(),
            resume_token: None,
        })
        .await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_timeout(left).await? {
                ServerMessage::Welcome {
                    player_id,
                    session_token,
                    tick_rate,
                    ..
                } => {
                    return Ok(Welcome {
                        player_id,
                        session_token,
                        tick_rate,
                    });
                }
                ServerMessage::Error { code: 14, .. } => continue,
                ServerMessage::Error { code, message } => {
                    return Err(ClientError::Server { code, message });
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// Sends a lobby request and waits for `Joined`, skipping anything else but errors.
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
                ServerMessage::Error { code, message } => {
                    return Err(ClientError::Server { code, message });
                }
                _ => continue,
            }
        }
    }

    /// WebSocket bytes received since the upgrade (payload and framing).
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// WebSocket bytes sent since the upgrade (payload and framing).
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// A fresh mask key (RFC 6455 wants them unpredictable to intermediaries; there are
    /// none on loopback, so a fast generator seeded from the handshake key will do).
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        let [a, b, c, d, ..] = x.to_le_bytes();
        [a, b, c, d]
    }
}

/// Appends one masked, final frame.
fn frame_into(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(
        payload
            .iter()
            .zip(mask.iter().cycle())
            .map(|(byte, key)| byte ^ key),
    );
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
    use ticksync_protocol::{Input, decode_client};
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
                        assert!(matches!(m, ClientMessage::Input(Input { seq: 42, .. })));
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(got_pong, "the pong rides with the next message");
            ws.close(Some(CloseFrame {
                code: CloseCode::from(4004),
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
            .send(&ClientMessage::Input(Input {
                seq: 42,
                dir_x: 1.0,
                dir_y: 0.0,
                buttons: 0,
            }))
            .await
            .expect("sends");
        match client.next_binary().await {
            Err(ClientError::Closed { code, reason }) => {
                assert_eq!((code, reason.as_str()), (4004, "slow consumer"));
            }
            other => panic!("expected the close, got {other:?}"),
        }
        assert!(client.bytes_in() > 3000 && client.bytes_out() > 0);
        server.await.expect("server script");
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
