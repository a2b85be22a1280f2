//! Reading `tokenizer.json` (the Hugging Face `tokenizers` format) into `Tables`, for the one
//! kind of tokenizer ehrqa encodes with: Gemma 3's byte-fallback BPE, whose normaliser turns
//! spaces into `▁`, whose pre-tokenizer therefore never splits, and whose added tokens are all
//! matched in raw text. Any other shape is refused with what differs, rather than encoded wrong.

use std::collections::HashMap;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::merges;
use super::vocabulary::{Added, Tables};

#[derive(Deserialize)]
struct File {
    added_tokens: Vec<AddedJson>,
    normalizer: Value,
    pre_tokenizer: Value,
    decoder: Value,
    model: Model,
}

#[derive(Deserialize)]
struct AddedJson {
    content: String,
    special: bool,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
struct Model {
    #[serde(rename = "type")]
    kind: String,
    vocab: HashMap<String, u32>,
    merges: Vec<Merge>,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    dropout: Option<f64>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    ignore_merges: bool,
}

/// A merge, written `["a", "b"]` (tokenizers >= 0.20) or `"a b"` (before).
struct Merge(String, String);

impl<'de> Deserialize<'de> for Merge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Merge;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a merge: [\"a\", \"b\"] or \"a b\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Merge, E> {
                let (a, b) =
                    s.split_once(' ').ok_or_else(|| E::custom(format!("merge {s:?} has no space")))?;
                Ok(Merge(a.to_owned(), b.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Merge, A::Error> {
                let a = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let b = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(Merge(a, b))
            }
        }
        d.deserialize_any(V)
    }
}

/// The tables of a Gemma 3 `tokenizer.json`.
pub fn parse(text: &str) -> Result<Tables, String> {
    let file: File = serde_json::from_str(text).map_err(|e| format!("not a tokenizer.json: {e}"))?;
    check_shape(&file)?;
    let m = file.model;
    let len = m.vocab.values().max().map_or(0, |&id| id as usize + 1);
    let mut pieces = vec![String::new(); len];
    for (piece, &id) in &m.vocab {
        pieces[id as usize].clone_from(piece);
    }
    let merges = m
        .merges
        .iter()
        .map(|Merge(a, b)| {
            let id = |t: &str| {
                m.vocab.get(t).copied().ok_or_else(|| format!("merge token {t:?} is not in the vocabulary"))
            };
            Ok([id(a)?, id(b)?, id(&format!("{a}{b}"))?])
        })
        .collect::<Result<Vec<_>, String>>()?;
    let added = added_ids(&file.added_tokens, &m.vocab);
    Ok(Tables { pieces, merges: merges::sorted(&merges), added })
}

/// The added tokens with the ids `tokenizers` gives them, which are not the file's `id`s: a
/// token the vocabulary has takes its vocabulary id, any other the next id past the vocabulary,
/// in file order; empty and repeated contents are skipped.
fn added_ids(tokens: &[AddedJson], vocab: &HashMap<String, u32>) -> Vec<Added> {
    let special: std::collections::HashSet<&str> =
        tokens.iter().filter(|a| a.special).map(|a| a.content.as_str()).collect();
    let mut next = vocab.len() as u32;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for a in tokens {
        if a.content.is_empty() || !seen.insert(a.content.as_str()) {
            continue;
        }
        let id = vocab.get(&a.content).copied().unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        out.push(Added { content: a.content.clone(), id, special: special.contains(a.content.as_str()) });
    }
    out
}

fn check_shape(f: &File) -> Result<(), String> {
    let space = json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
    let expect =
        |what: &str, ok: bool| if ok { Ok(()) } else { Err(format!("unsupported tokenizer: {what}")) };
    expect("the normaliser is not Gemma's (spaces to ▁)", f.normalizer == space)?;
    expect(
        "the pre-tokenizer is not Gemma's (a split on spaces)",
        f.pre_tokenizer
            == json!({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}),
    )?;
    expect(
        "the decoder is not Gemma's",
        f.decoder
            == json!({"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]}),
    )?;
    let m = &f.model;
    expect("the model is not BPE", m.kind == "BPE")?;
    expect("BPE without byte fallback", m.byte_fallback)?;
    expect("BPE with dropout", m.dropout.is_none_or(|d| d == 0.0))?;
    expect(
        "BPE with a subword prefix or suffix",
        m.continuing_subword_prefix.as_deref().unwrap_or("").is_empty()
            && m.end_of_word_suffix.as_deref().unwrap_or("").is_empty(),
    )?;
    expect("BPE that ignores merges", !m.ignore_merges)?;
    expect(
        "added tokens that are normalised or strip spaces",
        f.added_tokens.iter().all(|a| !a.normalized && !a.single_word && !a.lstrip && !a.rstrip),
    )
}
