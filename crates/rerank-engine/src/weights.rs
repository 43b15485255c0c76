//! Checkpoint loading: `model.safetensors`, sharded `model.safetensors.index.json` (both read
//! with the `safetensors` crate), or `pytorch_model.bin` through candle's pickle reader. Every
//! tensor is handed out as f32 (F16 / BF16 checkpoints are upcast exactly, as the PyTorch
//! reference does with `dtype=float32`).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::error::{EngineError, Result};

/// Where a tensor's values are.
enum Data {
    /// Little-endian values at this byte range of the file's bytes.
    Bytes(Range<usize>),
    /// Already converted (pickle checkpoints).
    F32(Vec<f32>),
}

struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Data,
}

/// All tensors of a checkpoint, by name, with the file each came from (for error messages).
pub struct Weights {
    tensors: HashMap<String, Entry>,
    files: Vec<PathBuf>,
    bytes: Vec<Vec<u8>>,
    /// Storage dtype of the floating-point tensors (the one holding most values, e.g.
    /// `"F16"`), for `info()`.
    pub stored_dtype: Option<String>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

/// Whether `name` is a plain relative path that stays inside its folder (no `..`, no root,
/// no drive prefix, no backslash). Shard names of an index and hub file names must be.
pub(crate) fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn is_float(d: Dtype) -> bool {
    matches!(d, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

impl Weights {
    /// Loads the checkpoint in `dir`.
    ///
    /// Looks for `model.safetensors`, then `model.safetensors.index.json` (shards), then
    /// `pytorch_model.bin`. Errors: [`EngineError::NotFound`] when none exists or a listed
    /// shard is missing, [`EngineError::BadFile`] for an unreadable file, an index without
    /// shards or with a shard name that leaves the folder, [`EngineError::PickleUnsupported`]
    /// when only a `.bin` exists and candle cannot read it.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let bin = dir.join("pytorch_model.bin");
        if single.exists() {
            Self::from_safetensors(vec![single])
        } else if index.exists() {
            let text =
                std::fs::read_to_string(&index).map_err(|e| EngineError::bad_file(&index, e))?;
            let idx: ShardIndex =
                serde_json::from_str(&text).map_err(|e| EngineError::bad_file(&index, e))?;
            let mut shards: Vec<String> = idx.weight_map.into_values().collect();
            shards.sort();
            shards.dedup();
            if shards.is_empty() {
                return Err(EngineError::bad_file(&index, "weight_map lists no shard"));
            }
            if let Some(bad) = shards.iter().find(|s| !is_plain_relative(s)) {
                return Err(EngineError::bad_file(
                    &index,
                    format!("shard name {bad:?} is not a plain relative file name"),
                ));
            }
            Self::from_safetensors(shards.into_iter().map(|s| dir.join(s)).collect())
        } else if bin.exists() {
            Self::from_pickle(bin)
        } else {
            Err(EngineError::NotFound {
                path: dir.to_path_buf(),
                reason: "no model.safetensors, model.safetensors.index.json or pytorch_model.bin"
                    .into(),
            })
        }
    }

    fn from_safetensors(paths: Vec<PathBuf>) -> Result<Self> {
        let mut tensors = HashMap::new();
        let mut bytes = Vec::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            if !path.exists() {
                return Err(EngineError::NotFound {
                    path: path.clone(),
                    reason: "shard listed in model.safetensors.index.json is missing".into(),
                });
            }
            let buf = std::fs::read(path).map_err(|e| EngineError::bad_file(path, e))?;
            let (header, meta) =
                SafeTensors::read_metadata(&buf).map_err(|e| EngineError::bad_file(path, e))?;
            let start = 8 + header;
            for (name, info) in meta.tensors() {
                let (a, b) = info.data_offsets;
                tensors.insert(
                    name,
                    Entry {
                        file: i,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        data: Data::Bytes(start + a..start + b),
                    },
                );
            }
            bytes.push(buf);
        }
        Ok(Self::finish(tensors, paths, bytes))
    }

    fn from_pickle(path: PathBuf) -> Result<Self> {
        let unsupported = |e: &dyn std::fmt::Display| EngineError::PickleUnsupported {
            path: path.clone(),
            reason: e.to_string(),
        };
        let loaded = candle_core::pickle::read_all(&path).map_err(|e| unsupported(&e))?;
        let mut tensors = HashMap::new();
        for (name, t) in loaded {
            use candle_core::DType as C;
            let dtype = match t.dtype() {
                C::F16 => Dtype::F16,
                C::BF16 => Dtype::BF16,
                C::F32 => Dtype::F32,
                C::F64 => Dtype::F64,
                C::I64 => Dtype::I64,
                C::U32 => Dtype::U32,
                C::U8 => Dtype::U8,
                _ => Dtype::I64,
            };
            let shape = t.dims().to_vec();
            let values = t
                .to_dtype(C::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| unsupported(&e))?;
            tensors.insert(
                name,
                Entry {
                    file: 0,
                    dtype,
                    shape,
                    data: Data::F32(values),
                },
            );
        }
        Ok(Self::finish(tensors, vec![path], Vec::new()))
    }

    fn finish(tensors: HashMap<String, Entry>, files: Vec<PathBuf>, bytes: Vec<Vec<u8>>) -> Self {
        let mut counts: Vec<(Dtype, usize)> = Vec::new();
        for e in tensors.values().filter(|e| is_float(e.dtype)) {
            let n: usize = e.shape.iter().product();
            match counts.iter_mut().find(|(d, _)| *d == e.dtype) {
                Some((_, c)) => *c += n,
                None => counts.push((e.dtype, n)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Weights {
            tensors,
            files,
            bytes,
            stored_dtype: counts.first().map(|(d, _)| format!("{d:?}")),
        }
    }

    /// Whether a tensor of that exact name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The checkpoint file for messages: the single file or the first shard.
    pub fn source(&self) -> &Path {
        &self.files[0]
    }

    /// Every checkpoint file.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Every tensor name, sorted (diagnostics).
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Returns tensor `name` as row-major f32 values, checking its shape.
    ///
    /// Errors: [`EngineError::MissingTensor`] (with `hint` appended to the message) or
    /// [`EngineError::ShapeMismatch`], both naming the checkpoint file and the tensor;
    /// [`EngineError::BadFile`] for a tensor that is not floating-point.
    pub fn get(&self, name: &str, shape: &[usize], hint: &str) -> Result<Vec<f32>> {
        let Some(e) = self.tensors.get(name) else {
            return Err(EngineError::MissingTensor {
                path: self.source().to_path_buf(),
                tensor: name.to_string(),
                hint: hint.to_string(),
            });
        };
        let path = &self.files[e.file];
        if e.shape != shape {
            return Err(EngineError::ShapeMismatch {
                path: path.clone(),
                tensor: name.to_string(),
                actual: e.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        let bytes = match &e.data {
            Data::F32(v) => return Ok(v.clone()),
            Data::Bytes(r) => &self.bytes[e.file][r.clone()],
        };
        fn each<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
            b.chunks_exact(N)
                .map(|c| f(c.try_into().expect("chunks of N bytes")))
                .collect()
        }
        Ok(match e.dtype {
            Dtype::F32 => each(bytes, f32::from_le_bytes),
            Dtype::F16 => each(bytes, |b| half::f16::from_le_bytes(b).to_f32()),
            Dtype::BF16 => each(bytes, |b| half::bf16::from_le_bytes(b).to_f32()),
            Dtype::F64 => each(bytes, |b| f64::from_le_bytes(b) as f32),
            other => {
                return Err(EngineError::bad_file(
                    path,
                    format!("tensor {name:?} has dtype {other:?}, not a floating-point type"),
                ))
            }
        })
    }

    /// Like [`Weights::get`], trying each name in turn (legacy aliases such as
    /// `LayerNorm.gamma` for `LayerNorm.weight`); the error names the first.
    pub fn get_any(&self, names: &[String], shape: &[usize], hint: &str) -> Result<Vec<f32>> {
        for n in names {
            if self.contains(n) {
                return self.get(n, shape, hint);
            }
        }
        self.get(&names[0], shape, hint)
    }

    /// The checkpoint file holding tensor `name`, if present.
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.tensors.get(name).map(|e| self.files[e.file].as_path())
    }

    /// The shape of tensor `name`, if present (empty for a 0-dimensional tensor).
    pub fn dims(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_names() {
        for ok in ["model-00001-of-00002.safetensors", "sub/model.safetensors"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "../model.safetensors",
            "/etc/passwd",
            "a/../../b",
            "a\\b",
            "./x",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
