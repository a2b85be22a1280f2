//! Token counting, as a seam between the layers that need counts (ingest, context assembly) and
//! the tokenizer that produces them (`llm::tokenizer`), which sits further down the layering.

use std::fmt;

/// Counts the tokens a text costs in the model's window.
pub trait TokenCounter: Send + Sync {
    /// Tokens of `text` on its own, without special tokens.
    fn count(&self, text: &str) -> usize;
}

/// A line as it stands in an assembled context: preceded by a newline and followed by a space.
///
/// Gemma's tokenizer splits only at spaces, so with the trailing space no token can span two
/// lines, and the tokens of a context are exactly the sum of its lines' counts. That lets each
/// record's count be computed once, at ingest, and a 128K context be counted without tokenizing
/// it again (tested against the real tokenizer in `tests/it/retrieval.rs`).
pub fn context_line(text: &str) -> String {
    format!("\n{text} ")
}

/// A context budget in tokens: from 256 up to MedGemma 1.5's 128K window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TokenBudget(usize);

impl TokenBudget {
    pub const MIN: usize = 256;
    pub const MAX: usize = 131_072;
    pub const DEFAULT: TokenBudget = TokenBudget(8_192);

    pub fn new(tokens: usize) -> Result<Self, BudgetError> {
        if (Self::MIN..=Self::MAX).contains(&tokens) {
            Ok(Self(tokens))
        } else {
            Err(BudgetError(tokens))
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl fmt::Display for TokenBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for TokenBudget {
    type Err = BudgetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().replace(['_', ','], "");
        let n = match n.strip_suffix(['k', 'K']) {
            Some(k) => k.parse::<usize>().map(|k| k * 1024),
            None => n.parse::<usize>(),
        };
        n.map_err(|_| BudgetError(0)).and_then(Self::new)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token budget must be between 256 and 131072 (128K) tokens, got {0}")]
pub struct BudgetError(pub usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_and_refuse_out_of_range_values() {
        assert_eq!("8192".parse::<TokenBudget>().unwrap().get(), 8192);
        assert_eq!("128k".parse::<TokenBudget>().unwrap().get(), 131_072);
        assert!("100".parse::<TokenBudget>().is_err());
        assert!("200000".parse::<TokenBudget>().is_err());
        assert!("lots".parse::<TokenBudget>().is_err());
    }
}
