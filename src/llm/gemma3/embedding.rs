//! Input embeddings. A quantized embedding table (GGUF) is looked up row by row in its quantized
//! form and only the rows a step needs are dequantized: the 270M model's 262,144 x 640 table is
//! 178 MB as Q8_0 and would be 671 MB as f32. With tied weights it is the output head's own
//! tensor, so it is held once.

use std::sync::Arc;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, QTensor};
use candle_core::{DType, Device, Tensor};

use crate::llm::LlmError;

pub enum Embeddings {
    /// `[vocab, hidden]` f32 (safetensors checkpoints).
    Dense(Tensor),
    Quantized(Arc<QTensor>),
}

impl Embeddings {
    /// `[ids, hidden]` f32 rows.
    pub fn lookup(&self, ids: &[u32], device: &Device) -> Result<Tensor, LlmError> {
        match self {
            Embeddings::Dense(t) => {
                let ids = Tensor::from_slice(ids, ids.len(), device)?;
                Ok(t.index_select(&ids, 0)?.to_dtype(DType::F32)?)
            }
            Embeddings::Quantized(q) => {
                let (vocab, hidden) = q.shape().dims2()?;
                let dtype = q.dtype();
                let row = hidden / dtype.block_size() * dtype.type_size();
                let data = q.data()?;
                let mut rows = Vec::with_capacity(ids.len() * row);
                for &id in ids {
                    let id = id as usize;
                    if id >= vocab {
                        return Err(LlmError::Weights(format!(
                            "token id {id} is outside the vocabulary of {vocab}"
                        )));
                    }
                    rows.extend_from_slice(&data[id * row..(id + 1) * row]);
                }
                let picked = qtensor_from_ggml(dtype, &rows, vec![ids.len(), hidden], device)?;
                Ok(picked.dequantize(device)?.to_dtype(DType::F32)?)
            }
        }
    }
}
