//! f32 kernels for the one-token-at-a-time decoding loop, where candle's general operations
//! spend more time being general (allocations, a dense matrix product for a 4 x N problem,
//! thread hand-offs) than computing. A separate crate so that it is always built optimised,
//! tests included.

mod attention;

pub use attention::{attend_one, AttentionShape};

/// Runs `f` compiled for AVX2 and FMA when the CPU has them.
#[inline(always)]
pub(crate) fn fast<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}
