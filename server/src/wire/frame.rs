//! WebSocket frames as the server writes them itself (server to client: final,
//! unmasked binary frames), built without tungstenite so that the tick task can hand
//! whole frames to the outbox.

use bytes::Bytes;

/// Writes a WebSocket binary frame header (server to client: final, unmasked) for a
/// payload of `len` bytes.
pub(crate) fn write_binary_header(len: usize, out: &mut Vec<u8>) {
    const FIN_BINARY: u8 = 0x82;
    if len < 126 {
        out.extend_from_slice(&[FIN_BINARY, len as u8]);
    } else if let Ok(len) = u16::try_from(len) {
        out.extend_from_slice(&[FIN_BINARY, 126]);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.extend_from_slice(&[FIN_BINARY, 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The payload length of a frame built by [`write_binary_header`] (the byte counters
/// count payloads, as for the session's own messages).
pub(crate) fn payload_len(frame: &[u8]) -> usize {
    let header = match frame.get(1) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.len().saturating_sub(header)
}

/// `payload` as one WebSocket binary frame.
pub(crate) fn binary_frame(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 10);
    write_binary_header(payload.len(), &mut out);
    out.extend_from_slice(payload);
    Bytes::from(out)
}
