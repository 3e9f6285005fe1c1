//! Checksummed frames for append-only files: what one group commit appends
//! is one frame, checked by length and CRC-32C, so a crash in the middle of
//! a write leaves a torn tail that ends the readable part instead of
//! corrupting it. The ingest journal and the access-log journal share it.
//!
//! ```text
//! file    MAGIC frame*
//! frame   u32 LE payload length | u32 LE CRC-32C of payload | payload
//! ```

/// A frame claiming more than this is garbage, not a commit.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Appends one frame to `out` whose payload `fill` writes.
pub fn put_frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    fill(out);
    let payload_len = out.len() - start - 8;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4]
        .copy_from_slice(&u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the intact frames of `bytes` (which start at a frame boundary)
/// in order, handing each payload to `each`; stops at the first frame that
/// is short, too long, fails its CRC or that `each` rejects (`None`).
/// Returns the length of the intact part: everything after it was never
/// acknowledged.
pub fn read_frames<'a>(bytes: &'a [u8], mut each: impl FnMut(&'a [u8]) -> Option<()>) -> usize {
    let mut pos = 0;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_FRAME {
            break;
        }
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32c::crc32c(payload) != crc || each(payload).is_none() {
            break;
        }
        pos += 8 + len;
    }
    pos
}

/// Syncs directory `dir`, so a file created, renamed or removed in it
/// survives power loss.
pub fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

/// The CRC of `payload` as a frame carries it (for tests that forge frames).
pub fn crc(payload: &[u8]) -> u32 {
    crc32c::crc32c(payload)
}

/// Little-endian field readers and writers for frame payloads.
pub mod fields {
    /// Takes `N` bytes off the front of `p`.
    pub fn take<const N: usize>(p: &mut &[u8]) -> Option<[u8; N]> {
        let (head, rest) = p.split_first_chunk::<N>()?;
        *p = rest;
        Some(*head)
    }

    pub fn take_i64(p: &mut &[u8]) -> Option<i64> {
        take(p).map(i64::from_le_bytes)
    }

    /// A string prefixed by its u32 length.
    pub fn take_str(p: &mut &[u8]) -> Option<String> {
        take_str_ref(p).map(str::to_string)
    }

    /// [`take_str`], borrowing.
    pub fn take_str_ref<'a>(p: &mut &'a [u8]) -> Option<&'a str> {
        let len = u32::from_le_bytes(take(p)?) as usize;
        let s = std::str::from_utf8(p.get(..len)?).ok()?;
        *p = &p[len..];
        Some(s)
    }

    /// A string prefixed by its u16 length.
    pub fn take_str16(p: &mut &[u8]) -> Option<String> {
        take_str16_ref(p).map(str::to_string)
    }

    /// [`take_str16`], borrowing.
    pub fn take_str16_ref<'a>(p: &mut &'a [u8]) -> Option<&'a str> {
        let len = usize::from(u16::from_le_bytes(take(p)?));
        let s = std::str::from_utf8(p.get(..len)?).ok()?;
        *p = &p[len..];
        Some(s)
    }

    /// Strings longer than a u16 never reach here (device ids are at most
    /// 64 bytes, protocol names are ours); clamp rather than panic.
    pub fn put_str16(out: &mut Vec<u8>, s: &str) {
        let b = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&u16::try_from(b.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(b);
    }

    /// A string prefixed by its u32 length (input is bounded far below).
    pub fn put_str(out: &mut Vec<u8>, s: &str) {
        let b = &s.as_bytes()[..s.len().min(u32::MAX as usize)];
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(b);
    }

    /// `0` for none, `1` and the string for some.
    pub fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_str(out, s);
            }
        }
    }

    pub fn take_opt_str(p: &mut &[u8]) -> Option<Option<String>> {
        take_opt_str_ref(p).map(|s| s.map(str::to_string))
    }

    /// [`take_opt_str`], borrowing.
    pub fn take_opt_str_ref<'a>(p: &mut &'a [u8]) -> Option<Option<&'a str>> {
        match take::<1>(p)? {
            [0] => Some(None),
            [1] => take_str_ref(p).map(Some),
            _ => None,
        }
    }

    /// `0` for none, `1` and the integer for some.
    pub fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
        match v {
            None => out.push(0),
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
    }

    pub fn take_opt_i64(p: &mut &[u8]) -> Option<Option<i64>> {
        match take::<1>(p)? {
            [0] => Some(None),
            [1] => take_i64(p).map(Some),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files written before the hardware CRC must still read: the check
    /// value of CRC-32C (Castagnoli, as in iSCSI) is `0xE3069283`.
    #[test]
    fn frames_carry_crc32c() {
        assert_eq!(crc(b"123456789"), 0xE306_9283);
        assert_eq!(crc(b""), 0);
        let mut out = Vec::new();
        put_frame(&mut out, |o| o.extend_from_slice(b"123456789"));
        assert_eq!(&out[..8], &[9, 0, 0, 0, 0x83, 0x92, 0x06, 0xE3]);
        let mut seen = Vec::new();
        assert_eq!(
            read_frames(&out, |p| {
                seen.push(p.to_vec());
                Some(())
            }),
            out.len()
        );
        assert_eq!(seen, vec![b"123456789".to_vec()]);
    }
}
