//! Loading the building blocks every model file needs from [`Weights`], with shape checks:
//! `nn.Linear` weights ([`LinearParams`] → [`Linear`], with or without bias, stacked for fused
//! projections), LayerNorm (with or without bias) and RMSNorm parameters, plain tensors, and
//! a classifier's label count.

use crate::error::{EngineError, Result};
use crate::weights::Weights;
use rerank_kernels::{LayerNorm, Linear, Precision, RmsNorm};

/// Tensor `name` of shape `shape` as row-major f32 values (F16 / BF16 upcast).
pub(crate) fn tensor(w: &Weights, name: &str, shape: &[usize], hint: &str) -> Result<Vec<f32>> {
    w.get(name, shape, hint)
}

/// The weights of one `nn.Linear` before packing: `weight` `[out, in]`, `bias` `[out]`.
#[derive(Debug, Clone)]
pub(crate) struct LinearParams {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub out_dim: usize,
    pub in_dim: usize,
}

impl LinearParams {
    /// Loads `{name}.weight` `[out, in]` and `{name}.bias` `[out]` (both required); `hint`
    /// is appended to a missing-tensor error.
    pub fn load(
        w: &Weights,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        hint: &str,
    ) -> Result<Self> {
        Self::load_with_bias(w, name, in_dim, out_dim, true, hint)
    }

    /// Loads `{name}.weight`, and `{name}.bias` when `bias` (a config's `attention_bias`,
    /// `mlp_bias`, …: a layer declared without bias has none to load).
    pub fn load_with_bias(
        w: &Weights,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        hint: &str,
    ) -> Result<Self> {
        Ok(LinearParams {
            weight: tensor(w, &format!("{name}.weight"), &[out_dim, in_dim], hint)?,
            bias: if bias {
                Some(tensor(w, &format!("{name}.bias"), &[out_dim], hint)?)
            } else {
                None
            },
            out_dim,
            in_dim,
        })
    }

    /// Stacks linears with the same input along the output dimension (fused Q/K/V, gate and
    /// up projections). A part without bias contributes zeros when another has one.
    ///
    /// Errors: [`EngineError::InvalidArgument`] when the input widths differ.
    pub fn concat(parts: &[LinearParams]) -> Result<Self> {
        let in_dim = parts.first().map_or(0, |p| p.in_dim);
        if parts.iter().any(|p| p.in_dim != in_dim) {
            return Err(EngineError::InvalidArgument(
                "stacked linear layers have different input widths".into(),
            ));
        }
        let any_bias = parts.iter().any(|p| p.bias.is_some());
        Ok(LinearParams {
            weight: parts
                .iter()
                .flat_map(|p| p.weight.iter().copied())
                .collect(),
            bias: any_bias.then(|| {
                parts
                    .iter()
                    .flat_map(|p| match &p.bias {
                        Some(b) => b.clone(),
                        None => vec![0.0; p.out_dim],
                    })
                    .collect()
            }),
            out_dim: parts.iter().map(|p| p.out_dim).sum(),
            in_dim,
        })
    }

    /// Packs the weight for `precision` (see [`Linear::new`]).
    pub fn build(&self, precision: Precision) -> Linear {
        Linear::new(
            &self.weight,
            self.bias.as_deref(),
            self.out_dim,
            self.in_dim,
            precision,
        )
    }
}

/// Loads and packs `{name}.weight` `[out, in]` / `{name}.bias` `[out]` in f32 (heads).
pub(crate) fn load_linear(
    w: &Weights,
    name: &str,
    in_dim: usize,
    out_dim: usize,
    hint: &str,
) -> Result<Linear> {
    Ok(LinearParams::load(w, name, in_dim, out_dim, hint)?.build(Precision::F32))
}

/// Loads `{name}.weight`/`{name}.bias`, or the legacy `{name}.gamma`/`{name}.beta`, of a
/// LayerNorm over `dim` features with `eps` (stored as f32, as PyTorch uses it); without a
/// bias when `bias` is false (`nn.LayerNorm(bias=False)`).
pub(crate) fn load_layer_norm(
    w: &Weights,
    name: &str,
    dim: usize,
    eps: f64,
    bias: bool,
) -> Result<LayerNorm> {
    let get = |names: [String; 2]| w.get_any(&names, &[dim], "");
    Ok(LayerNorm {
        weight: get([format!("{name}.weight"), format!("{name}.gamma")])?,
        bias: if bias {
            Some(get([format!("{name}.bias"), format!("{name}.beta")])?)
        } else {
            None
        },
        eps: eps as f32,
    })
}

/// Loads `{name}.weight` of an RMSNorm over `dim` features with `eps` (for RMSNorm models
/// such as Qwen3).
pub(crate) fn load_rms_norm(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<RmsNorm> {
    Ok(RmsNorm {
        weight: tensor(w, &format!("{name}.weight"), &[dim], "")?,
        eps: eps as f32,
    })
}

/// Labels of a classifier whose weight `name` should be `[num_labels, in_dim]`: its first
/// dimension, or `fallback` when the tensor is absent (loading it then reports it missing).
///
/// Errors: [`EngineError::ShapeMismatch`] for a weight that is not 2-dimensional (a
/// 0-dimensional one has no label count at all).
pub(crate) fn num_labels(w: &Weights, name: &str, in_dim: usize, fallback: usize) -> Result<usize> {
    match w.dims(name) {
        None => Ok(fallback),
        Some(&[labels, _]) => Ok(labels),
        Some(other) => Err(EngineError::ShapeMismatch {
            path: w.file_of(name).unwrap_or(w.source()).to_path_buf(),
            tensor: name.to_string(),
            actual: other.to_vec(),
            expected: vec![fallback, in_dim],
        }),
    }
}
