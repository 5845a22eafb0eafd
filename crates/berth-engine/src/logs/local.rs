//! Docker's `local` log driver format: each record is a protobuf `LogEntry` (moby's
//! api/types/plugins/logdriver/entry.proto: source = 1, time_nano = 2, line = 3,
//! partial = 4) framed by its length as a 4-byte big-endian integer before and after.
//! The message is small and fixed, so it is encoded here rather than through a
//! protobuf crate.

use super::{Entry, Stream};

/// Docker's local driver refuses larger records; a bigger length is corruption.
const MAX_RECORD: usize = 1 << 20;

/// One framed record. `line` excludes the newline; `partial`: the line goes on in the
/// next record (split at the size limit, or unterminated at the end of the stream).
pub fn encode(stream: Stream, line: &[u8], partial: bool, time_nano: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(line.len() + 32);
    let source = stream.name().as_bytes();
    m.push(0x0a);
    varint(&mut m, source.len() as u64);
    m.extend_from_slice(source);
    m.push(0x10);
    varint(&mut m, time_nano as u64);
    m.push(0x1a);
    varint(&mut m, line.len() as u64);
    m.extend_from_slice(line);
    if partial {
        m.extend_from_slice(&[0x20, 1]);
    }
    let len = (m.len() as u32).to_be_bytes();
    let mut out = Vec::with_capacity(m.len() + 8);
    out.extend_from_slice(&len);
    out.extend_from_slice(&m);
    out.extend_from_slice(&len);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A record and the bytes it took.
    Entry(Entry, usize),
    /// Not all of the record is there yet.
    Incomplete,
}

/// The first record of `buf`; Err names what is wrong with a damaged one.
pub fn decode(buf: &[u8]) -> Result<Decoded, String> {
    if buf.len() < 4 {
        return Ok(Decoded::Incomplete);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_RECORD {
        return Err(format!("record length {len} over {MAX_RECORD}"));
    }
    if buf.len() < len + 8 {
        return Ok(Decoded::Incomplete);
    }
    let msg = &buf[4..4 + len];
    if buf[4 + len..8 + len] != buf[..4] {
        return Err("record lengths before and after differ".into());
    }
    let (mut source, mut time_nano, mut line, mut partial) = ("", 0i64, &[][..], false);
    let mut pos = 0;
    while pos < msg.len() {
        let key = read_varint(msg, &mut pos).ok_or("truncated field key")?;
        match key & 7 {
            0 => {
                let v = read_varint(msg, &mut pos).ok_or("truncated varint")?;
                match key >> 3 {
                    2 => time_nano = v as i64,
                    4 => partial = v != 0,
                    _ => {}
                }
            }
            2 => {
                let n = read_varint(msg, &mut pos).ok_or("truncated length")? as usize;
                let data = msg.get(pos..pos + n).ok_or("field longer than its record")?;
                pos += n;
                match key >> 3 {
                    1 => source = std::str::from_utf8(data).map_err(|_| "source is not UTF-8")?,
                    3 => line = data,
                    _ => {}
                }
            }
            // Fixed-size wire types, skipped (none in a LogEntry today).
            1 => pos += 8,
            5 => pos += 4,
            t => return Err(format!("wire type {t} in a log record")),
        }
    }
    let mut log = String::from_utf8_lossy(line).into_owned();
    if !partial {
        log.push('\n');
    }
    let (secs, nanos) = (
        time_nano.div_euclid(1_000_000_000),
        time_nano.rem_euclid(1_000_000_000) as u32,
    );
    let e = Entry {
        log,
        stream: source.to_string(),
        time: berth_runtime::state::rfc3339(secs, nanos),
    };
    Ok(Decoded::Entry(e, len + 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_framing() {
        let t = 1_700_000_000_123_456_789;
        let b = encode(Stream::Stderr, b"hello", false, t);
        // 4-byte length, the message, the same length again.
        assert_eq!(&b[..4], &b[b.len() - 4..]);
        assert_eq!(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize, b.len() - 8);
        let Decoded::Entry(e, used) = decode(&b).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(used, b.len());
        assert_eq!((e.stream.as_str(), e.log.as_str()), ("stderr", "hello\n"));
        assert_eq!(e.timestamp(), Some((1_700_000_000, 123_456_789)));
        let p = encode(Stream::Stdout, b"no newline", true, t);
        let Decoded::Entry(e, _) = decode(&p).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(e.log, "no newline");
        // Half a record waits for more; a damaged one is an error.
        assert_eq!(decode(&b[..b.len() - 1]).unwrap(), Decoded::Incomplete);
        let mut bad = b.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0]).is_err());
    }

    /// The bytes protoc produces for LogEntry{source:"stdout", time_nano:1, line:"a"}.
    #[test]
    fn matches_protobuf_encoding() {
        let b = encode(Stream::Stdout, b"a", false, 1);
        assert_eq!(
            &b[4..b.len() - 4],
            &[0x0a, 6, b's', b't', b'd', b'o', b'u', b't', 0x10, 1, 0x1a, 1, b'a']
        );
    }
}
