//! Applying a plan: seeds -> mutated resources -> one input's bytes.
//!
//! Nodes are picked by walking the tree in document order and counting (no paths are built), so a
//! mutation costs one or two walks of a resource however many nodes it has.

use base64::Engine;
use ehrqa::fhir::input::Format;
use proptest::sample::Index;
use serde_json::{json, Map, Number, Value as Json};

use crate::plan::{
    self, Base64Edit, ByteDamage, ByteEdit, Case, Edit, FormatChoice, Kind, OddNumber, Shape, Source,
};
use crate::seeds::{Seed, Seeds};

/// The most bytes a `Repeat` edit makes.
const MAX_REPEATED: usize = 512 << 10;

/// The case's resources, picked and mutated (none when it damages a whole fixture input).
pub fn resources(case: &Case, seeds: &Seeds) -> Vec<Seed> {
    let mut resources = pick(&case.source, seeds);
    for edit in &case.edits {
        apply(edit, &mut resources);
    }
    resources
}

/// The case's input: its resources wrapped into one container (they are moved, not copied),
/// then its byte damage; and the format to parse it as.
pub fn input(case: &Case, resources: Vec<Seed>, seeds: &Seeds) -> (Vec<u8>, Format) {
    let format = match case.format {
        FormatChoice::Auto => Format::Auto,
        FormatChoice::Json => Format::Json,
        FormatChoice::Ndjson => Format::Ndjson,
    };
    let mut bytes = match &case.source {
        Source::Input(i) => i.get(&seeds.inputs).clone(),
        _ => wrap(resources, &case.shape, case.pretty),
    };
    if let Some(edit) = &case.bytes {
        damage_input(edit, &mut bytes);
    }
    (bytes, format)
}

fn pick(source: &Source, seeds: &Seeds) -> Vec<Seed> {
    match source {
        Source::Mixed(picks) => picks
            .iter()
            .map(|(g, m)| {
                let group = g.get(&seeds.groups);
                seeds.all[*m.get(group)].clone()
            })
            .collect(),
        Source::Run { start, len } | Source::Many { start, len } => {
            let first = start.index(seeds.all.len());
            seeds.all.iter().cycle().skip(first).take(*len).cloned().collect()
        }
        Source::Input(_) => Vec::new(),
    }
}

// ---- choosing nodes ----

/// Whether a node (with the key it sits under, if in an object) is a candidate.
type Pred = fn(Option<&str>, &Json) -> bool;

fn any_node(_: Option<&str>, _: &Json) -> bool {
    true
}

fn container(_: Option<&str>, v: &Json) -> bool {
    matches!(v, Json::Object(m) if !m.is_empty()) || matches!(v, Json::Array(a) if !a.is_empty())
}

fn date_like(_: Option<&str>, v: &Json) -> bool {
    v.as_str().is_some_and(|s| s.len() >= 4 && s.as_bytes()[..4].iter().all(u8::is_ascii_digit))
}

fn reference_string(key: Option<&str>, v: &Json) -> bool {
    key == Some("reference") && v.is_string()
}

fn attachment(_: Option<&str>, v: &Json) -> bool {
    v.get("data").is_some() && v.is_object()
}

fn count(v: &Json, key: Option<&str>, pred: Pred) -> usize {
    let own = usize::from(pred(key, v));
    own + match v {
        Json::Object(m) => m.iter().map(|(k, c)| count(c, Some(k), pred)).sum(),
        Json::Array(a) => a.iter().map(|c| count(c, None, pred)).sum(),
        _ => 0,
    }
}

fn nth<'a>(v: &'a mut Json, key: Option<&str>, n: &mut usize, pred: Pred) -> Option<&'a mut Json> {
    if pred(key, v) {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
    }
    match v {
        Json::Object(m) => m.iter_mut().find_map(|(k, c)| nth(c, Some(k), n, pred)),
        Json::Array(a) => a.iter_mut().find_map(|c| nth(c, None, n, pred)),
        _ => None,
    }
}

/// The node `i` picks among those matching `pred` (the root included), if any match.
fn choose<'a>(v: &'a mut Json, i: &Index, pred: Pred) -> Option<&'a mut Json> {
    let total = count(v, None, pred);
    if total == 0 {
        return None;
    }
    nth(v, None, &mut i.index(total), pred)
}

// ---- resource edits ----

