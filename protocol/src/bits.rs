//! Bit packing for the game-state encoding (protocol 2): LSB-first.
//!
//! Bit `i` of a stream is bit `i % 8` of byte `i / 8`; a value of `n` bits is written low
//! bit first. So 32 bits written at a byte boundary are the value's 4 little-endian bytes,
//! and a reader needs only shifts and masks (the JavaScript decoder does the same with
//! `>>>` on 32-bit numbers). A stream ends on a byte boundary: the last byte is padded
//! with zero bits.
//!
//! [`BitWriter::var`] / [`BitReader::var`] are the variable-length integers of counts and
//! id gaps ("var4"): groups of 4 bits, each 3 value bits (low first) and a continuation
//! bit; values 0..=7 take 4 bits, 8..=63 take 8, up to 11 groups for a `u32`.

/// Bits in one var4 group: 3 value bits and a continuation bit.
pub const VAR_GROUP_BITS: u32 = 4;

/// Appends bits to a byte buffer.
#[derive(Debug)]
pub struct BitWriter<'a> {
    /// The buffer written to; bytes before `start` are not ours.
    out: &'a mut Vec<u8>,
    /// Bits not yet flushed to `out`, the oldest at bit 0.
    acc: u64,
    /// How many bits of `acc` are in use (always below 64 between calls: it is flushed
    /// 8 bytes at a time).
    fill: u32,
    /// Where this stream started in `out`.
    start: usize,
}

impl<'a> BitWriter<'a> {
    /// A writer appending to `out` (at its current end, a byte boundary).
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        let start = out.len();
        Self {
            out,
            acc: 0,
            fill: 0,
            start,
        }
    }

    /// Writes the low `bits` bits of `value` (`bits` at most 32; higher bits of `value`
    /// are ignored).
    #[inline]
    pub fn write(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        self.write_long(u64::from(value), bits);
    }

    /// Writes the low `bits` bits of `value` (`bits` at most 64; higher bits of `value`
    /// are ignored): a row's fixed-width fields gathered into one word at once.
    #[inline]
    pub fn write_long(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return;
        }
        let masked = if bits >= 64 {
            value
        } else {
            value & ((1u64 << bits) - 1)
        };
        let fill = self.fill;
        self.acc |= masked << fill;
        if fill + bits >= 64 {
            self.out.extend_from_slice(&self.acc.to_le_bytes());
            // The value's bits that did not fit (none if the word was empty).
            self.acc = if fill == 0 { 0 } else { masked >> (64 - fill) };
            self.fill = fill + bits - 64;
        } else {
            self.fill = fill + bits;
        }
    }

    /// Writes one bit.
    #[inline]
    pub fn bit(&mut self, value: bool) {
        self.write(u32::from(value), 1);
    }

    /// Writes a var4 integer.
    #[inline]
    pub fn var(&mut self, value: u32) {
        match var_code(value) {
            Some((code, bits)) => self.write(code, bits),
            None => self.var_long(value),
        }
    }

    /// A var4 integer of more than 8 groups.
    #[cold]
    fn var_long(&mut self, value: u32) {
        let (code, bits) = var_code_long(value);
        self.write_long(code, bits);
    }

    /// Takes the unfinished word into a [`Gather`]; [`Gather::flush`] gives it back.
    #[inline(always)]
    pub(crate) fn gather(&mut self) -> Gather {
        let g = Gather {
            acc: self.acc,
            n: self.fill,
        };
        (self.acc, self.fill) = (0, 0);
        g
    }

    /// Bits written so far.
    pub fn bits_written(&self) -> usize {
        (self.out.len() - self.start) * 8 + self.fill as usize
    }

    /// Pads to a byte boundary with zero bits and flushes; returns the stream's length in
    /// bytes.
    pub fn finish(mut self) -> usize {
        while self.fill > 0 {
            self.out.push((self.acc & 0xff) as u8);
            self.acc >>= 8;
            self.fill = self.fill.saturating_sub(8);
        }
        self.out.len() - self.start
    }
}

/// A [`BitWriter`]'s unfinished word taken into registers ([`BitWriter::gather`]) while
/// a row or a whole body is appended, and handed back by [`Gather::flush`]: the
/// writer's own state lives behind a reference, and one load and store of it per field
/// was most of the cost of writing a row. It appends whole 64-bit words to the buffer
/// itself, so the writer sees only the last, unfinished one. Between the two, nothing
/// else writes to the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gather {
    acc: u64,
    /// Bits of `acc` in use, below 64.
    n: u32,
}

impl Gather {
    /// Appends the low `bits` bits of `v` (`bits` at most 32; 0 appends nothing).
    #[inline(always)]
    pub(crate) fn put(&mut self, w: &mut BitWriter<'_>, v: u32, bits: u32) {
        self.put_long(w, u64::from(v) & ((1u64 << bits) - 1), bits);
    }

