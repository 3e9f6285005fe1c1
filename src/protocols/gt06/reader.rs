//! A bounds-checked cursor over a frame's content (the bytes between the
//! protocol number and the serial number). Every read names what it reads,
//! so a short frame is rejected as `Malformed { what, offset }` with the
//! offset in the whole frame, never a panic.

use crate::protocol::DecodeError;

#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the frame, for error messages.
    base: usize,
}

type R<T> = Result<T, DecodeError>;

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The byte `ahead` positions after the cursor, without reading it.
    pub(super) fn peek(&self, ahead: usize) -> Option<u8> {
        self.buf.get(self.pos.saturating_add(ahead)).copied()
    }

    /// The unread bytes, without reading them.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            what,
            offset: self.base.saturating_add(self.pos),
        }
    }

    /// The next `n` bytes.
    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.error(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.error(what))?;
        self.pos = end;
        Ok(s)
    }

    pub(super) fn skip(&mut self, n: usize, what: &'static str) -> R<()> {
        self.bytes(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> R<[u8; N]> {
        let s = self.bytes(N, what)?;
        <[u8; N]>::try_from(s).map_err(|_| self.error(what))
    }

    pub(super) fn u8(&mut self, what: &'static str) -> R<u8> {
        self.array::<1>(what).map(|[b]| b)
    }

    pub(super) fn u16(&mut self, what: &'static str) -> R<u16> {
        self.array(what).map(u16::from_be_bytes)
    }

    pub(super) fn i16(&mut self, what: &'static str) -> R<i16> {
        self.array(what).map(i16::from_be_bytes)
    }

    pub(super) fn u24(&mut self, what: &'static str) -> R<u32> {
        self.array::<3>(what)
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> R<u32> {
        self.array(what).map(u32::from_be_bytes)
    }

    pub(super) fn u32_le(&mut self, what: &'static str) -> R<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(super) fn i32(&mut self, what: &'static str) -> R<i32> {
        self.array(what).map(i32::from_be_bytes)
    }

    pub(super) fn u64(&mut self, what: &'static str) -> R<u64> {
        self.array(what).map(u64::from_be_bytes)
    }
}
