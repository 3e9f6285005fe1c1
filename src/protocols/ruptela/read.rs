//! A bounds-checked cursor over a payload: records are runs of fixed-width
//! fields and counted IO groups; every read is checked, a short payload is
//! an error, never a panic.

/// The payload ended at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Short {
    pub offset: usize,
}

pub(super) type Res<T> = Result<T, Short>;

#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let short = Short {
            offset: self.offset(),
        };
        let end = self.pos.checked_add(n).ok_or(short)?;
        let s = self.buf.get(self.pos..end).ok_or(short)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let offset = self.offset();
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| Short { offset })
    }

    pub fn u8(&mut self) -> Res<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn u16(&mut self) -> Res<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Res<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn i32(&mut self) -> Res<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Res<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// An unsigned value of 1, 2, 4 or 8 bytes.
    pub fn uint(&mut self, width: usize) -> Res<u64> {
        Ok(match width {
            1 => u64::from(self.u8()?),
            2 => u64::from(self.u16()?),
            4 => u64::from(self.u32()?),
            _ => self.u64()?,
        })
    }
}

/// Runs `f`: a `try` block for a group of reads whose failure only skips
/// that group (an item, a record field set), not the whole message.
pub(super) fn attempt<T>(f: impl FnOnce() -> Res<T>) -> Res<T> {
    f()
}