    /// Appends `v` as `bits` bits, `bits` at most 64 (0 appends nothing); `v` has no
    /// higher bits set.
    #[inline(always)]
    pub(crate) fn put_long(&mut self, w: &mut BitWriter<'_>, v: u64, bits: u32) {
        debug_assert!(bits == 64 || v >> bits == 0);
        let low = self.acc | (v << self.n);
        let total = self.n + bits;
        if total >= 64 {
            w.out.extend_from_slice(&low.to_le_bytes());
            // The bits of `v` past the word: `v >> (64 - n)`, none when `n` is 0 (two
            // shifts, as one of 64 is not one).
            self.acc = (v >> 1) >> (63 - self.n);
            self.n = total - 64;
        } else {
            self.acc = low;
            self.n = total;
        }
    }

    /// Appends a var4 integer. Always inlined, the rare long values out of line: a call
    /// taking `&mut self` would keep the word in memory in every caller.
    #[inline(always)]
    pub(crate) fn var(&mut self, w: &mut BitWriter<'_>, v: u32) {
        if v < 8 {
            self.put_long(w, u64::from(v), VAR_GROUP_BITS);
        } else if v < 64 {
            self.put_long(
                w,
                u64::from((v & 7) | 8 | ((v >> 3) << 4)),
                2 * VAR_GROUP_BITS,
            );
        } else {
            *self = self.var_long(w, v);
        }
    }

    #[inline(never)]
    fn var_long(mut self, w: &mut BitWriter<'_>, v: u32) -> Self {
        let (code, bits) = var_code_long(v);
        self.put_long(w, code, bits);
        self
    }

    /// Hands the unfinished word back to the writer.
    #[inline(always)]
    pub(crate) fn flush(self, w: &mut BitWriter<'_>) {
        w.acc = self.acc;
        w.fill = self.n;
    }
}

/// The var4 encoding of `value` as one value of at most 32 bits and its length, for
/// values of at most 8 groups (below 2^24); None for larger ones.
#[inline]
pub fn var_code(value: u32) -> Option<(u32, u32)> {
    // Counts, gaps and small scores: one or two groups.
    if value < 8 {
        return Some((value, VAR_GROUP_BITS));
    }
    if value < 64 {
        return Some(((value & 7) | 8 | ((value >> 3) << 4), 2 * VAR_GROUP_BITS));
    }
    if value >= 1 << 24 {
        return None;
    }
    let (code, bits) = var_code_long(value);
    // At most 8 groups: 32 bits.
    Some((code as u32, bits))
}

/// The var4 encoding of any `value` and its length: at most 11 groups, 44 bits.
fn var_code_long(value: u32) -> (u64, u32) {
    let (mut rest, mut code, mut bits) = (value, 0u64, 0u32);
    loop {
        let group = rest & 7;
        rest >>= 3;
        let more = rest != 0;
        code |= u64::from(group | (u32::from(more) << 3)) << bits;
        bits += VAR_GROUP_BITS;
        if !more {
            return (code, bits);
        }
    }
}

/// Bits in a var4 encoding of `value`.
pub fn var_bits(value: u32) -> u32 {
    let significant = 32 - value.leading_zeros();
    significant.div_ceil(3).max(1) * VAR_GROUP_BITS
}

/// Bits needed for every value in `0..=max`.
pub fn bits_for(max: u64) -> u32 {
    64 - max.leading_zeros()
}

/// `bytes`' last 8 bytes, or all of them zero-padded, as a little-endian word.
fn tail_of(bytes: &[u8]) -> u64 {
    if let Some(last) = bytes.last_chunk::<8>() {
        return u64::from_le_bytes(*last);
    }
    bytes
        .iter()
        .enumerate()
        .fold(0, |t, (i, &b)| t | u64::from(b) << (8 * i))
}

/// A stream ended before a value was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bit stream ended early")]
pub struct EndOfStream;

/// Reads bits from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    /// The stream.
    bytes: &'a [u8],
    /// The next bit to read.
    pos: usize,
    /// Past the end, read zero bits instead of failing (a trimmed per-player part).
    zero_tail: bool,
    /// The stream's last 8 bytes (all of it, zero-padded, if shorter), little-endian:
    /// a read less than 8 bytes from the end takes its bits from here, loaded once
    /// (a message as short as an input is all tail: a copy per read cost more than the
    /// decoding).
    tail: u64,
}

