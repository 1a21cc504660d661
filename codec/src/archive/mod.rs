//! Gradient archives (`spec/FORMAT.md` §18): a whole training run in one file, appendable,
//! indexed, searchable and salvageable.
//!
//! An archive is ordinary gradwire streams, one after another, each still decodable on its own,
//! followed by an index block and a 32-byte trailer that points at it. The index lists every
//! stream with its offset, length, `fl.round`, `fl.client_id` and tensors, so a reader finds any
//! update without reading the others. It is a cache, never the only copy of anything: a reader
//! that finds the trailer or index missing, damaged or inconsistent walks the streams instead
//! ([`Archive::open`] says which it used), and [`Archive::repair`] rebuilds it.
//!
//! Appending truncates the old index and trailer, writes the new stream, then a new index and
//! trailer, and syncs. Earlier bytes are never rewritten, so a crash while appending loses at most
//! the stream being appended: the next reader finds no trailer, walks the streams and sees every
//! earlier entry (and a torn tail, which the next append or a repair drops). For the same reason
//! readers running while one writer appends see a consistent prefix of the entries. One writer
//! at a time: concurrent appenders are not coordinated.
//!
//! Random access to one tensor of one entry ([`Archive::read_tensor`]) opens that stream alone
//! through positioned reads (its own INDEX record locates the chunks). The file is not memory
//! mapped: mapping needs `unsafe` (a file changed by another process under a mapping is undefined
//! behaviour in Rust), and a positioned read of the few records needed costs microseconds.
//!
//! ```
//! use gradwire_codec::archive::Archive;
//! use gradwire_codec::{Metadata, Registry, StreamHeader, TensorSpec, Value, Writer, WriterOptions};
//! let registry = Registry::core();
//! let dir = std::env::temp_dir().join(format!("gw-archive-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("run.gwa");
//! let mut archive = Archive::create(&path)?;
//! for round in 0..3u64 {
//!     let mut metadata = Metadata::new();
//!     metadata.insert("fl.round", Value::U64(round))?;
//!     let header = StreamHeader { metadata, ..StreamHeader::default() };
//!     let mut w = Writer::new(Vec::new(), &registry, &header, WriterOptions::default())?;
//!     w.write_tensor(TensorSpec::new("g", &[2], registry.parse_pipeline("raw")?), &[round as f32, 1.0])?;
//!     archive.append(&w.finish()?, &registry)?;
//! }
//! let archive = Archive::open(&path, &registry)?;
//! let found = archive.find(Some(1), None);
//! assert_eq!(archive.read_tensor(found[0], "g", &registry)?, [1.0, 1.0]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

mod layout;
mod scan;
mod window;

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use layout::{ArchiveEntry, EntryTensor, INDEX_MAGIC, TRAILER_LEN, TRAILER_MAGIC, encode_index, encode_trailer};
pub use scan::{Damage, Layout};
pub use window::Window;

use crate::error::{Error, ErrorCode, Result};
use crate::limits::Limits;
use crate::registry::Registry;
use crate::stream::{DecodedStream, Reader, SeekableReader};

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::from_io(&e, what)
}

/// An archive file and where its streams are.
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    layout: Layout,
    limits: Limits,
}

/// The outcome of checking one entry ([`Archive::verify`]).
#[derive(Debug)]
pub struct EntryCheck {
    /// Position of the entry in [`Archive::entries`].
    pub index: usize,
    /// Its offset in the file.
    pub offset: u64,
    /// `Ok` when every checksum held and every chunk decoded.
    pub result: Result<()>,
}

/// What [`Archive::repair`] did.
#[derive(Debug)]
pub struct RepairReport {
    /// Intact streams found and indexed.
    pub entries: usize,
    /// Bytes of a torn tail dropped from the end of the file.
    pub dropped_tail: u64,
    /// Damaged ranges left in place (not indexed; `gradwire decode --salvage` may read them).
    pub damaged: Vec<Damage>,
}

impl Archive {
    /// Creates an empty archive (an empty index and its trailer); fails if `path` exists.
    ///
    /// # Errors
    /// [`ErrorCode::Io`], also when the file already exists.
    pub fn create(path: impl AsRef<Path>) -> Result<Archive> {
        let path = path.as_ref().to_path_buf();
        let mut file =
            OpenOptions::new().write(true).create_new(true).open(&path).map_err(io("creating the archive"))?;
        let index = encode_index(&[])?;
        file.write_all(&index).map_err(io("writing the archive index"))?;
        file.write_all(&encode_trailer(0, index.len() as u64)).map_err(io("writing the archive trailer"))?;
        file.sync_all().map_err(io("syncing the archive"))?;
        let file_len = index.len() as u64 + TRAILER_LEN;
        let layout = Layout { entries: Vec::new(), damaged: Vec::new(), file_len, index_offset: Some(0) };
        Ok(Archive { path, layout, limits: Limits::default() })
    }

