//! The session state machine under arbitrary sequences of client frames, over an
//! in-memory pipe to a real session: no panic, and what the client saw keeps the
//! protocol's promises (`ticksync_server::testing::check`: every message decodes, close
//! codes are documented, snapshots move forward, acks never go back, deltas apply to the
//! snapshot before them). The input is split into frames: the first byte of each chunk
//! picks the kind (binary, text, ping), the next its length.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ticksync_protocol::ClientMessage;
use ticksync_server::Config;
use ticksync_server::testing::{Harness, check, drive};
use tokio_tungstenite::tungstenite::Message;

fn frames(mut data: &[u8]) -> Vec<Message> {
    let mut frames = Vec::new();
    while let [kind, len, rest @ ..] = data {
        let len = usize::from(*len).min(rest.len());
        let (body, next) = rest.split_at(len);
        frames.push(match kind % 8 {
            0 => Message::text(String::from_utf8_lossy(body).into_owned()),
            1 => Message::Ping(Bytes::copy_from_slice(body)),
            _ => Message::Binary(Bytes::copy_from_slice(body)),
        });
        data = next;
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = Config::default();
    config.hello_timeout = std::time::Duration::from_millis(200);
    let frames = frames(data);
    // Deltas are the default: a delta is unasked for only if the script asked for full
    // snapshots before its first lobby request and never for deltas.
    let mut entered = false;
    let mut full_first = false;
    let mut asked_deltas = false;
    for f in &frames {
        let Message::Binary(b) = f else { continue };
        match ticksync_protocol::decode_client(b) {
            Ok(ClientMessage::Options { delta_snapshots: true }) => asked_deltas = true,
            Ok(ClientMessage::Options { delta_snapshots: false }) if !entered => full_first = true,
            Ok(
                ClientMessage::CreateLobby { .. }
                | ClientMessage::JoinLobby { .. }
                | ClientMessage::QuickJoin { .. },
            ) => entered = true,
            _ => {}
        }
    }
    let deltas_asked = asked_deltas || !full_first;
    let outcome = runtime.block_on(async {
        let harness = Harness::new(config);
        let outcome = drive(&harness, frames).await;
        harness.shutdown().await;
        outcome
    });
    if let Err(broken) = check(&outcome, deltas_asked) {
        panic!("{broken}");
    }
});