impl<'a> BitReader<'a> {
    /// A reader of `bytes`; reading past the end fails.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            zero_tail: false,
            tail: tail_of(bytes),
        }
    }

    /// A reader of `bytes` followed by as many zero bits as asked for: trailing zero
    /// bytes may have been trimmed off.
    pub fn with_zero_tail(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            zero_tail: true,
            tail: tail_of(bytes),
        }
    }

    /// Reads `bits` bits (at most 32), low bit first.
    #[inline]
    pub fn read(&mut self, bits: u32) -> Result<u32, EndOfStream> {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return Ok(0);
        }
        let end = self.pos + bits as usize;
        if end > self.bytes.len() * 8 && !self.zero_tail {
            return Err(EndOfStream);
        }
        // Eight bytes from the first one covering the range (zeros past the end) hold
        // the whole range: at most 7 bits of offset plus 32 bits.
        let first = (self.pos / 8).min(self.bytes.len());
        let avail = &self.bytes[first..];
        let acc = match avail.first_chunk::<8>() {
            // Away from the end: one load, no copy of a variable length.
            Some(eight) => u64::from_le_bytes(*eight),
            // Near it: the tail word from byte `first` on (none left at the very end).
            None => {
                let from = self.bytes.len().saturating_sub(8);
                self.tail
                    .checked_shr(8 * (first - from) as u32)
                    .unwrap_or(0)
            }
        };
        let value = (acc >> (self.pos % 8)) & ((1u64 << bits) - 1);
        self.pos = end;
        Ok(value as u32)
    }

    /// Reads one bit.
    #[inline]
    pub fn bit(&mut self) -> Result<bool, EndOfStream> {
        Ok(self.read(1)? == 1)
    }

    /// Reads a var4 integer; more than 11 groups, or a value over `u32::MAX`, is an
    /// error (reported as the end of the stream: the bytes are not a valid stream).
    pub fn var(&mut self) -> Result<u32, EndOfStream> {
        let mut value = 0u64;
        for group in 0..11 {
            let g = self.read(VAR_GROUP_BITS)?;
            value |= u64::from(g & 7) << (3 * group);
            if g & 8 == 0 {
                return u32::try_from(value).map_err(|_| EndOfStream);
            }
        }
        Err(EndOfStream)
    }

    /// Bits left before the end of the bytes (ignoring any zero tail).
    pub fn remaining(&self) -> usize {
        (self.bytes.len() * 8).saturating_sub(self.pos)
    }

    /// True if everything left is at most 7 zero padding bits of the last byte.
    pub fn at_padded_end(&self) -> bool {
        let len = self.bytes.len() * 8;
        if self.pos > len || len - self.pos >= 8 {
            return self.pos >= len;
        }
        let rest = len - self.pos;
        if rest == 0 {
            return true;
        }
        let last = self.bytes[self.bytes.len() - 1];
        last >> (8 - rest) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsb_first_layout() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(1, 1);
        w.write(0b10, 2);
        w.write(0x1f, 5);
        w.write(0xabcd, 16);
        w.write(3, 3);
        assert_eq!(w.finish(), 4);
        assert_eq!(out, [0b1111_1101, 0xcd, 0xab, 0b011]);
        let mut r = BitReader::new(&out);
        assert_eq!(r.read(1), Ok(1));
        assert_eq!(r.read(2), Ok(2));
        assert_eq!(r.read(5), Ok(0x1f));
        assert_eq!(r.read(16), Ok(0xabcd));
        assert_eq!(r.read(3), Ok(3));
        assert!(r.at_padded_end());
        assert_eq!(r.read(6), Err(EndOfStream));
    }

    #[test]
    fn var_roundtrip_and_sizes() {
        for v in [0, 1, 7, 8, 63, 64, 511, 512, 70_000, u32::MAX] {
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            w.bit(true);
            w.var(v);
            assert_eq!(w.bits_written(), 1 + var_bits(v) as usize, "{v}");
            w.finish();
            let mut r = BitReader::new(&out);
            assert_eq!(r.bit(), Ok(true));
            assert_eq!(r.var(), Ok(v));
        }
        assert_eq!(var_bits(7), 4);
        assert_eq!(var_bits(8), 8);
        assert_eq!(var_bits(u32::MAX), 44);
        // 12 groups of "more" never end a valid var.
        assert_eq!(BitReader::new(&[0xff; 8]).var(), Err(EndOfStream));
    }

    #[test]
    fn full_words_and_zero_tail() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(5, 3);
        w.write(u32::MAX, 32);
        w.write(0x1234_5678, 32);
        w.finish();
        let mut r = BitReader::new(&out);
        assert_eq!(r.read(3), Ok(5));
        assert_eq!(r.read(32), Ok(u32::MAX));
        assert_eq!(r.read(32), Ok(0x1234_5678));
        let mut z = BitReader::with_zero_tail(&[0x01]);
        assert_eq!(z.read(1), Ok(1));
        assert_eq!(z.read(32), Ok(0));
        assert_eq!(z.var(), Ok(0));
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(255), 8);
        assert_eq!(bits_for(256), 9);
    }

    /// The bytes of a stream built bit by bit without a `BitWriter` (LSB first, zero
    /// padded): the reference `write_long` and `var` must match.
    fn bit_by_bit(ops: &[(u64, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        for &(v, bits) in ops {
            for i in 0..bits {
                if pos % 8 == 0 {
                    out.push(0);
                }
                if (v >> i) & 1 == 1 {
                    out[pos / 8] |= 1 << (pos % 8);
                }
                pos += 1;
            }
        }
        out
    }

    #[test]
    fn long_writes_match_single_bits_at_every_offset() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for offset in 0..64 {
            let mut ops = vec![(u64::MAX, offset)];
            for _ in 0..40 {
                let bits = (next() % 65) as u32;
                ops.push((next(), bits));
            }
            ops.push((u64::MAX, 64));
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            for &(v, bits) in &ops {
                if bits <= 32 && v & 1 == 0 {
                    w.write(v as u32, bits);
                } else {
                    w.write_long(v, bits);
                }
            }
            let len = w.finish();
            assert_eq!(len, out.len());
            assert_eq!(out, bit_by_bit(&ops), "offset {offset}");

            // The same through a gather, handed back and taken again now and then (as
            // around a direct write), after a first direct write.
            let mut gathered = Vec::new();
            let mut w = BitWriter::new(&mut gathered);
            w.write_long(ops[0].0, ops[0].1);
            let mut g = w.gather();
            for (i, &(v, bits)) in ops.iter().enumerate().skip(1) {
                let v = if bits == 64 {
                    v
                } else {
                    v & ((1u64 << bits) - 1)
                };
                if bits <= 32 && v & 1 == 0 {
                    g.put(&mut w, v as u32, bits);
                } else {
                    g.put_long(&mut w, v, bits);
                }
                if i % 7 == 0 {
                    g.flush(&mut w);
                    g = w.gather();
                }
            }
            g.flush(&mut w);
            w.finish();
            assert_eq!(gathered, out, "gathered, offset {offset}");
        }
    }

    #[test]
    fn reads_near_the_end_are_bit_by_bit_reads() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..20usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let bit = |i: usize| bytes.get(i / 8).map_or(0, |b| u32::from(b >> (i % 8) & 1));
            for start in 0..=len * 8 {
                for bits in 0..=32u32 {
                    let expected: u32 = (0..bits as usize).map(|k| bit(start + k) << k).sum();
                    let fits = start + bits as usize <= len * 8;
                    for zero_tail in [false, true] {
                        let mut r = if zero_tail {
                            BitReader::with_zero_tail(&bytes)
                        } else {
                            BitReader::new(&bytes)
                        };
                        let mut at = start;
                        while at > 0 {
                            let step = at.min(32);
                            r.read(step as u32).expect("within the stream");
                            at -= step;
                        }
                        let got = r.read(bits);
                        if fits || zero_tail {
                            assert_eq!(got, Ok(expected), "len {len} at {start}, {bits} bits");
                        } else {
                            assert_eq!(got, Err(EndOfStream), "len {len} at {start}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gathered_var4_is_the_writers_var4() {
        for v in (0..5000).chain([u32::MAX, 1 << 24, (1 << 24) - 1, 123_456_789]) {
            let (mut direct, mut gathered) = (Vec::new(), Vec::new());
            let mut w = BitWriter::new(&mut direct);
            w.write(1, 3);
            w.var(v);
            w.finish();
            let mut w = BitWriter::new(&mut gathered);
            w.write(1, 3);
            let mut g = w.gather();
            g.var(&mut w, v);
            g.flush(&mut w);
            w.finish();
            assert_eq!(direct, gathered, "{v}");
        }
    }

    #[test]
    fn var_code_is_the_group_by_group_encoding() {
        let mut values: Vec<u32> = (0..600).collect();
        for shift in 3..32 {
            let edge = 1u32 << shift;
            values.extend([edge - 1, edge, edge + 1]);
        }
        values.push(u32::MAX);
        for v in values {
            let (mut rest, mut ops) = (v, Vec::new());
            loop {
                let more = rest >> 3 != 0;
                ops.push((
                    u64::from((rest & 7) | (u32::from(more) << 3)),
                    VAR_GROUP_BITS,
                ));
                rest >>= 3;
                if !more {
                    break;
                }
            }
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            w.var(v);
            w.finish();
            assert_eq!(out, bit_by_bit(&ops), "{v}");
            match var_code(v) {
                Some((code, bits)) => {
                    assert!(v < 1 << 24, "{v}");
                    assert_eq!(bits, var_bits(v), "{v}");
                    assert_eq!(bit_by_bit(&[(u64::from(code), bits)]), out, "{v}");
                }
                None => assert!(v >= 1 << 24, "{v}"),
            }
        }
    }
}
