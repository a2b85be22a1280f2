//! Rotary position embeddings, "rotate half" layout (the reference's and llama.cpp's NEOX
//! style), with linear scaling: a factor `f` divides every angle (MedGemma's global layers use 8).

use candle_core::{Device, Tensor};

use super::config::Rope;
use super::numerics::Numerics;
use crate::llm::LlmError;

/// cos and sin of every angle for a run of positions, `[len, head_dim / 2]`.
pub struct RopeTables {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTables {
    /// Angles for positions `first..first + len`. Under `Numerics::F32` each frequency is
    /// `1 / theta^(2i/d)` as the reference computes it; under `Numerics::Ggml` they are built as
    /// ggml builds them (each frequency the previous one times `theta^(-2/d)`, in f32), so the
    /// rotated values match llama.cpp's to the bit.
    pub fn new(
        rope: Rope,
        head_dim: usize,
        first: usize,
        len: usize,
        numerics: Numerics,
        device: &Device,
    ) -> Result<Self, LlmError> {
        let half = head_dim / 2;
        let scale = 1.0 / rope.factor as f32;
        let factor = rope.factor as f32;
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| (1.0 / (rope.theta as f32).powf(2.0 * i as f32 / head_dim as f32)) / factor)
            .collect();
        let step = (rope.theta as f32).powf(-2.0 / head_dim as f32);
        for p in first..first + len {
            let mut theta = p as f32;
            for f in &inv_freq {
                let angle = match numerics {
                    Numerics::F32 => p as f32 * f,
                    Numerics::Ggml => scale * theta,
                };
                cos.push(angle.cos());
                sin.push(angle.sin());
                theta *= step;
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (len, half), device)?,
            sin: Tensor::from_vec(sin, (len, half), device)?,
        })
    }

    /// Rotates `x`, `[heads, len, head_dim]`.
    pub fn apply(&self, x: &Tensor, numerics: Numerics) -> Result<Tensor, LlmError> {
        match numerics {
            Numerics::F32 => {
                Ok(candle_nn::rotary_emb::rope(&x.unsqueeze(0)?, &self.cos, &self.sin)?.squeeze(0)?)
            }
            Numerics::Ggml => self.apply_fused(x),
        }
    }

    /// ggml's rotation, whose compiled form fuses one product of each pair into the sum:
    /// `fma(x0, cos, -(x1 sin))` and `fma(x0, sin, x1 cos)`.
    fn apply_fused(&self, x: &Tensor) -> Result<Tensor, LlmError> {
        let (heads, len, dim) = x.dims3()?;
        let half = dim / 2;
        let (cos, sin) =
            (self.cos.flatten_all()?.to_vec1::<f32>()?, self.sin.flatten_all()?.to_vec1::<f32>()?);
        let mut v = x.flatten_all()?.to_vec1::<f32>()?;
        for (r, row) in v.chunks_mut(dim).enumerate() {
            let t = (r % len) * half;
            let (a, b) = row.split_at_mut(half);
            for i in 0..half {
                let (x0, x1, c, s) = (a[i], b[i], cos[t + i], sin[t + i]);
                a[i] = x0.mul_add(c, -(x1 * s));
                b[i] = x0.mul_add(s, x1 * c);
            }
        }
        Ok(Tensor::from_vec(v, (heads, len, dim), x.device())?)
    }
}
