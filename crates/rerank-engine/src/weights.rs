//! Checkpoint loading: `model.safetensors`, sharded `model.safetensors.index.json`, or
//! `pytorch_model.bin` through candle's pickle reader. Every tensor is converted to f32
//! (F16 / BF16 checkpoints are upcast, as the PyTorch reference does with `dtype=float32`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::error::{EngineError, Result};

/// All tensors of a checkpoint, by name, with the file each came from (for error messages).
pub struct Weights {
    tensors: HashMap<String, (Tensor, usize)>,
    files: Vec<PathBuf>,
    /// Storage dtype of the first floating-point tensor (e.g. `F16`), for `info()`.
    pub stored_dtype: Option<DType>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

impl Weights {
    /// Loads the checkpoint in `dir` onto `device`.
    ///
    /// Looks for `model.safetensors`, then `model.safetensors.index.json` (shards), then
    /// `pytorch_model.bin`. Errors: [`EngineError::NotFound`] when none exists,
    /// [`EngineError::BadFile`] for an unreadable file, [`EngineError::PickleUnsupported`] when
    /// only a `.bin` exists and candle cannot read it.
    pub fn from_dir(dir: &Path, device: &Device) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let bin = dir.join("pytorch_model.bin");
        if single.exists() {
            Self::from_safetensors(vec![single], device)
        } else if index.exists() {
            let text =
                std::fs::read_to_string(&index).map_err(|e| EngineError::bad_file(&index, e))?;
            let idx: ShardIndex =
                serde_json::from_str(&text).map_err(|e| EngineError::bad_file(&index, e))?;
            let mut shards: Vec<String> = idx.weight_map.into_values().collect();
            shards.sort();
            shards.dedup();
            let paths = shards.into_iter().map(|s| dir.join(s)).collect();
            Self::from_safetensors(paths, device)
        } else if bin.exists() {
            Self::from_pickle(bin, device)
        } else {
            Err(EngineError::NotFound {
                path: dir.to_path_buf(),
                reason: "no model.safetensors, model.safetensors.index.json or pytorch_model.bin"
                    .into(),
            })
        }
    }

    fn from_safetensors(paths: Vec<PathBuf>, device: &Device) -> Result<Self> {
        let mut tensors = HashMap::new();
        let mut stored_dtype = None;
        for (i, path) in paths.iter().enumerate() {
            if !path.exists() {
                return Err(EngineError::NotFound {
                    path: path.clone(),
                    reason: "shard listed in model.safetensors.index.json is missing".into(),
                });
            }
            let loaded = candle_core::safetensors::load(path, device)
                .map_err(|e| EngineError::bad_file(path, e))?;
            for (name, t) in loaded {
                if stored_dtype.is_none() && t.dtype().is_float() {
                    stored_dtype = Some(t.dtype());
                }
                tensors.insert(name, (t, i));
            }
        }
        Ok(Weights {
            tensors,
            files: paths,
            stored_dtype,
        })
    }

    fn from_pickle(path: PathBuf, device: &Device) -> Result<Self> {
        let loaded =
            candle_core::pickle::read_all(&path).map_err(|e| EngineError::PickleUnsupported {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let mut tensors = HashMap::new();
        let mut stored_dtype = None;
        for (name, t) in loaded {
            if stored_dtype.is_none() && t.dtype().is_float() {
                stored_dtype = Some(t.dtype());
            }
            let t = t.to_device(device)?;
            tensors.insert(name, (t, 0));
        }
        Ok(Weights {
            tensors,
            files: vec![path],
            stored_dtype,
        })
    }

    /// Whether a tensor of that exact name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The checkpoint file(s), for messages: the single file or the first shard.
    pub fn source(&self) -> &Path {
        &self.files[0]
    }

    /// Every tensor name, sorted (diagnostics).
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Returns tensor `name` as contiguous f32, checking its shape.
    ///
    /// Errors: [`EngineError::MissingTensor`] (with `hint` appended to the message) or
    /// [`EngineError::ShapeMismatch`], both naming the checkpoint file and the tensor.
    pub fn get(&self, name: &str, shape: &[usize], hint: &str) -> Result<Tensor> {
        let Some((t, file)) = self.tensors.get(name) else {
            return Err(EngineError::MissingTensor {
                path: self.source().to_path_buf(),
                tensor: name.to_string(),
                hint: hint.to_string(),
            });
        };
        if t.dims() != shape {
            return Err(EngineError::ShapeMismatch {
                path: self.files[*file].clone(),
                tensor: name.to_string(),
                actual: t.dims().to_vec(),
                expected: shape.to_vec(),
            });
        }
        Ok(t.to_dtype(DType::F32)?.contiguous()?)
    }

    /// Like [`Weights::get`], trying each name in turn (legacy aliases such as
    /// `LayerNorm.gamma` for `LayerNorm.weight`); the error names the first.
    pub fn get_any(&self, names: &[String], shape: &[usize], hint: &str) -> Result<Tensor> {
        for n in names {
            if self.contains(n) {
                return self.get(n, shape, hint);
            }
        }
        self.get(&names[0], shape, hint)
    }

    /// The shape of tensor `name`, if present.
    pub fn dims(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(t, _)| t.dims())
    }
}