fn apply(edit: &Edit, resources: &mut [Seed]) {
    if resources.is_empty() {
        return;
    }
    let n = resources.len();
    let entry = |i: &Index| i.index(n);
    match edit {
        Edit::SwapType { entry: e, node, to } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, any_node) {
                *n = swapped(n.take(), *to);
            }
        }
        Edit::Nest { entry: e, node, depth, array } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, any_node) {
                *n = nested(n.take(), *depth, *array);
            }
        }
        Edit::HugeString { entry: e, node, len, fill } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, any_node) {
                *n = Json::String(std::iter::repeat_n(*fill, *len).collect());
            }
        }
        Edit::Repeat { entry: e, node, count } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, any_node) {
                *n = repeated(n.take(), *count);
            }
        }
        Edit::OddString { entry: e, node, text } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, any_node) {
                *n = Json::String(text.clone());
            }
        }
        Edit::OddNumber { entry: e, node, number } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, any_node) {
                *n = Json::Number(odd_number(*number));
            }
        }
        Edit::BadDate { entry: e, node, date } => bad_date(&mut resources[entry(e)].resource, node, date),
        Edit::BadReference { entry: e, node, reference } => {
            bad_reference(&mut resources[entry(e)].resource, node, reference)
        }
        Edit::BadBase64 { entry: e, node, how } => bad_base64(&mut resources[entry(e)].resource, node, how),
        Edit::Attach { entry: e, content_type, bytes, place } => {
            attach(&mut resources[entry(e)].resource, content_type, bytes, place)
        }
        Edit::AttachmentBytes { entry: e, node, damage: d } => {
            if let Some(a) = choose(&mut resources[entry(e)].resource, node, attachment) {
                damage_attachment(a, d);
            }
        }
        Edit::ContentType { entry: e, node, content_type } => {
            if let Some(a) = choose(&mut resources[entry(e)].resource, node, attachment) {
                a["contentType"] = json!(content_type);
            }
        }
        Edit::Duplicate { entry: e, from, whole } => duplicate(resources, entry(e), entry(from), *whole),
        Edit::Remove { entry: e, node, child } => {
            if let Some(n) = choose(&mut resources[entry(e)].resource, node, container) {
                remove_child(n, child);
            }
        }
        Edit::SetType { entry: e, rtype } => {
            set_key(&mut resources[entry(e)].resource, "resourceType", json!(rtype))
        }
        Edit::SetId { entry: e, id } => set_key(&mut resources[entry(e)].resource, "id", json!(id)),
        Edit::SetFullUrl { entry: e, url } => resources[entry(e)].full_url = url.clone(),
    }
}

fn set_key(resource: &mut Json, key: &str, value: Json) {
    if let Some(obj) = resource.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
}

fn swapped(old: Json, to: Kind) -> Json {
    match to {
        Kind::Null => Json::Null,
        Kind::Bool => Json::Bool(!old.is_null()),
        Kind::Number => json!(old.as_str().map_or(7, str::len)),
        Kind::String => Json::String(old.to_string().chars().take(40).collect()),
        Kind::EmptyArray => json!([]),
        Kind::Array => json!([old]),
        Kind::EmptyObject => json!({}),
        Kind::Object => json!({ "value": old }),
    }
}

fn nested(mut v: Json, depth: usize, array: bool) -> Json {
    for _ in 0..depth {
        v = if array { json!([v]) } else { json!({ "extension": v }) };
    }
    v
}

/// Copies of a node (an array's first element, else the node itself), at most `MAX_REPEATED`
/// bytes of them: the case is about many elements, not about a huge input.
fn repeated(v: Json, count: usize) -> Json {
    let item = match v {
        Json::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        other => other,
    };
    let size = item.to_string().len().max(1);
    Json::Array(vec![item; count.min(MAX_REPEATED / size).max(1)])
}

fn odd_number(n: OddNumber) -> Number {
    match n {
        OddNumber::Zero => 0.into(),
        OddNumber::NegZero => Number::from_f64(-0.0).expect("finite"),
        OddNumber::Max => Number::from_f64(f64::MAX).expect("finite"),
        OddNumber::Min => Number::from_f64(f64::MIN).expect("finite"),
        OddNumber::Tiny => Number::from_f64(5e-324).expect("finite"),
        OddNumber::U64Max => u64::MAX.into(),
        OddNumber::I64Min => i64::MIN.into(),
        OddNumber::Beyond53 => ((1u64 << 53) + 1).into(),
        OddNumber::Fraction => Number::from_f64(0.1 + 0.2).expect("finite"),
    }
}

