//! Dense and layer-norm building blocks, loaded from [`Weights`] with shape checks and turned
//! into plain f32 buffers for the [`rerank_kernels`]: `nn.Linear` weights are packed once
//! ([`PackedLinear`]), LayerNorm parameters become [`LayerNormParams`].

use crate::error::Result;
use crate::precision::Precision;
use crate::weights::Weights;
use rerank_kernels::gemm::PackedLinear;
use rerank_kernels::norm::LayerNormParams;

/// Tensor `name` of shape `shape` as a row-major f32 vector (F16 / BF16 upcast).
pub(crate) fn tensor_vec(w: &Weights, name: &str, shape: &[usize], hint: &str) -> Result<Vec<f32>> {
    Ok(w.get(name, shape, hint)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The weights of one `nn.Linear` before packing: `weight` `[out, in]`, `bias` `[out]`.
#[derive(Debug, Clone)]
pub(crate) struct LinearWeights {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub out_dim: usize,
    pub in_dim: usize,
}

impl LinearWeights {
    /// Loads `{name}.weight` `[out, in]` and `{name}.bias` `[out]`; `hint` is appended to a
    /// missing-tensor error.
    pub fn load(
        w: &Weights,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        hint: &str,
    ) -> Result<Self> {
        Ok(LinearWeights {
            weight: tensor_vec(w, &format!("{name}.weight"), &[out_dim, in_dim], hint)?,
            bias: tensor_vec(w, &format!("{name}.bias"), &[out_dim], hint)?,
            out_dim,
            in_dim,
        })
    }

    /// Stacks linears with the same input along the output dimension (fused Q/K/V).
    pub fn concat(parts: &[LinearWeights]) -> Self {
        let in_dim = parts.first().map_or(0, |p| p.in_dim);
        assert!(
            parts.iter().all(|p| p.in_dim == in_dim),
            "input widths differ"
        );
        LinearWeights {
            weight: parts
                .iter()
                .flat_map(|p| p.weight.iter().copied())
                .collect(),
            bias: parts.iter().flat_map(|p| p.bias.iter().copied()).collect(),
            out_dim: parts.iter().map(|p| p.out_dim).sum(),
            in_dim,
        }
    }

    /// Packs the weight for the GEMM kernels.
    pub fn pack(&self) -> PackedLinear {
        PackedLinear::new(&self.weight, Some(&self.bias), self.out_dim, self.in_dim)
    }

    /// Packs the weight for the f32 or the bf16 GEMM.
    pub fn pack_as(&self, precision: Precision) -> PackedLinear {
        match precision {
            Precision::F32 => self.pack(),
            Precision::Bf16 => {
                PackedLinear::new_bf16(&self.weight, Some(&self.bias), self.out_dim, self.in_dim)
            }
        }
    }
}

/// Loads and packs `{name}.weight` `[out, in]` / `{name}.bias` `[out]`.
pub(crate) fn load_linear(
    w: &Weights,
    name: &str,
    in_dim: usize,
    out_dim: usize,
    hint: &str,
) -> Result<PackedLinear> {
    Ok(LinearWeights::load(w, name, in_dim, out_dim, hint)?.pack())
}

/// Loads `{name}.weight`/`{name}.bias`, or the legacy `{name}.gamma`/`{name}.beta`, of a
/// LayerNorm over `dim` features with `eps` (stored as f32, as PyTorch uses it).
pub(crate) fn load_layer_norm(
    w: &Weights,
    name: &str,
    dim: usize,
    eps: f64,
) -> Result<LayerNormParams> {
    let get = |names: [String; 2]| -> Result<Vec<f32>> {
        Ok(w.get_any(&names, &[dim], "")?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    Ok(LayerNormParams {
        gamma: get([format!("{name}.weight"), format!("{name}.gamma")])?,
        beta: get([format!("{name}.bias"), format!("{name}.beta")])?,
        eps: eps as f32,
    })
}
