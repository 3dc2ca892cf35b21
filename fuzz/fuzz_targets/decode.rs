//! Message decoding on arbitrary bytes: never a panic, and whatever decodes re-encodes
//! to bytes that decode to the same message. (Not to the same bytes: the decoder also
//! accepts non-minimal varints, which the encoder never writes.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticksync_protocol::{decode_client, decode_server, encode_client, encode_server};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode_client(data) {
        let again = decode_client(&encode_client(&message)).expect("re-encoding decodes");
        assert_eq!(format!("{again:?}"), format!("{message:?}"));
    }
    if let Ok(message) = decode_server(data) {
        let again = decode_server(&encode_server(&message)).expect("re-encoding decodes");
        assert_eq!(format!("{again:?}"), format!("{message:?}"));
    }
});
