//! The passages and vectors files of a generation.
//!
//! - `passages.jsonl`: one [`Document`] as JSON per line, in ordinal order (line `i` is
//!   ordinal `i`).
//! - `vectors.f32`: `count × dims` little-endian `f32`, row `i` is the (L2-normalised) vector of
//!   ordinal `i`; no header (count and dims are in the manifest).
//!
//! A new generation's files are the previous generation's files copied (the kernel copies them)
//! with the new rows appended; every written file is fsynced before it is reported written.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::layout::bad;
use crate::{Document, Result, RetrievalError};

/// File name of the passages inside a generation directory.
pub const PASSAGES: &str = "passages.jsonl";
/// File name of the vectors inside a generation directory.
pub const VECTORS: &str = "vectors.f32";

/// Reads `gen_dir/passages.jsonl`, expecting exactly `bytes` bytes and `count` lines.
///
/// Errors: `BadIndex` (missing file, other length, a line that is not a `Document`, other line
/// count); `Io` on other read errors.
pub fn read_passages(
    index_dir: &Path,
    gen_dir: &Path,
    count: usize,
    bytes: u64,
) -> Result<Vec<Document>> {
    let path = gen_dir.join(PASSAGES);
    let data = read_exact_len(index_dir, &path, bytes)?;
    let text = std::str::from_utf8(&data)
        .map_err(|e| bad(index_dir, format!("{}: not UTF-8: {e}", path.display())))?;
    let mut docs = Vec::with_capacity(count);
    for (i, line) in text.lines().enumerate() {
        let doc: Document = serde_json::from_str(line)
            .map_err(|e| bad(index_dir, format!("{}:{}: {e}", path.display(), i + 1)))?;
        docs.push(doc);
    }
    if docs.len() != count {
        return Err(bad(
            index_dir,
            format!(
                "{} holds {} passages, the manifest says {count}",
                path.display(),
                docs.len()
            ),
        ));
    }
    Ok(docs)
}

/// Reads `gen_dir/vectors.f32` (`count × dims` f32, `bytes` long) into one row-major `Vec`.
///
/// Errors: `BadIndex` (missing file, other length, a non-finite value); `Io` on other read errors.
pub fn read_vectors(
    index_dir: &Path,
    gen_dir: &Path,
    count: usize,
    dims: usize,
    bytes: u64,
) -> Result<Vec<f32>> {
    let path = gen_dir.join(VECTORS);
    let data = read_exact_len(index_dir, &path, bytes)?;
    if data.len() != count * dims * 4 {
        return Err(bad(
            index_dir,
            format!("{} is not {count} × {dims} f32", path.display()),
        ));
    }
    let vectors: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(i) = vectors.iter().position(|x| !x.is_finite()) {
        return Err(bad(
            index_dir,
            format!("{}: non-finite value in row {}", path.display(), i / dims),
        ));
    }
    Ok(vectors)
}

/// Writes `dst_gen/passages.jsonl` = `src_gen/passages.jsonl` (if any) + `new` as JSON lines,
/// fsynced. Returns the file's length in bytes.
pub fn write_passages(src_gen: Option<&Path>, dst_gen: &Path, new: &[Document]) -> Result<u64> {
    let path = dst_gen.join(PASSAGES);
    append_after_copy(src_gen.map(|g| g.join(PASSAGES)).as_deref(), &path, |w| {
        for doc in new {
            serde_json::to_writer(&mut *w, doc).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Writes `dst_gen/vectors.f32` = `src_gen/vectors.f32` (if any) + `new` (row-major
/// little-endian f32), fsynced. Returns the file's length in bytes.
pub fn write_vectors(src_gen: Option<&Path>, dst_gen: &Path, new: &[f32]) -> Result<u64> {
    let path = dst_gen.join(VECTORS);
    append_after_copy(src_gen.map(|g| g.join(VECTORS)).as_deref(), &path, |w| {
        let mut buf = Vec::with_capacity(64 * 1024);
        for chunk in new.chunks(16 * 1024) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
            w.write_all(&buf)?;
        }
        Ok(())
    })
}

/// Copies `src` to `dst` (or creates `dst` empty), appends what `append` writes, fsyncs `dst`
/// and returns its length.
fn append_after_copy(
    src: Option<&Path>,
    dst: &Path,
    append: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<u64> {
    let io = |e| RetrievalError::io(dst, e);
    match src {
        Some(src) => {
            fs::copy(src, dst).map_err(|e| RetrievalError::io(src, e))?;
        }
        None => {
            File::create(dst).map_err(io)?;
        }
    }
    let file = OpenOptions::new().append(true).open(dst).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    append(&mut w).map_err(io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(file.metadata().map_err(io)?.len())
}

/// Reads a whole file that must be exactly `bytes` long.
pub(super) fn read_exact_len(index_dir: &Path, path: &Path, bytes: u64) -> Result<Vec<u8>> {
    let data = match fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(index_dir, format!("{} is missing", path.display())));
        }
        Err(e) => return Err(RetrievalError::io(path, e)),
    };
    if data.len() as u64 != bytes {
        return Err(bad(
            index_dir,
            format!(
                "{} is {} bytes, the manifest says {bytes}",
                path.display(),
                data.len()
            ),
        ));
    }
    Ok(data)
}
