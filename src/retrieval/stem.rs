//! The index's English analyzer, `en_stem`, as tantivy defines it (words, those over 40 bytes
//! dropped, lower-cased, Porter-stemmed), with each word's stem remembered per thread.
//!
//! Why: stemming every word of every rendering and note was an eighth of ingest's CPU time, and
//! clinical text says the same few thousand words again and again. The stems are the stemmer's
//! own, so the index is the same as with tantivy's analyzer (`tests::stems_as_tantivy_does`).

use std::cell::RefCell;

use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// The analyzer registered under `schema::TOKENIZER`.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(RememberedStems)
        .build()
}

/// A thread's memo is emptied when it holds this many words (at most about 2 MB: words are cut
/// at 40 bytes before stemming), per thread that analyzes text.
const REMEMBERED: usize = 20_000;

thread_local! {
    static STEMS: RefCell<foldhash::HashMap<Box<str>, Box<str>>> = RefCell::default();
}

/// Porter stemming (English) with a per-thread memo.
#[derive(Clone, Copy)]
struct RememberedStems;

impl TokenFilter for RememberedStems {
    type Tokenizer<T: Tokenizer> = StemFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> StemFilter<T> {
        StemFilter { inner }
    }
}

#[derive(Clone)]
struct StemFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for StemFilter<T> {
    type TokenStream<'a> = StemStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        StemStream { tail: self.inner.token_stream(text) }
    }
}

struct StemStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for StemStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        STEMS.with_borrow_mut(|memo| {
            if let Some(stem) = memo.get(token.text.as_str()) {
                token.text.clear();
                token.text.push_str(stem);
                return;
            }
            let stem: Box<str> =
                rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English).stem(&token.text).into();
            if memo.len() >= REMEMBERED {
                memo.clear();
            }
            memo.insert(std::mem::take(&mut token.text).into_boxed_str(), stem.clone());
            token.text = stem.into_string();
        });
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::TokenizerManager;

    use super::*;

    fn tokens(mut a: TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        let mut s = a.token_stream(text);
        while s.advance() {
            let t = s.token();
            out.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        out
    }

    #[test]
    fn stems_as_tantivy_does() {
        let theirs = TokenizerManager::default().get("en_stem").unwrap();
        let text = "Patients presenting with worsening hypertension; hypertensive crises resolved. \
                    Running, runs, ran: HbA1c 6.2% glucose GLUCOSE Glucoses. Ünïcödé naïve café \
                    supercalifragilisticexpialidociousandevenlongerthanfortybytes ok";
        // Twice: the second pass reads every stem from the memo.
        for _ in 0..2 {
            assert_eq!(tokens(analyzer(), text), tokens(theirs.clone(), text));
        }
        assert!(tokens(analyzer(), text).iter().any(|t| t.0 == "hypertens"));
    }
}
