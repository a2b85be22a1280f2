//! f32 kernels for the one-token-at-a-time decoding loop, where candle's general operations
//! spend more time being general (allocations, a dense matrix product for a 4 x N problem,
//! thread hand-offs) than computing. A separate crate so that it is always built optimised,
//! tests included.

/// Whether the CPU runs the AVX2 + FMA builds of the kernels.
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name` calling the `#[inline(always)]` `$inner` compiled for AVX2 and FMA when the
/// CPU has them (a closure passed to a `target_feature` function is not reliably compiled with
/// its features, and `mul_add` without FMA is a slow library call).
#[macro_export]
macro_rules! with_avx2 {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) -> $r:ty = $inner:ident;) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) -> $r {
            #[cfg(target_arch = "x86_64")]
            {
                /// `$inner` compiled for AVX2 and FMA.
                ///
                /// # Safety
                /// The CPU must have AVX2 and FMA (checked just before the one call). `$inner`
                /// is safe code, so nothing else is promised.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($a: $t),*) -> $r {
                    $inner($($a),*)
                }
                if $crate::has_avx2_fma() {
                    // SAFETY: the CPU has the features `fast` is compiled for.
                    return unsafe { fast($($a),*) };
                }
            }
            $inner($($a),*)
        }
    };
}

mod attention;
mod attention_f16;
mod exp;
mod gelu;

pub use attention::{attend_part, combine, AttentionShape, Partial};
pub use attention_f16::{attend_part_f16, attend_part_kv, KvSlice};
pub use gelu::geglu;

/// Deterministic test inputs: `q` for `shape`, and keys and values for its held positions.
#[cfg(test)]
pub(crate) fn test_inputs(shape: AttentionShape) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let f = |i: usize| ((i * 37 % 101) as f32 / 50.0) - 1.0;
    let kv = shape.kv_heads * shape.held * shape.head_dim;
    let q = (0..shape.heads * shape.head_dim).map(f).collect();
    (q, (0..kv).map(|i| f(i + 7)).collect(), (0..kv).map(|i| f(i + 13)).collect())
}
