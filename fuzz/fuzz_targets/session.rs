//! The session state machine under arbitrary sequences of client frames, over an
//! in-memory pipe to a real session: no panic, every server message decodes, every close
//! code is documented. The input is split into frames: the first byte of each chunk picks
//! the kind (binary, text, ping), the next its length.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ticksync_server::Config;
use ticksync_server::testing::{DOCUMENTED_CLOSE_CODES, Harness, drive};
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
    let outcome = runtime.block_on(async {
        let harness = Harness::new(config);
        let outcome = drive(&harness, frames(data)).await;
        harness.shutdown().await;
        outcome
    });
    assert_eq!(outcome.undecodable, 0);
    if let Some(code) = outcome.close_code {
        assert!(DOCUMENTED_CLOSE_CODES.contains(&code), "close code {code}");
    }
});
