//! Abuse resistance, finding by finding (issue 10, "Security and fairness findings"): each
//! test plays the attack as measured there, at a small scale (small configured caps make
//! floods cheap), and checks what an honest player or operator gets meanwhile. Clients
//! bind source addresses in 127.0.0.0/8 to play several addresses on one machine.
//!
//! These tests use only settings that existed before the fixes, so that they can be run
//! against the code before them (where each of them fails).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ticksync_protocol::{
    ClientMessage, ErrorCode, Joined, PROTOCOL_VERSION, ServerMessage, SessionToken, close,
    decode_server, encode_client,
};
use ticksync_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// A source address on the loopback network: 127.0.0.`n`.
fn source(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

async fn tcp_from(server: SocketAddr, from: Ipv4Addr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(server).await
}

/// A WebSocket client from a chosen source address, speaking the protocol by hand.
struct Peer {
    ws: WebSocketStream<TcpStream>,
}

/// What the server answered to a request.
#[derive(Debug)]
enum Reply {
    Welcome(u32, SessionToken),
    Joined(Box<Joined>),
    Error(u16, String),
    Notice(String),
    /// The connection closed, with this close code (0: no close frame).
    Closed(u16),
}

impl Peer {
    async fn connect(server: SocketAddr, from: Ipv4Addr) -> std::io::Result<Peer> {
        let stream = tcp_from(server, from).await?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{server}/ws"), stream)
            .await
            .map_err(std::io::Error::other)?;
        Ok(Peer { ws })
    }

    async fn send(&mut self, message: &ClientMessage) {
        let _ = self
            .ws
            .send(Message::Binary(Bytes::from(encode_client(message))))
            .await;
    }

    /// The next answer worth telling (snapshots, scoreboards, lists and the like are
    /// skipped), within five seconds.
    async fn reply(&mut self) -> Reply {
        let read = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => match decode_server(&bytes) {
                        Ok(ServerMessage::Welcome {
                            player_id,
                            session_token,
                            ..
                        }) => return Reply::Welcome(player_id, session_token),
                        Ok(ServerMessage::Joined(joined)) => {
                            return Reply::Joined(Box::new(joined));
                        }
                        Ok(ServerMessage::Error { code, message }) => {
                            return Reply::Error(code, message);
                        }
                        Ok(ServerMessage::Notice { text }) => return Reply::Notice(text),
                        _ => {}
                    },
                    Some(Ok(Message::Close(frame))) => {
                        return Reply::Closed(frame.map_or(0, |f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Reply::Closed(0),
                }
            }
        };
        timeout(Duration::from_secs(5), read)
            .await
            .expect("an answer in time")
    }

    async fn hello_with(&mut self, name: &str, resume: Option<SessionToken>) -> Reply {
        self.send(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            name: name.into(),
            resume_token: resume,
        })
        .await;
        self.reply().await
    }

    /// Says Hello; returns the session token.
    async fn hello(&mut self, name: &str) -> SessionToken {
        match self.hello_with(name, None).await {
            Reply::Welcome(_, token) => token,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    async fn request(&mut self, message: &ClientMessage) -> Reply {
        self.send(message).await;
        self.reply().await
    }

    /// A player from `from` that said Hello.
    async fn player(server: SocketAddr, from: Ipv4Addr, name: &str) -> Peer {
        let mut peer = Peer::connect(server, from).await.expect("connect");
        peer.hello(name).await;
        peer
    }
}

fn create(name: &str, max_players: u16, private: bool) -> ClientMessage {
    create_lobby(name, max_players, private)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

async fn scrape(server: SocketAddr, name: &str) -> f64 {
    let (status, _, body) = http_get(server, "/metrics").await;
    assert_eq!(status, 200);
    metric(&body, name)
}

/// Polls a metric every 50 ms until `done` holds, for at most `limit`.
async fn metric_until(
    server: SocketAddr,
    name: &str,
    limit: Duration,
    done: impl Fn(f64) -> bool,
) -> f64 {
    let until = Instant::now() + limit;
    loop {
        let value = scrape(server, name).await;
        if done(value) || Instant::now() >= until {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Finding 1: one address fills the lobby cap.

#[tokio::test]
async fn one_address_cannot_fill_the_lobby_cap() {
    let mut config = test_config();
    config.max_lobbies = 50;
    let server = spawn_server(config).await;
    // Short connections from one address, each creating one private lobby of one and
    // dropping: the per-connection lobby-op limit never applies.
    let mut created = 0;
    let mut refused = 0;
    for i in 0..60 {
        let mut peer = Peer::player(server.addr, source(1), &format!("a{i}")).await;
        match peer.request(&create("mine", 1, true)).await {
            Reply::Joined(_) => created += 1,
            Reply::Error(code, message) => {
                assert!(
                    code == ErrorCode::RateLimited.as_u16()
                        || code == ErrorCode::ServerFull.as_u16(),
                    "{code}: {message}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        refused > 0,
        "all {created} creations from one address went through"
    );
    // Someone else still gets a lobby, both ways.
    let mut newcomer = Peer::player(server.addr, source(2), "new").await;
    let reply = newcomer.request(&create("ours", 4, false)).await;
    assert!(matches!(reply, Reply::Joined(_)), "CreateLobby: {reply:?}");
    let mut quick = Peer::player(server.addr, source(3), "quick").await;
    let reply = quick.request(&quick_join()).await;
    assert!(matches!(reply, Reply::Joined(_)), "QuickJoin: {reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_abandoned_lobby_closes_soon_and_an_empty_one_does_not_tick() {
    let mut config = test_config();
    config.resume_grace = Duration::from_secs(1);
    let server = spawn_server(config).await;
    // Created and left at once, its creator still connected.
    let mut owner = Peer::player(server.addr, source(1), "owner").await;
    assert!(matches!(
        owner.request(&create("brief", 4, false)).await,
        Reply::Joined(_)
    ));
    owner.send(&ClientMessage::LeaveLobby).await;
    metric_until(
        server.addr,
        "ticksync_players",
        Duration::from_secs(2),
        |n| n == 0.0,
    )
    .await;
    let ticks = scrape(server.addr, "ticksync_ticks_total").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        scrape(server.addr, "ticksync_ticks_total").await,
        ticks,
        "an empty lobby ticked"
    );
    // Created and dropped without a goodbye: its seat waits out the resume grace (1 s),
    // then the lobby closes after the short grace, not --empty-lobby-grace (30 s).
    let mut dropper = Peer::player(server.addr, source(2), "dropper").await;
    assert!(matches!(
        dropper.request(&create("dropped", 1, true)).await,
        Reply::Joined(_)
    ));
    drop(dropper);
    let started = Instant::now();
    let open = metric_until(
        server.addr,
        "ticksync_lobbies",
        Duration::from_secs(8),
        |n| n == 0.0,
    )
    .await;
    assert_eq!(
        open,
        0.0,
        "abandoned lobbies still open after {:?}",
        started.elapsed()
    );
    server.stop().await;
}

// Finding 2: the descriptor limit. The server runs in a child process (this test binary
// again, `fd_child`) started under `ulimit -n 400`, with the default caps (1,024 per
// address): one address opens idle WebSockets until the server stops taking them; a
// newcomer from another address must still play and /healthz must still answer.

/// The child: a server with the default settings, until its standard input closes.
#[test]
fn fd_child() {
    if std::env::var_os("TICKSYNC_FD_CHILD").is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("PORT {}", listener.local_addr().expect("addr").port());
        let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            let _ = closed.send(());
        });
        let stdin_closed = async {
            let _ = stdin_closed.await;
        };
        ticksync_server::run(listener, test_config(), stdin_closed)
            .await
            .expect("server runs");
    });
}

#[tokio::test]
async fn one_address_at_its_cap_leaves_room_under_a_small_descriptor_limit() {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg("ulimit -n 400 && exec \"$0\" --exact fd_child --nocapture --test-threads=1")
        .arg(exe)
        .env("TICKSYNC_FD_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child server");
    let stdout = child.stdout.take().expect("stdout");
    let port = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split("PORT ").nth(1)?.trim().parse::<u16>().ok())
    });
    let port = timeout(Duration::from_secs(30), port)
        .await
        .expect("the child server starts")
        .expect("reader")
        .expect("a port line");
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let url = format!("ws://{server}/ws");
    // The abuser: idle WebSockets from 127.0.0.1, more than the process can hold.
    // Each says Hello, so that no Hello deadline frees them during the test.
    let hello = Message::Binary(Bytes::from(encode_client(&ClientMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        name: "idle".into(),
        resume_token: None,
    })));
    let mut held = Vec::new();
    for _ in 0..450 {
        match timeout(
            Duration::from_secs(1),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        {
            Ok(Ok((mut ws, _))) => {
                let _ = ws.send(hello.clone()).await;
                held.push(ws);
            }
            // Dropped at once: past the address's cap and its margin.
            Ok(Err(_)) => {}
            // Not accepted at all: the server is out of descriptors.
            Err(_) => break,
        }
    }
    // A newcomer from another address plays, and the health check answers.
    let newcomer = timeout(Duration::from_secs(3), async {
        let mut peer = Peer::connect(server, source(2)).await.expect("connect");
        peer.hello("newcomer").await
    })
    .await;
    let health = timeout(Duration::from_secs(3), async {
        let mut stream = tcp_from(server, source(2)).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    })
    .await;
    drop(held);
    // Stop the child: its standard input closes; by its id if it lingers.
    drop(child.stdin.take());
    let stopped = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < stopped {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        newcomer.is_ok(),
        "a newcomer from another address timed out"
    );
    let health = health.expect("/healthz answers");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

// Finding 3: the admin overview is bounded.

#[tokio::test]
async fn the_admin_overview_comes_in_pages() {
    let mut config = test_config();
    config.admin_token = vec!["secret".into()];
    let server = spawn_server(config).await;
    // 64 lobbies from eight addresses (eight each).
    let mut owners = Vec::new();
    for a in 1..=8 {
        for i in 0..8 {
            let mut peer = Peer::player(server.addr, source(a), &format!("p{a}-{i}")).await;
            let reply = peer.request(&create("room", 2, true)).await;
            assert!(matches!(reply, Reply::Joined(_)), "{reply:?}");
            owners.push(peer);
        }
    }
    let auth = [("Authorization", "Bearer secret")];
    let page = |n: u32| {
        let path = format!("/admin/api/overview?page={n}");
        async move {
            let (status, _, body) = http_request(server.addr, "GET", &path, &auth, "").await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<serde_json::Value>(&body).expect("json")
        }
    };
    let first = page(1).await;
    assert_eq!(first["lobbies_total"], 64, "{first}");
    assert_eq!(first["lobbies_open"], 64);
    assert_eq!(first["players"], 64);
    let size = first["page_size"].as_u64().expect("a page size");
    assert!(size < 64);
    let lobbies = first["lobbies"].as_array().expect("lobbies");
    assert_eq!(lobbies.len() as u64, size);
    assert!(
        lobbies
            .iter()
            .all(|l| l["players"].as_array().map(Vec::len) == Some(1))
    );
    let pages = first["pages"].as_u64().expect("pages");
    assert_eq!(pages, 64_u64.div_ceil(size));
    let last = page(u32::try_from(pages).expect("few")).await;
    let rest = last["lobbies"].as_array().expect("lobbies").len() as u64;
    assert_eq!(rest, 64 - (pages - 1) * size);
    server.stop().await;
}

// Finding 4: a crowd of quick-joins fills lobbies instead of scattering.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_quick_joins_fills_lobbies() {
    let server = spawn_server(test_config()).await;
    let addr = server.addr;
    let mut crowd = Vec::new();
    for i in 0..200 {
        crowd.push(Peer::player(addr, source(1), &format!("c{i}")).await);
    }
    // All at once.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(crowd.len()));
    let mut tasks = Vec::new();
    for mut peer in crowd {
        let start = std::sync::Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let reply = peer.request(&quick_join()).await;
            (reply, peer)
        }));
    }
    let mut sizes = std::collections::BTreeMap::<u32, usize>::new();
    let mut peers = Vec::new();
    for task in tasks {
        let (reply, peer) = task.await.expect("task");
        match reply {
            Reply::Joined(joined) => *sizes.entry(joined.lobby_id).or_default() += 1,
            other => panic!("quick-join failed: {other:?}"),
        }
        peers.push(peer);
    }
    let lonely = sizes.values().filter(|&&n| n == 1).count();
    assert!(
        sizes.len() <= 22 && lonely <= 2,
        "{} lobbies, {lonely} with one player: {sizes:?}",
        sizes.len()
    );
    server.stop().await;
}

