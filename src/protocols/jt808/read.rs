//! A bounds-checked cursor over a message body. JT/T 808 bodies are long
//! runs of conditional fixed-width reads (the additional-information items
//! differ per vendor and per length), which read more plainly as cursor
//! calls than as nom combinators; every read is checked and a short body is
//! an error, never a panic.

/// Why a read failed: the body ended at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Short {
    pub offset: usize,
}

pub(super) type Res<T> = Result<T, Short>;

/// A cursor over `buf`, with the offset of `buf` in the frame for errors.
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

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The offset of the next byte in the frame.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// The unread bytes (not consumed).
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Short {
            offset: self.offset(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(Short {
            offset: self.offset(),
        })?;
        self.pos = end;
        Ok(s)
    }

    /// A sub-reader over the next `n` bytes, consumed from this one.
    pub fn sub(&mut self, n: usize) -> Res<Reader<'a>> {
        let base = self.offset();
        Ok(Reader::new(self.take(n)?, base))
    }

    pub fn skip(&mut self, n: usize) -> Res<()> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let offset = self.offset();
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| Short { offset })
    }

    pub fn u8(&mut self) -> Res<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn i8(&mut self) -> Res<i8> {
        self.array::<1>().map(i8::from_be_bytes)
    }

    pub fn u16(&mut self) -> Res<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn i16(&mut self) -> Res<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub fn u24(&mut self) -> Res<u32> {
        self.array::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self) -> Res<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn i32(&mut self) -> Res<i32> {
        self.array().map(i32::from_be_bytes)
    }

    /// `n` bytes as text, one character per byte (ISO-8859-1): device
    /// strings are ASCII in practice, and this never fails on the rest.
    pub fn latin1(&mut self, n: usize) -> Res<String> {
        Ok(latin1(self.take(n)?))
    }

    /// `n` bytes as lower-case hex.
    pub fn hex(&mut self, n: usize) -> Res<String> {
        Ok(hex::encode(self.take(n)?))
    }
}

/// Bytes as text, one character per byte.
pub(super) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Two BCD digits as a number; `None` if a nibble is not a digit.
pub(super) fn bcd(b: u8) -> Option<u32> {
    let (hi, lo) = (b >> 4, b & 0x0f);
    (hi <= 9 && lo <= 9).then(|| u32::from(hi.wrapping_mul(10).wrapping_add(lo)))
}

/// Whether `c` is what Java's `String.trim` removes (every char up to
/// space, NUL padding included); devices pad fixed-width text with NULs.
pub(super) fn blank(c: char) -> bool {
    c <= ' '
}

/// Runs `f`: a `try` block for a group of reads whose failure only skips
/// that group (an item, a record field set), not the whole message.
pub(super) fn attempt<T>(f: impl FnOnce() -> Res<T>) -> Res<T> {
    f()
}