    /// Opens an archive: from its index when the trailer and index check out, otherwise by
    /// walking the streams ([`Archive::indexed`] says which).
    ///
    /// # Errors
    /// [`ErrorCode::Io`]; damage inside the file is not an error but listed by
    /// [`Archive::damaged`].
    pub fn open(path: impl AsRef<Path>, registry: &Registry) -> Result<Archive> {
        Self::open_with(path, registry, Limits::default(), false)
    }

    fn open_with(path: impl AsRef<Path>, registry: &Registry, limits: Limits, force_scan: bool) -> Result<Archive> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(io("opening the archive"))?;
        let file_len = file.metadata().map_err(io("reading the archive's size"))?.len();
        let layout = if force_scan {
            scan::scan(&mut BufReader::with_capacity(1 << 16, file), file_len, registry, limits)?
        } else {
            read_layout(&mut BufReader::with_capacity(1 << 16, file), registry, limits)?
        };
        Ok(Archive { path, layout, limits })
    }

    /// The intact entries, in file order.
    #[must_use]
    pub fn entries(&self) -> &[ArchiveEntry] {
        &self.layout.entries
    }

    /// Ranges of the file that hold no intact stream (found when walking the streams).
    #[must_use]
    pub fn damaged(&self) -> &[Damage] {
        &self.layout.damaged
    }

    /// Whether the entries came from the index (`false`: the streams were walked).
    #[must_use]
    pub fn indexed(&self) -> bool {
        self.layout.index_offset.is_some()
    }

    /// The path of the archive.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Positions in [`Archive::entries`] of the entries with this round and client (`None`
    /// matches anything).
    #[must_use]
    pub fn find(&self, round: Option<u64>, client: Option<&str>) -> Vec<usize> {
        (0..self.layout.entries.len())
            .filter(|&i| {
                let e = &self.layout.entries[i];
                round.is_none_or(|r| e.round == Some(r)) && client.is_none_or(|c| e.client.as_deref() == Some(c))
            })
            .collect()
    }

    fn entry(&self, i: usize) -> Result<&ArchiveEntry> {
        self.layout.entries.get(i).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("the archive has {} entries, no entry {i}", self.layout.entries.len()),
            )
        })
    }

    /// The bytes of entry `i`: a complete gradwire stream.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for no such entry; [`ErrorCode::Io`] or
    /// [`ErrorCode::Truncated`] when the file is shorter than the index says.
    pub fn entry_bytes(&self, i: usize) -> Result<Vec<u8>> {
        let e = self.entry(i)?;
        let mut file = File::open(&self.path).map_err(io("opening the archive"))?;
        file.seek(SeekFrom::Start(e.offset)).map_err(io("seeking in the archive"))?;
        let mut bytes =
            vec![0u8; usize::try_from(e.length).map_err(|_| Error::new(ErrorCode::LimitExceeded, "entry too large"))?];
        std::io::Read::read_exact(&mut file, &mut bytes).map_err(io("reading an archive entry"))?;
        Ok(bytes)
    }

    /// Decodes every tensor of entry `i`.
    ///
    /// # Errors
    /// As [`Archive::entry_bytes`] and [`Reader::read_all`], with the entry's offset in the detail.
    pub fn decode_entry(&self, i: usize, registry: &Registry) -> Result<DecodedStream> {
        let e = self.entry(i)?;
        let file = File::open(&self.path).map_err(io("opening the archive"))?;
        let window = BufReader::with_capacity(1 << 20, Window::new(file, e.offset, e.length));
        Reader::with_options(window, registry, crate::stream::ReaderOptions::default().limits(self.limits))
            .read_all()
            .map_err(|err| err.context(&format!("archive entry {i} at offset {}", e.offset)))
    }

    /// Decodes one tensor of entry `i` without reading the others (through the stream's INDEX).
    ///
    /// # Errors
    /// [`ErrorCode::UnknownTensor`] when the entry has no tensor `name`; as
    /// [`SeekableReader::open`] otherwise, with the entry's offset in the detail.
    pub fn read_tensor(&self, i: usize, name: &str, registry: &Registry) -> Result<Vec<f32>> {
        let e = self.entry(i)?;
        let file = File::open(&self.path).map_err(io("opening the archive"))?;
        let window = BufReader::with_capacity(1 << 16, Window::new(file, e.offset, e.length));
        let context = |err: Error| err.context(&format!("archive entry {i} at offset {}", e.offset));
        let mut reader = SeekableReader::open(window, registry, self.limits).map_err(context)?;
        reader.read_tensor_by_name(name).map_err(context)
    }

    /// Appends one stream (which must be complete and intact) and rewrites the index.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for bytes that are not exactly one intact stream, or names
    /// and pipelines too long for the index (65535 bytes); [`ErrorCode::Io`].
    pub fn append(&mut self, stream: &[u8], registry: &Registry) -> Result<&ArchiveEntry> {
        let invalid = |e: Error| Error::new(ErrorCode::InvalidArgument, format!("not an intact stream: {e}"));
        let len = stream.len() as u64;
        let mut entry =
            scan::read_entry(std::io::Cursor::new(stream), 0, len, registry, self.limits).map_err(invalid)?;
        if entry.length != len {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("{} bytes follow the stream's END record; append one stream at a time", len - entry.length),
            ));
        }
        // One writer at a time: an exclusive lock from reading where the streams end to the sync.
        let mut file = Self::lock_for_writing(&self.path)?;
        let current = Self::open_with(&self.path, registry, self.limits, false)?;
        current.check_is_archive()?;
        let start = current.layout.append_at();
        entry.offset = start;
        let mut entries = current.layout.entries;
        entries.push(entry);
        let index = encode_index(&entries)?;
        file.set_len(start).map_err(io("dropping the old archive index"))?;
        file.seek(SeekFrom::Start(start)).map_err(io("seeking to the end of the streams"))?;
        file.write_all(stream).map_err(io("appending the stream"))?;
        // The stream is durable before an index lists it.
        file.sync_data().map_err(io("syncing the appended stream"))?;
        file.write_all(&index).map_err(io("writing the archive index"))?;
        let index_offset = start + len;
        file.write_all(&encode_trailer(index_offset, index.len() as u64)).map_err(io("writing the archive trailer"))?;
        file.sync_all().map_err(io("syncing the archive"))?;
        let file_len = index_offset + index.len() as u64 + TRAILER_LEN;
        let damaged = current.layout.damaged.into_iter().filter(|d| d.offset + d.length <= start).collect();
        self.layout = Layout { entries, damaged, file_len, index_offset: Some(index_offset) };
        Ok(self.layout.entries.last().unwrap_or_else(|| unreachable!("an entry was just pushed")))
    }

    /// Opens `path` for writing under an exclusive lock (released when the file is dropped).
    fn lock_for_writing(path: &Path) -> Result<File> {
        let file = OpenOptions::new().write(true).open(path).map_err(io("opening the archive for writing"))?;
        file.lock().map_err(io("locking the archive"))?;
        Ok(file)
    }

    /// Refuses a file that does not begin with a stream, an index block or a trailer: writing
    /// to it would drop its bytes as a torn tail.
    fn check_is_archive(&self) -> Result<()> {
        match self.layout.damaged.first() {
            Some(d) if d.offset == 0 && self.layout.entries.is_empty() && d.error.code() == ErrorCode::BadMagic => {
                Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{} does not begin with a gradwire stream or archive index: not an archive, left unchanged",
                        self.path.display()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Decodes every entry, checking every checksum; damaged entries are reported and the check
    /// goes on with the next.
    #[must_use]
    pub fn verify(&self, registry: &Registry) -> Vec<EntryCheck> {
        (0..self.layout.entries.len())
            .map(|i| EntryCheck {
                index: i,
                offset: self.layout.entries[i].offset,
                result: self.decode_entry(i, registry).map(drop),
            })
            .collect()
    }

    /// Rebuilds the index of the archive at `path` by walking its streams, dropping a torn tail.
    /// Damaged ranges in the middle stay in place, unindexed, and are reported.
    ///
    /// # Errors
    /// [`ErrorCode::Io`].
    pub fn repair(path: impl AsRef<Path>, registry: &Registry) -> Result<RepairReport> {
        let mut file = Self::lock_for_writing(path.as_ref())?;
        let scanned = Self::open_with(path.as_ref(), registry, Limits::default(), true)?;
        scanned.check_is_archive()?;
        let layout = scanned.layout;
        let start = layout.append_at();
        let index = encode_index(&layout.entries)?;
        file.set_len(start).map_err(io("truncating the archive"))?;
        file.seek(SeekFrom::Start(start)).map_err(io("seeking to the end of the streams"))?;
        file.write_all(&index).map_err(io("writing the archive index"))?;
        file.write_all(&encode_trailer(start, index.len() as u64)).map_err(io("writing the archive trailer"))?;
        file.sync_all().map_err(io("syncing the archive"))?;
        let dropped_tail = layout.damaged.iter().filter(|d| d.is_torn_tail(layout.file_len)).map(|d| d.length).sum();
        let damaged = layout.damaged.into_iter().filter(|d| !d.is_torn_tail(layout.file_len)).collect();
        Ok(RepairReport { entries: layout.entries.len(), dropped_tail, damaged })
    }
}

/// Finds the streams of an archive held in any seekable input (a file, or bytes in memory):
/// from its index when the trailer and index check out, otherwise by walking the streams.
/// [`Layout::index_offset`] says which.
///
/// # Errors
/// [`ErrorCode::Io`] when the input cannot be read; damage is listed in [`Layout::damaged`].
pub fn read_layout<R: std::io::Read + Seek>(input: &mut R, registry: &Registry, limits: Limits) -> Result<Layout> {
    let len = input.seek(SeekFrom::End(0)).map_err(io("measuring the archive"))?;
    match scan::from_index(input, len) {
        Some(layout) => Ok(layout),
        None => scan::scan(input, len, registry, limits),
    }
}

#[cfg(test)]
mod tests;