// Finding 5: connection slots held with no traffic.

#[tokio::test]
async fn unread_http_responses_do_not_hold_a_connection() {
    let mut config = test_config();
    config.write_timeout = Duration::from_millis(500);
    let server = spawn_server(config).await;
    // Pipelined requests whose responses are never read, on a small receive window.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stream = socket.connect(server.addr).await.expect("connect");
    let writer = tokio::spawn(async move {
        let request = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
        let _ = stream.write_all(&request).await;
        // Hold the socket, reading nothing, until the test ends.
        std::future::pending::<()>().await;
    });
    // The server first serves it (two connections open with the scrape's own)...
    let busy = metric_until(
        server.addr,
        "ticksync_connections_open",
        Duration::from_secs(2),
        |n| n >= 2.0,
    )
    .await;
    assert!(busy >= 2.0);
    // ...then cuts it off once its responses stop leaving.
    let open = metric_until(
        server.addr,
        "ticksync_connections_open",
        Duration::from_secs(8),
        |n| n <= 1.0,
    )
    .await;
    writer.abort();
    assert_eq!(
        open, 1.0,
        "a client that reads nothing still holds its connection"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resumable_player_keeps_its_place_under_its_address_cap() {
    let mut config = test_config();
    config.max_connections_per_ip = 2;
    config.resume_grace = Duration::from_secs(30);
    let server = spawn_server(config).await;
    // Two players from one address drop without a goodbye: they may resume.
    let mut first = Peer::connect(server.addr, source(1))
        .await
        .expect("connect");
    let Reply::Welcome(id_1, token_1) = first.hello_with("one", None).await else {
        panic!("welcome");
    };
    let mut second = Peer::connect(server.addr, source(1))
        .await
        .expect("connect");
    second.hello("two").await;
    drop((first, second));
    metric_until(
        server.addr,
        "ticksync_sessions_open",
        Duration::from_secs(5),
        |n| n == 0.0,
    )
    .await;
    // Their address holds both places for their resume grace: a third player from it is
    // refused...
    let mut third = Peer::connect(server.addr, source(1))
        .await
        .expect("connect");
    match third.hello_with("three", None).await {
        Reply::Error(code, _) => {
            assert_eq!(code, ErrorCode::ServerFull.as_u16());
            assert!(matches!(
                third.reply().await,
                Reply::Closed(close::POLICY_VIOLATION)
            ));
        }
        other => panic!("a third player from a full address got {other:?}"),
    }
    // ...but a dropped player takes its place back, and other addresses are not affected.
    let mut back = Peer::connect(server.addr, source(1))
        .await
        .expect("connect");
    let resumed = back.hello_with("one", Some(token_1)).await;
    assert!(
        matches!(resumed, Reply::Welcome(id, _) if id == id_1),
        "{resumed:?}"
    );
    Peer::player(server.addr, source(2), "other").await;
    server.stop().await;
}

// Finding 6: an operator's close gets through a flood of joins at once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_close_is_answered_at_once_during_a_join_flood() {
    let mut config = test_config();
    config.admin_token = vec!["secret".into()];
    let server = spawn_server(config).await;
    let mut owner = Peer::player(server.addr, source(1), "owner").await;
    let Reply::Joined(joined) = owner.request(&create("tiny", 1, false)).await else {
        panic!("create");
    };
    let target = joined.lobby_id;
    // 100 connections each fire a burst of joins to the full lobby (within their own
    // rate limit), all at once, again and again.
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..100u8 {
        let addr = server.addr;
        flood.spawn(async move {
            let mut peer = Peer::player(addr, source(10 + i % 50), &format!("f{i}")).await;
            loop {
                for _ in 0..8 {
                    peer.send(&join_id(target)).await;
                }
                for _ in 0..8 {
                    if matches!(peer.reply().await, Reply::Closed(_)) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(1_700)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let (status, _, body) = http_request(
        server.addr,
        "POST",
        &format!("/admin/api/lobbies/{target}/close"),
        &[("Authorization", "Bearer secret")],
        r#"{"reason":"maintenance"}"#,
    )
    .await;
    let answered = asked.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        answered < Duration::from_millis(500),
        "answered after {answered:?}"
    );
    let left = timeout(Duration::from_secs(1), async {
        loop {
            if let Some(Ok(Message::Binary(b))) = owner.ws.next().await {
                if let Ok(ServerMessage::Left { reason }) = decode_server(&b) {
                    return reason;
                }
            }
        }
    })
    .await
    .expect("the owner is told within a few ticks");
    assert_eq!(left, ticksync_protocol::LeftReason::LobbyClosed as u8);
    flood.abort_all();
    server.stop().await;
}

// Finding 9: guessing is counted, logged and slowed down.

#[tokio::test]
async fn wrong_admin_tokens_are_counted_and_slowed_down() {
    let mut config = test_config();
    config.admin_token = vec!["right".into()];
    let server = spawn_server(config).await;
    let mut statuses = Vec::new();
    for i in 0..25 {
        let bearer = format!("Bearer wrong{i}");
        let (status, _, _) = http_request(
            server.addr,
            "GET",
            "/admin/api/overview",
            &[("Authorization", &bearer)],
            "",
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses[..20], [403; 20]);
    assert_eq!(statuses[20..], [429; 5], "{statuses:?}");
    // While refused, even the right token is: guessing it gains nothing.
    let (status, head, _) = http_request(
        server.addr,
        "GET",
        "/admin/api/overview",
        &[("Authorization", "Bearer right")],
        "",
    )
    .await;
    assert_eq!(status, 429);
    assert!(head.contains("retry-after:"), "{head}");
    let (_, _, metrics) = http_get(server.addr, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "ticksync_auth_failures_total{kind=\"admin_token\"}"
        ),
        20.0
    );
    assert_eq!(
        metric(
            &metrics,
            "ticksync_auth_refused_total{kind=\"admin_token\"}"
        ),
        6.0
    );
    server.stop().await;
}

#[tokio::test]
async fn join_code_guessing_is_slowed_down_across_connections() {
    let server = spawn_server(test_config()).await;
    let mut host = Peer::player(server.addr, source(2), "host").await;
    let Reply::Joined(joined) = host.request(&create("secret room", 8, true)).await else {
        panic!("create");
    };
    let code = joined.code.expect("a private lobby has a code");
    // Guesses from one address, spread over connections (each within its own limit).
    let mut answers = Vec::new();
    for c in 0..4 {
        let mut guesser = Peer::player(server.addr, source(1), &format!("g{c}")).await;
        for i in 0..6 {
            let guess = format!("AAAAA-{c}{i}AAA").replace(['0', '1'], "2");
            let reply = guesser.request(&join_code(guess)).await;
            match reply {
                Reply::Error(code, _) => answers.push(code),
                other => panic!("{other:?}"),
            }
        }
    }
    let not_found = ErrorCode::LobbyNotFound.as_u16();
    let limited = ErrorCode::RateLimited.as_u16();
    assert_eq!(answers[..20], [not_found; 20], "{answers:?}");
    assert_eq!(answers[20..], [limited; 4], "{answers:?}");
    // Now even the right code is refused to that address, not to others.
    let mut guesser = Peer::player(server.addr, source(1), "lucky").await;
    let reply = guesser.request(&join_code(code.clone())).await;
    assert!(
        matches!(reply, Reply::Error(c, _) if c == limited),
        "{reply:?}"
    );
    let mut friend = Peer::player(server.addr, source(3), "friend").await;
    let reply = friend.request(&join_code(code)).await;
    assert!(matches!(reply, Reply::Joined(_)), "{reply:?}");
    assert_eq!(
        scrape(
            server.addr,
            "ticksync_auth_failures_total{kind=\"join_code\"}"
        )
        .await,
        20.0
    );
    server.stop().await;
}

// Finding 10: pages, names and notices.

#[tokio::test]
async fn every_response_carries_the_policy_headers() {
    let server = spawn_server(test_config()).await;
    for path in [
        "/",
        "/monitor",
        "/healthz",
        "/api/lobbies",
        "/metrics",
        "/nope",
        "/admin/api/overview",
        "/ws",
    ] {
        let (_, head, _) = http_get(server.addr, path).await;
        for header in [
            "content-security-policy: default-src 'self'; connect-src 'self';",
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
            "referrer-policy: no-referrer",
        ] {
            assert!(head.contains(header), "{path}: no {header:?} in\n{head}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn invisible_and_direction_characters_are_refused_in_names() {
    let server = spawn_server(test_config()).await;
    let invalid = ErrorCode::InvalidName.as_u16();
    let mut peer = Peer::connect(server.addr, source(1))
        .await
        .expect("connect");
    for name in [
        "adm\u{200b}in",
        "\u{202e}nimda",
        "a\u{2066}b\u{2069}",
        "\u{feff}x",
    ] {
        let reply = peer.hello_with(name, None).await;
        assert!(
            matches!(reply, Reply::Error(c, _) if c == invalid),
            "{name:?}: {reply:?}"
        );
    }
    peer.hello("admin").await;
    let reply = peer.request(&create("lob\u{200d}by", 2, false)).await;
    assert!(
        matches!(reply, Reply::Error(c, _) if c == invalid),
        "{reply:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn notices_reach_players_as_plain_text() {
    let mut config = test_config();
    config.admin_token = vec!["secret".into()];
    let server = spawn_server(config).await;
    let mut player = Peer::player(server.addr, source(1), "reader").await;
    let (status, _, body) = http_request(
        server.addr,
        "POST",
        "/admin/api/notice",
        &[("Authorization", "Bearer secret")],
        r#"{"text":"\u001b[31mhi\r\nthere\u0000 \u202eevil"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    match player.reply().await {
        Reply::Notice(text) => assert_eq!(text, "[31mhi  there evil"),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}
