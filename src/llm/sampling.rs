//! Choosing the next token: greedy (argmax), or temperature with nucleus (top-p) sampling from a
//! seeded generator so a run can be repeated.

/// How to pick tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_p: 1.0, seed: 0 }
    }
}

pub struct Sampler {
    cfg: Sampling,
    state: u64,
}

impl Sampler {
    pub fn new(cfg: Sampling) -> Self {
        Self { cfg, state: cfg.seed ^ 0x9e37_79b9_7f4a_7c15 }
    }

    fn uniform(&mut self) -> f32 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The next token id from logits over the vocabulary.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = self.cfg.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> =
            logits.iter().enumerate().map(|(i, &l)| (i as u32, ((l - max) / t).exp())).collect();
        let sum: f32 = probs.iter().map(|p| p.1).sum();
        probs.iter_mut().for_each(|p| p.1 /= sum);
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut cum = 0.0;
        let keep = probs
            .iter()
            .position(|p| {
                cum += p.1;
                cum >= self.cfg.top_p
            })
            .map_or(probs.len(), |i| i + 1);
        let probs = &probs[..keep];
        let total: f32 = probs.iter().map(|p| p.1).sum();
        let mut r = self.uniform() * total;
        for (id, p) in probs {
            r -= p;
            if r <= 0.0 {
                return *id;
            }
        }
        probs.last().map_or(0, |p| p.0)
    }
}

/// Index of the largest logit (the first on ties, as llama.cpp and torch do).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax_and_sampling_repeats_with_a_seed() {
        let logits = [0.1, 2.0, 1.9, -1.0];
        assert_eq!(Sampler::new(Sampling::default()).sample(&logits), 1);
        let s = Sampling { temperature: 1.0, top_p: 0.95, seed: 7 };
        let a: Vec<u32> = {
            let mut x = Sampler::new(s);
            (0..20).map(|_| x.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut x = Sampler::new(s);
            (0..20).map(|_| x.sample(&logits)).collect()
        };
        assert_eq!(a, b);
        assert!(a.contains(&2), "sampling explores");
        let narrow = Sampling { temperature: 1.0, top_p: 0.01, seed: 7 };
        assert!((0..20).all(|_| Sampler::new(narrow).sample(&logits) == 1), "top-p keeps the best");
    }
}
