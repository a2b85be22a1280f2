//! Text made safe for logs: warnings and errors name references by their type only.
//!
//! Errors from lower layers carry what a person debugging needs (`Observation/9e64...: not
//! found`, a server's URL `.../Patient/7e58.../$everything`), but resource and patient ids are
//! patient data in a log. `redact` keeps the words and the resource types and drops the ids:
//! the id after any known resource type and a slash, any value of a `patient`/`subject`
//! parameter, and every UUID, whatever it follows.

use super::resource_type::is_known;

/// What an id is replaced with.
const HIDDEN: &str = "<id>";

/// `text` with every resource id, patient parameter and UUID replaced by `<id>`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((word, sep, after)) = next_word(rest) {
        out.push_str(&rest[..rest.len() - word.len() - sep.len() - after.len()]);
        out.push_str(word);
        out.push_str(sep);
        rest = after;
        if hides_next(word, sep) {
            let id_len = rest.find(|c: char| !is_id_char(c)).unwrap_or(rest.len());
            if id_len > 0 {
                out.push_str(HIDDEN);
                rest = &rest[id_len..];
            }
        }
    }
    out.push_str(rest);
    hide_uuids(&out)
}

/// The next word (letters) of `s` and the separator after it, if any; with the rest after both.
fn next_word(s: &str) -> Option<(&str, &str, &str)> {
    let start = s.find(|c: char| c.is_ascii_alphabetic())?;
    let tail = &s[start..];
    let end = tail.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(tail.len());
    let (word, after) = tail.split_at(end);
    let sep_len = if after.starts_with('/') || after.starts_with('=') { 1 } else { 0 };
    Some((word, &after[..sep_len], &after[sep_len..]))
}

fn hides_next(word: &str, sep: &str) -> bool {
    match sep {
        "/" => is_known(word),
        "=" => matches!(word, "patient" | "subject" | "_id" | "id" | "identifier"),
        _ => false,
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '%' | '|' | ':')
}

/// Replaces every 8-4-4-4-12 hexadecimal UUID.
fn hide_uuids(s: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(len) = uuid_at(&b[i..], &SHAPE) {
            out.push_str(HIDDEN);
            i += len;
        } else {
            let ch = s[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn uuid_at(b: &[u8], shape: &[usize]) -> Option<usize> {
    let mut at = 0;
    for (k, n) in shape.iter().enumerate() {
        if k > 0 {
            (b.get(at) == Some(&b'-')).then_some(())?;
            at += 1;
        }
        b.get(at..at + n)?.iter().all(u8::is_ascii_hexdigit).then_some(())?;
        at += n;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn ids_go_and_types_stay() {
        assert_eq!(
            redact("http://h:8080/fhir/Patient/srch-1/$everything: HTTP 500"),
            "http://h:8080/fhir/Patient/<id>/$everything: HTTP 500"
        );
        assert_eq!(
            redact("stored record Observation/abc.1 is corrupt"),
            "stored record Observation/<id> is corrupt"
        );
        assert_eq!(redact("Observation?patient=p-7&_count=50"), "Observation?patient=<id>&_count=50");
        assert_eq!(
            redact("urn:uuid:7e58e78c-ba17-4bc7-a711-b44a20ca76d7 unresolved"),
            "urn:uuid:<id> unresolved"
        );
        assert_eq!(
            redact("cannot reach the server: connection refused"),
            "cannot reach the server: connection refused"
        );
        assert_eq!(redact("and/or Folder/x"), "and/or Folder/x");
    }
}
