//! Times, over every file of the directories given (best of five passes, one thread):
//! - `serde_json::Value`: parsing into the tree ingest builds, and dropping it;
//! - scanning only (`IgnoredAny`), the least any parser must do;
//! - a borrowed tree: strings without escapes point into the input and objects are vectors,
//!   the tree a rewrite of `fhir::input` could build (a sketch that trusts valid JSON);
//! - canonical serialisation of the `Value` tree (what `prepare` stores and hashes).

use std::borrow::Cow;
use std::time::Instant;

use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A JSON value whose strings borrow from the input where they can.
enum Tree<'a> {
    Scalar,
    Str(Cow<'a, str>),
    Array(Vec<Tree<'a>>),
    Object(Vec<(Cow<'a, str>, Tree<'a>)>),
}

impl Tree<'_> {
    /// Values, and bytes of string values, in the tree.
    fn size(&self) -> (usize, usize) {
        match self {
            Tree::Array(items) => items.iter().map(Tree::size).fold((1, 0), add),
            Tree::Object(fields) => fields.iter().map(|(_, v)| v.size()).fold((1, 0), add),
            Tree::Str(s) => (1, s.len()),
            Tree::Scalar => (1, 0),
        }
    }
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0 + b.0, a.1 + b.1)
}

/// A recursive-descent reader of valid JSON text.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&self) -> u8 {
        self.text.as_bytes()[self.at]
    }

    fn skip_space(&mut self) {
        while self.at < self.text.len() && matches!(self.byte(), b' ' | b'\n' | b'\r' | b'\t') {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Tree<'a> {
        self.skip_space();
        match self.byte() {
            b'{' => Tree::Object(self.list(b'}', |r| {
                let key = r.string();
                r.skip_space();
                r.at += 1; // ':'
                (key, r.value())
            })),
            b'[' => Tree::Array(self.list(b']', Reader::value)),
            b'"' => Tree::Str(self.string()),
            _ => {
                let bytes = self.text.as_bytes();
                while self.at < bytes.len() && !matches!(bytes[self.at], b',' | b'}' | b']' | b' ' | b'\n') {
                    self.at += 1;
                }
                Tree::Scalar
            }
        }
    }

    /// The items of an array or object, up to `close`.
    fn list<T>(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> T) -> Vec<T> {
        self.at += 1;
        let mut out = Vec::new();
        self.skip_space();
        if self.byte() == close {
            self.at += 1;
            return out;
        }
        loop {
            self.skip_space();
            out.push(item(self));
            self.skip_space();
            let sep = self.byte();
            self.at += 1;
            if sep == close {
                return out;
            }
        }
    }

    fn string(&mut self) -> Cow<'a, str> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut end = start + 1;
        let mut escaped = false;
        while bytes[end] != b'"' {
            if bytes[end] == b'\\' {
                escaped = true;
                end += 1;
            }
            end += 1;
        }
        self.at = end + 1;
        if escaped {
            Cow::Owned(serde_json::from_str(&self.text[start..=end]).expect("a JSON string"))
        } else {
            Cow::Borrowed(&self.text[start + 1..end])
        }
    }
}

/// As `Tree::size`.
fn value_size(v: &Value) -> (usize, usize) {
    match v {
        Value::Array(items) => items.iter().map(value_size).fold((1, 0), add),
        Value::Object(fields) => fields.values().map(value_size).fold((1, 0), add),
        Value::String(s) => (1, s.len()),
        _ => (1, 0),
    }
}

/// The best of five passes of `f` over `items`, in milliseconds, and what it returned.
fn best<T>(items: &[T], f: impl Fn(&T) -> (usize, usize)) -> (f64, (usize, usize)) {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let n = items.iter().map(&f).fold((0, 0), add);
            (t.elapsed().as_secs_f64() * 1000.0, n)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("five passes")
}

fn main() {
    let mut files = Vec::new();
    for dir in std::env::args().skip(1) {
        for entry in std::fs::read_dir(&dir).expect("a directory") {
            files.push(std::fs::read_to_string(entry.expect("an entry").path()).expect("UTF-8 text"));
        }
    }
    let mb = files.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    let (value, size) = best(&files, |s| value_size(&serde_json::from_str::<Value>(s).expect("JSON")));
    let (scan, _) = best(&files, |s| {
        serde_json::from_str::<serde::de::IgnoredAny>(s).expect("JSON");
        (0, 0)
    });
    let (borrowed, borrowed_size) = best(&files, |s| Reader { text: s, at: 0 }.value().size());
    assert_eq!(size, borrowed_size, "both trees hold the same values and strings");
    let nodes = size.0;
    let trees: Vec<Value> = files.iter().map(|s| serde_json::from_str(s).expect("JSON")).collect();
    let (serialise, (serialised, _)) =
        best(&trees, |v| (serde_json::to_string(v).expect("serialises").len(), 0));
    println!("{mb:.1} MB, {nodes} values");
    println!("serde_json::Value parse + drop  {value:7.1} ms  {:6.1} MB/s", mb / value * 1000.0);
    println!("scan only (IgnoredAny)          {scan:7.1} ms  {:6.1} MB/s", mb / scan * 1000.0);
    println!("borrowed tree parse + drop      {borrowed:7.1} ms  {:6.1} MB/s", mb / borrowed * 1000.0);
    println!("canonical serialise (Value)     {serialise:7.1} ms  ({:.1} MB out)", serialised as f64 / 1e6);
}
