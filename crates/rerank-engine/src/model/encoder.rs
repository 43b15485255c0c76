//! The transformer encoder stack shared by BERT and XLM-R (post-LayerNorm blocks:
//! self-attention → add & norm → feed-forward → add & norm), as `BertLayer` in transformers.

use candle_core::{Module, Tensor};

use super::layers::{LayerNorm, Linear};
use crate::config::{EncoderConfig, HiddenAct};
use crate::error::Result;
use crate::weights::Weights;

/// One `encoder.layer.N` block with a fused Q/K/V projection.
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// `encoder.layer.*` of a BERT / XLM-R model.
pub struct Encoder {
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    act: HiddenAct,
}

impl Encoder {
    /// Loads `{prefix}encoder.layer.{0..num_hidden_layers}`.
    pub fn load(w: &Weights, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let eps = cfg.layer_norm_eps;
        let layers = (0..cfg.num_hidden_layers)
            .map(|n| {
                let p = format!("{prefix}encoder.layer.{n}");
                let q = Linear::load(w, &format!("{p}.attention.self.query"), h, h, "")?;
                let k = Linear::load(w, &format!("{p}.attention.self.key"), h, h, "")?;
                let v = Linear::load(w, &format!("{p}.attention.self.value"), h, h, "")?;
                Ok(Layer {
                    qkv: Linear::concat(&[q, k, v])?,
                    attn_out: Linear::load(w, &format!("{p}.attention.output.dense"), h, h, "")?,
                    attn_norm: LayerNorm::load(
                        w,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        eps,
                    )?,
                    intermediate: Linear::load(w, &format!("{p}.intermediate.dense"), h, i, "")?,
                    output: Linear::load(w, &format!("{p}.output.dense"), i, h, "")?,
                    out_norm: LayerNorm::load(w, &format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            act: cfg.hidden_act,
        })
    }

    /// `hidden`: `[batch * seq_len, hidden]`; `mask_bias`: `[batch, 1, 1, seq_len]` additive
    /// (0 for real tokens, a large negative for padding). Returns `[batch * seq_len, hidden]`.
    pub fn forward(
        &self,
        hidden: Tensor,
        mask_bias: &Tensor,
        batch: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        let mut x = hidden;
        for layer in &self.layers {
            x = self.layer_forward(layer, &x, mask_bias, batch, seq_len)?;
        }
        Ok(x)
    }

    fn layer_forward(
        &self,
        l: &Layer,
        x: &Tensor,
        mask_bias: &Tensor,
        batch: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        let (nh, hd) = (self.heads, self.head_dim);
        let h = nh * hd;
        // [b*l, 3h] → [b, l, 3, nh, hd] → three [b, nh, l, hd]
        let qkv = l.qkv.forward(x)?.reshape((batch, seq_len, 3, nh, hd))?;
        let split = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch * seq_len, h))?;
        let attn = l.attn_out.forward(&ctx)?;
        let x = l.attn_norm.forward(&(attn + x)?)?;
        let inter = l.intermediate.forward(&x)?;
        let inter = match self.act {
            HiddenAct::GeluErf => inter.gelu_erf()?,
            HiddenAct::GeluTanh => inter.gelu()?,
            HiddenAct::Relu => inter.relu()?,
            HiddenAct::Silu => inter.silu()?,
        };
        let out = l.output.forward(&inter)?;
        Ok(l.out_norm.forward(&(out + x)?)?)
    }
}

/// Additive attention bias from a `[batch, seq_len]` 0/1 mask: `[batch, 1, 1, seq_len]` with
/// 0 for attended tokens and `f32::MIN` for padding (as transformers' extended attention mask).
pub fn mask_bias(
    mask: &[u8],
    batch: usize,
    seq_len: usize,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let bias: Vec<f32> = mask
        .iter()
        .map(|&m| if m != 0 { 0.0 } else { f32::MIN })
        .collect();
    Ok(Tensor::from_vec(bias, (batch, 1, 1, seq_len), device)?)
}