fn bad_date(resource: &mut Json, node: &Index, date: &str) {
    match choose(resource, node, date_like) {
        Some(n) => *n = json!(date),
        None => set_key(resource, plan::date_key(node), json!(date)),
    }
}

fn bad_reference(resource: &mut Json, node: &Index, reference: &str) {
    match choose(resource, node, reference_string) {
        Some(n) => *n = json!(reference),
        None => set_key(
            resource,
            plan::REFERENCE_KEYS[node.index(plan::REFERENCE_KEYS.len())],
            json!({ "reference": reference }),
        ),
    }
}

fn bad_base64(resource: &mut Json, node: &Index, how: &Base64Edit) {
    if choose(resource, node, attachment).is_none() {
        attach(resource, "text/plain", b"Hello note", node);
    }
    let Some(a) = choose(resource, node, attachment) else { return };
    let old = a["data"].as_str().unwrap_or_default().to_owned();
    a["data"] = match how {
        Base64Edit::NotAString(kind) => swapped(Json::String(old), *kind),
        how => Json::String(damaged_base64(old, how)),
    };
}

fn damaged_base64(mut s: String, how: &Base64Edit) -> String {
    let boundary = |s: &str, i: &Index| {
        let mut at = i.index(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match how {
        Base64Edit::Char { at, c } => {
            let at = boundary(&s, at);
            s.insert(at, *c);
        }
        Base64Edit::Truncate(at) => {
            let at = boundary(&s, at);
            s.truncate(at);
        }
        Base64Edit::DropPadding => s = s.trim_end_matches('=').to_owned(),
        Base64Edit::ExtraPadding => s.push_str("=="),
        Base64Edit::Whitespace { at, ws } => {
            let at = boundary(&s, at);
            s.insert_str(at, ws);
        }
        Base64Edit::UrlSafe => s = s.replace('+', "-").replace('/', "_"),
        Base64Edit::Empty => s.clear(),
        Base64Edit::NotAString(_) => {}
    }
    s
}

/// Adds an attachment where one of the normalisers looks: `content[].attachment` (a
/// DocumentReference), `content` itself (Media), or `presentedForm[]` (a DiagnosticReport).
fn attach(resource: &mut Json, content_type: &str, bytes: &[u8], place: &Index) {
    let Some(obj) = resource.as_object_mut() else { return };
    let att = json!({"contentType": content_type,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes)});
    match place.index(3) {
        0 => push(obj, "content", json!({ "attachment": att })),
        1 => {
            obj.insert("content".to_owned(), att);
        }
        _ => push(obj, "presentedForm", att),
    }
}

fn push(obj: &mut Map<String, Json>, key: &str, item: Json) {
    match obj.get_mut(key) {
        Some(Json::Array(list)) => list.push(item),
        _ => {
            obj.insert(key.to_owned(), json!([item]));
        }
    }
}

fn damage_attachment(att: &mut Json, damage: &ByteDamage) {
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(mut bytes) = att["data"].as_str().and_then(|d| engine.decode(d).ok()) else { return };
    damage_bytes(&mut bytes, damage);
    att["data"] = Json::String(engine.encode(&bytes));
}

pub fn damage_bytes(bytes: &mut Vec<u8>, damage: &ByteDamage) {
    let len = bytes.len();
    match damage {
        ByteDamage::Truncate(at) => bytes.truncate(at.index(len + 1)),
        ByteDamage::Flip { at, mask } if len > 0 => bytes[at.index(len)] ^= mask,
        ByteDamage::Flip { .. } => {}
        ByteDamage::Insert { at, bytes: new } => {
            let at = at.index(len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        ByteDamage::Splice { from, to, len: n } if len > 0 => {
            let from = from.index(len);
            let chunk: Vec<u8> = bytes[from..(from + n).min(len)].to_vec();
            let to = to.index(len);
            let end = (to + chunk.len()).min(len);
            bytes.splice(to..end, chunk);
        }
        ByteDamage::Splice { .. } => {}
    }
}

fn duplicate(resources: &mut [Seed], entry: usize, from: usize, whole: bool) {
    if whole {
        resources[entry] = resources[from].clone();
        return;
    }
    for key in ["resourceType", "id"] {
        if let Some(v) = resources[from].resource.get(key).cloned() {
            set_key(&mut resources[entry].resource, key, v);
        }
    }
    resources[entry].full_url = resources[from].full_url.clone();
}

fn remove_child(n: &mut Json, child: &Index) {
    match n {
        Json::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(child.index(m.len())).cloned().expect("in range");
            m.remove(&key);
        }
        Json::Array(a) if !a.is_empty() => {
            a.remove(child.index(a.len()));
        }
        _ => {}
    }
}

// ---- the input ----

/// Pretty-printing multiplies a deeply nested input's size by its depth; only inputs smaller
/// than this are pretty-printed, so that cases stay far below the input limit.
const MAX_PRETTY: usize = 64 * 1024;

fn wrap(resources: Vec<Seed>, shape: &Shape, pretty: bool) -> Vec<u8> {
    let to_bytes = |v: &Json| {
        let compact = serde_json::to_vec(v).expect("a JSON value serialises");
        if pretty && compact.len() < MAX_PRETTY {
            serde_json::to_vec_pretty(v).expect("a JSON value serialises")
        } else {
            compact
        }
    };
    match shape {
        Shape::Bundle { kind, method } => to_bytes(&bundle(resources, kind, *method)),
        Shape::BrokenBundle(how) => to_bytes(&broken_bundle(resources, how)),
        Shape::Array => to_bytes(&Json::Array(resources.into_iter().map(|s| s.resource).collect())),
        Shape::Single => to_bytes(&resources[0].resource),
        Shape::Ndjson => {
            let lines: Vec<String> = resources.iter().map(|s| s.resource.to_string()).collect();
            (lines.join("\n") + "\n").into_bytes()
        }
    }
}

/// A bundle entry, built by moving the resource in (`json!` would copy it through a serialiser).
fn entry(s: Seed, method: Option<&str>) -> Json {
    let mut e = Map::new();
    if let Some(url) = s.full_url {
        e.insert("fullUrl".to_owned(), Json::String(url));
    }
    if let Some(m) = method {
        e.insert("request".to_owned(), json!({"method": m, "url": s.resource.get("resourceType")}));
    }
    e.insert("resource".to_owned(), s.resource);
    Json::Object(e)
}

fn bundle(resources: Vec<Seed>, kind: &str, method: Option<&str>) -> Json {
    let entries: Vec<Json> = resources.into_iter().map(|s| entry(s, method)).collect();
    let mut b = json!({"resourceType": "Bundle", "type": kind});
    b["entry"] = Json::Array(entries);
    b
}

fn broken_bundle(resources: Vec<Seed>, how: &Index) -> Json {
    let first = resources[0].clone();
    let mut b = bundle(resources, "collection", None);
    let mut entries = b["entry"].take();
    let first_entry = entries[0].clone();
    let list = entries.as_array_mut().expect("built as an array");
    match how.index(11) {
        0 => entries = first_entry,
        1 => entries = Json::Null,
        2 => list.push(json!("not an entry")),
        3 => list.push(json!({"fullUrl": "urn:uuid:1"})),
        4 => list[0]["resource"] = Json::Array(vec![first.resource]),
        5 => list[0]["fullUrl"] = json!(12),
        6 => list.insert(0, json!({ "resource": bundle(vec![first], "batch", None) })),
        7 => list[0]["request"] = json!({"method": "GET\nDELETE", "url": "x"}),
        8 => list[0]["request"] = json!({"method": "\u{e9}".repeat(100_000)}),
        9 => list[0]["request"] = json!({"method": ["POST"]}),
        _ => return json!({"resourceType": "Bundle", "type": "collection"}),
    }
    b["entry"] = entries;
    b
}

fn damage_input(edit: &ByteEdit, bytes: &mut Vec<u8>) {
    match edit {
        ByteEdit::Damage(d) => damage_bytes(bytes, d),
        ByteEdit::InvalidUtf8 { at, seq } => {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, seq.iter().copied());
        }
        ByteEdit::Bom => {
            bytes.splice(0..0, *b"\xef\xbb\xbf");
        }
        ByteEdit::CrLf => {
            *bytes = String::from_utf8_lossy(bytes).replace('\n', "\r\n").into_bytes();
        }
    }
}
