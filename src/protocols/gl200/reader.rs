//! A bounds-checked big-endian reader over one binary frame: every read
//! past the end is a `DecodeError::Malformed` naming the field and offset.

use chrono::{DateTime, NaiveDate, Utc};

use crate::protocol::DecodeError;

#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    b: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8], pos: usize) -> Self {
        Self { b, pos }
    }

    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n);
        let s = end
            .and_then(|e| self.b.get(self.pos..e))
            .ok_or(DecodeError::Malformed {
                what,
                offset: self.pos,
            })?;
        self.pos = self.pos.saturating_add(n);
        Ok(s)
    }

    pub(super) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.bytes(n, what).map(|_| ())
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(*self.bytes(1, what)?.first().unwrap_or(&0))
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let s = self.bytes(2, what)?;
        Ok(u16::from_be_bytes(s.try_into().unwrap_or([0; 2])))
    }

    pub(super) fn u24(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let s = self.bytes(3, what)?;
        Ok(s.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
    }

    pub(super) fn i24(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let v = self.u24(what)?;
        // Sign-extend 24 → 32 bits.
        Ok(i32::from_be_bytes((v << 8).to_be_bytes()) >> 8)
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let s = self.bytes(4, what)?;
        Ok(u32::from_be_bytes(s.try_into().unwrap_or([0; 4])))
    }

    pub(super) fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        let s = self.bytes(2, what)?;
        Ok(i16::from_be_bytes(s.try_into().unwrap_or([0; 2])))
    }

    pub(super) fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let s = self.bytes(4, what)?;
        Ok(i32::from_be_bytes(s.try_into().unwrap_or([0; 4])))
    }

    /// `u16 year, u8 month, day, hour, minute, second` (UTC); `None` if not a date.
    pub(super) fn time(
        &mut self,
        what: &'static str,
    ) -> Result<Option<DateTime<Utc>>, DecodeError> {
        let at = self.pos;
        let y = self.u16(what)?;
        let s = self.bytes(5, what)?;
        let [mo, d, h, mi, se] =
            <[u8; 5]>::try_from(s).map_err(|_| DecodeError::Malformed { what, offset: at })?;
        Ok(
            NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
                .and_then(|date| date.and_hms_opt(u32::from(h), u32::from(mi), u32::from(se)))
                .map(|t| t.and_utc()),
        )
    }
}
