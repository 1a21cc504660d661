//! A byte range of a seekable input seen as a whole input: one stream of an archive, for the
//! stream readers (which address streams from offset 0).

use std::io::{Read, Seek, SeekFrom};

/// `len` bytes of `inner` from `start`, readable and seekable as if they were all there is.
#[derive(Debug)]
pub struct Window<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
    /// Whether `inner` is known to be at `start + pos`.
    placed: bool,
}

impl<R: Read + Seek> Window<R> {
    /// The range `start..start + len` of `inner`.
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        Window { inner, start, len, pos: 0, placed: false }
    }
}

impl<R: Read + Seek> Read for Window<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if !self.placed {
            self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
            self.placed = true;
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Window<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start of the window")
        })?;
        if target != self.pos {
            self.placed = false;
        }
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_and_seeks_inside_the_range_only() {
        let data: Vec<u8> = (0..100).collect();
        let mut w = Window::new(Cursor::new(&data), 10, 20);
        let mut all = Vec::new();
        w.read_to_end(&mut all).unwrap();
        assert_eq!(all, (10..30).collect::<Vec<u8>>());
        w.seek(SeekFrom::End(-5)).unwrap();
        let mut b = [0u8; 10];
        assert_eq!(w.read(&mut b).unwrap(), 5);
        assert_eq!(b[..5], [25, 26, 27, 28, 29]);
        w.seek(SeekFrom::Start(2)).unwrap();
        w.seek(SeekFrom::Current(1)).unwrap();
        assert_eq!(w.read(&mut b[..1]).unwrap(), 1);
        assert_eq!(b[0], 13);
        assert!(w.seek(SeekFrom::Current(-10)).is_err());
    }
}
