//! Replacing a file atomically: written to a temporary file beside it, synced, renamed over it,
//! and the directory synced, so a crash or an error leaves either the old file or the new one,
//! never a mix, and no stray temporary file.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `path` through `write`, replacing any previous file only once `write` succeeded.
pub fn replace_file(path: &str, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let target = Path::new(path);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
        write(&mut out)?;
        out.flush().with_context(|| format!("writing {path}"))?;
    }
    tmp.as_file().sync_all().with_context(|| format!("syncing {path}"))?;
    tmp.persist(target).with_context(|| format!("replacing {path}"))?;
    // Make the rename itself durable (best effort: not every platform can open a directory).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Whether `a` and `b` name the same existing file.
pub fn same_file(a: &str, b: &str) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
