//! Dense and layer-norm building blocks, loaded from [`Weights`] with shape checks.

use candle_core::{Module, Tensor};

use crate::error::Result;
use crate::weights::Weights;

/// `y = x · Wᵀ + b`; `weight`: `[out, in]` f32 as stored by PyTorch's `nn.Linear`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
}

impl Linear {
    /// Loads `{name}.weight` `[out, in]` and `{name}.bias` `[out]`.
    pub fn load(
        w: &Weights,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        hint: &str,
    ) -> Result<Self> {
        Ok(Linear {
            weight: w.get(&format!("{name}.weight"), &[out_dim, in_dim], hint)?,
            bias: w.get(&format!("{name}.bias"), &[out_dim], hint)?,
        })
    }

    /// Concatenates several linears along the output dimension (fused Q/K/V projection).
    pub fn concat(parts: &[Linear]) -> Result<Self> {
        let ws: Vec<&Tensor> = parts.iter().map(|l| &l.weight).collect();
        let bs: Vec<&Tensor> = parts.iter().map(|l| &l.bias).collect();
        Ok(Linear {
            weight: Tensor::cat(&ws, 0)?,
            bias: Tensor::cat(&bs, 0)?,
        })
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Linear {
    /// `x`: `[n, in]` → `[n, out]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

/// LayerNorm over the last dimension with learned `gamma`/`beta`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f32,
}

impl LayerNorm {
    /// Loads `{name}.weight`/`{name}.bias`, or the legacy `{name}.gamma`/`{name}.beta`.
    pub fn load(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            gamma: w.get_any(
                &[format!("{name}.weight"), format!("{name}.gamma")],
                &[dim],
                "",
            )?,
            beta: w.get_any(
                &[format!("{name}.bias"), format!("{name}.beta")],
                &[dim],
                "",
            )?,
            eps: eps as f32,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.gamma, &self.beta, self.eps)
    }
}
