//! What one fuzz case does, as data: which seeds, which mutations, which container, which byte
//! damage. Proptest generates and shrinks plans, not bytes, so a failure shrinks to the fewest
//! and smallest mutations that still fail, and its `Debug` form says what they were.
//!
//! Every choice of "which entry", "which node" is a `sample::Index`, resolved against the actual
//! input when the plan is applied (`mutate.rs`), so any plan applies to any seed.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::Union;

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    pub source: Source,
    pub edits: Vec<Edit>,
    pub shape: Shape,
    pub pretty: bool,
    pub bytes: Option<ByteEdit>,
    pub format: FormatChoice,
    /// Also normalise each resource as this other type (a normaliser fed another type's shape).
    pub as_type: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// Up to five seeds of any types: (type group, member).
    Mixed(Vec<(Index, Index)>),
    /// Consecutive seeds of one fixture, which reference each other (an encounter and its
    /// observations), so references resolve inside the input.
    Run { start: Index, len: usize },
    /// A whole input from the fixtures (bad ones included), for byte-level damage.
    Input(Index),
    /// Many consecutive seeds: enough for `prepare` to split the work over two threads.
    Many { start: Index, len: usize },
}

/// How the resources are wrapped into one input.
#[derive(Debug, Clone)]
pub enum Shape {
    Bundle {
        kind: &'static str,
        method: Option<&'static str>,
    },
    /// A bundle with a malformed envelope (entry not an array, entries without resources...).
    BrokenBundle(Index),
    Array,
    Ndjson,
    /// Only the first resource, on its own.
    Single,
}

#[derive(Debug, Clone, Copy)]
pub enum FormatChoice {
    Auto,
    Json,
    Ndjson,
}

/// A JSON value of another type, to swap in for whatever a node held.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    EmptyArray,
    /// The old value wrapped in an array.
    Array,
    EmptyObject,
    /// The old value wrapped as `{"value": old}`.
    Object,
}

/// One mutation of the resources, before they are serialised.
#[derive(Debug, Clone)]
pub enum Edit {
    SwapType {
        entry: Index,
        node: Index,
        to: Kind,
    },
    /// Wrap a node in `depth` arrays or objects (around serde_json's limit of 128, and past it).
    Nest {
        entry: Index,
        node: Index,
        depth: usize,
        array: bool,
    },
    HugeString {
        entry: Index,
        node: Index,
        len: usize,
        fill: char,
    },
    /// Repeat an array's first element (or wrap a value in an array of copies).
    Repeat {
        entry: Index,
        node: Index,
        count: usize,
    },
    OddString {
        entry: Index,
        node: Index,
        text: String,
    },
    OddNumber {
        entry: Index,
        node: Index,
        number: OddNumber,
    },
    BadDate {
        entry: Index,
        node: Index,
        date: String,
    },
    BadReference {
        entry: Index,
        node: Index,
        reference: String,
    },
    BadBase64 {
        entry: Index,
        node: Index,
        how: Base64Edit,
    },
    /// A text (or other) attachment of arbitrary bytes: non-UTF-8 notes, fake image headers.
    Attach {
        entry: Index,
        content_type: &'static str,
        bytes: Vec<u8>,
        place: Index,
    },
    /// Damage the decoded bytes of an attachment (image decoders see corrupt files).
    AttachmentBytes {
        entry: Index,
        node: Index,
        damage: ByteDamage,
    },
    ContentType {
        entry: Index,
        node: Index,
        content_type: &'static str,
    },
    /// Give `entry` the identity (or the whole content) of `from`.
    Duplicate {
        entry: Index,
        from: Index,
        whole: bool,
    },
    Remove {
        entry: Index,
        node: Index,
        child: Index,
    },
    SetType {
        entry: Index,
        rtype: &'static str,
    },
    SetId {
        entry: Index,
        id: String,
    },
    SetFullUrl {
        entry: Index,
        url: Option<String>,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum OddNumber {
    Zero,
    NegZero,
    Max,
    Min,
    Tiny,
    U64Max,
    I64Min,
    Beyond53,
    Fraction,
}

#[derive(Debug, Clone)]
pub enum Base64Edit {
    Char { at: Index, c: char },
    Truncate(Index),
    DropPadding,
    ExtraPadding,
    Whitespace { at: Index, ws: &'static str },
    UrlSafe,
    Empty,
    NotAString(Kind),
}

/// Damage to a byte string (an attachment's content or a whole input).
#[derive(Debug, Clone)]
pub enum ByteDamage {
    Truncate(Index),
    Flip {
        at: Index,
        mask: u8,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    /// Copy a stretch of the bytes over another place.
    Splice {
        from: Index,
        to: Index,
        len: usize,
    },
}

/// Damage to the serialised input.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Damage(ByteDamage),
    InvalidUtf8 { at: Index, seq: &'static [u8] },
    Bom,
    CrLf,
}

pub const BAD_DATES: &[&str] = &[
    "2019-13-45",
    "",
    "T",
    "2019-02-29",
    "2020-02-30",
    "2016-12-31T23:59:60Z",
    "2016-12-31T23:59:61Z",
    "2019-01-01T24:00:00Z",
    "2019-01-01T25:61:99Z",
    "2019-01-01T10:00:00+",
    "2019-01-01T10:00:00+99:99",
    "2019-01-01T10:00:00-",
    "2019-01-01T10:00:00.Z",
    "2019-01-01T10:00:00.123456789123456789+05:30",
    "2019-01-01T",
    "2019-01-01TZ",
    "2019-01-01T10",
    "2019-01-01T10:00:00+05:30:00",
    "2019-01-01T1\u{e9}:00:00",
    "2019-01-01T10:00:\u{e9}",
    "\u{ff12}\u{ff10}\u{ff11}\u{ff19}",
    "0000",
    "0000-01-01",
    "9999-12-31T23:59:59-14:00",
    "99999-01-01",
    "-0001-01-01",
    "+2019-01-01",
    "1-1-1",
    "2019--01",
    "2019-00-10",
    "2019-01-00",
    "2019-1-01",
    "2019/01/01",
    "01/02/2019",
    "last tuesday",
    "2019-01-01 10:00:00",
    "2019-01-01T10:00:00+0530",
    "2019-01-01T-10:00",
    "2019-01-01T+",
    " 2019-01-01 ",
    "2019-01-01\u{0}",
];

pub const BAD_REFERENCES: &[&str] = &[
    "Patient/",
    "/Patient/1",
    "Patient//1",
    "urn:uuid:",
    "urn:oid:",
    "urn:uuid:not-in-this-input",
    "#",
    "##",
    "#missing",
    "Observation?x",
    "Observation?",
    "Observation?identifier=",
    "Observation?identifier=|",
    "Observation?identifier=sys|",
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999977&identifier=x",
    "?identifier=1",
    "Nonsense?identifier=1",
    "../x",
    "Patient/../Patient/1",
    "Patient/1/_history",
    "Patient/1/_history/",
    "_history/2",
    "Patient/1/_history/2/_history/3",
    "http://example.org/fhir/Patient/1/_history/x",
    "http://",
    "/",
    "",
    " ",
    "Patient/a b",
    "Patient/\u{e9}",
    "Patient/12345678901234567890123456789012345678901234567890123456789012345",
    "Bundle/1",
    "Patient/1?_format=json",
    "Patient/1#contained",
    "\u{202e}Patient/1",
];

const DATE_KEYS: &[&str] = &[
    "effectiveDateTime",
    "onsetDateTime",
    "authoredOn",
    "performedDateTime",
    "occurrenceDateTime",
    "birthDate",
    "deceasedDateTime",
    "abatementDateTime",
    "issued",
    "recordedDate",
    "created",
    "date",
];

pub const REFERENCE_KEYS: &[&str] = &[
    "subject",
    "patient",
    "beneficiary",
    "encounter",
    "context",
    "medicationReference",
    "reasonReference",
    "serviceProvider",
];

pub const TYPES: &[&str] = &[
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "MedicationDispense",
    "Medication",
    "Encounter",
    "DiagnosticReport",
    "DocumentReference",
    "Media",
    "CarePlan",
    "CareTeam",
    "Goal",
    "Procedure",
    "Immunization",
    "Device",
    "ImagingStudy",
    "Claim",
    "ExplanationOfBenefit",
    "Patient",
    "Organization",
    "Provenance",
    "SupplyDelivery",
    "Bundle",
    "Binary",
];

const ODD_TYPES: &[&str] =
    &["Patientt", "", "patient", " Patient", "Patient ", "Observation\u{0}", "Resource"];

const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/plain; charset=utf-8",
    "TEXT/HTML",
    " text/x-anything",
    "text/",
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/tiff",
    "image/webp",
    "image/gif",
    "application/pdf",
    "application/octet-stream",
    "",
    "\u{e9}/\u{e9}",
];

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\xc0\xaf",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xf0\x9f\x98",
];

/// Strings that have broken text handling elsewhere: controls, direction overrides, zero-width
/// and combining characters, astral characters, surrogates escaped in JSON.
const ODD_TEXT: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\n\r\t",
    "\u{202e}evil\u{202c}",
    "\u{200b}\u{feff}",
    "e\u{301}\u{301}\u{301}",
    "\u{1f600}\u{1f468}\u{200d}\u{1f469}",
    "\u{fffd}",
    "<div><b>unclosed",
    "</div>>>><<<",
    "[Observation/1]",
    "\\u0000",
    "%00%ff",
];

pub fn case() -> impl Strategy<Value = Case> {
    (
        source(),
        vec(edit(), 0..=4),
        shape(),
        any::<bool>(),
        prop::option::weighted(0.35, byte_edit()),
        prop_oneof![4 => Just(FormatChoice::Auto), 1 => Just(FormatChoice::Json), 1 => Just(FormatChoice::Ndjson)],
        prop::option::weighted(0.2, select(TYPES)),
    )
        .prop_map(|(source, edits, shape, pretty, bytes, format, as_type)| Case {
            source,
            edits,
            shape,
            pretty,
            bytes,
            format,
            as_type,
        })
}

fn source() -> impl Strategy<Value = Source> {
    // `Many` is one case in 10,000: it costs as much as several hundred small ones.
    prop_oneof![
        6000 => vec((any::<Index>(), any::<Index>()), 1..=5).prop_map(Source::Mixed),
        3000 => (any::<Index>(), 1..=5usize).prop_map(|(start, len)| Source::Run { start, len }),
        1000 => any::<Index>().prop_map(Source::Input),
        1 => (any::<Index>(), 2_000..2_200usize).prop_map(|(start, len)| Source::Many { start, len }),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    let kinds =
        select(vec!["collection", "transaction", "batch", "searchset", "history", "document", "bogus"]);
    let methods = prop::option::weighted(
        0.3,
        select(vec!["POST", "PUT", "PATCH", "GET", "DELETE", "HEAD", "post", ""]),
    );
    prop_oneof![
        6 => (kinds, methods).prop_map(|(kind, method)| Shape::Bundle { kind, method }),
        1 => any::<Index>().prop_map(Shape::BrokenBundle),
        1 => Just(Shape::Array),
        1 => Just(Shape::Ndjson),
        1 => Just(Shape::Single),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    select(vec![
        Kind::Null,
        Kind::Bool,
        Kind::Number,
        Kind::String,
        Kind::EmptyArray,
        Kind::Array,
        Kind::EmptyObject,
        Kind::Object,
    ])
}

/// Short arbitrary text, mostly odd characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(ODD_TEXT).prop_map(str::to_owned),
        1 => vec(any::<char>(), 0..24).prop_map(String::from_iter),
    ]
}

fn date() -> impl Strategy<Value = String> {
    let part = |width: usize| {
        prop_oneof![
            3 => (0..10u32.pow(width as u32)).prop_map(move |n| format!("{n:0width$}")),
            1 => select(vec!["", "0", "00", "99", "-1", "+1", "1a", "\u{e9}\u{e9}"]).prop_map(str::to_owned),
        ]
    };
    let offset = select(vec!["Z", "+00:00", "-05:00", "+14:00", "+24:00", "-99:99", "+5:0", ""]);
    let generated = (part(4), part(2), part(2), prop::option::of((part(2), part(2), part(2), offset)))
        .prop_map(|(y, m, d, time)| match time {
            Some((h, mi, s, off)) => format!("{y}-{m}-{d}T{h}:{mi}:{s}{off}"),
            None => format!("{y}-{m}-{d}"),
        });
    prop_oneof![3 => select(BAD_DATES).prop_map(str::to_owned), 3 => generated, 1 => text()]
}

fn reference() -> impl Strategy<Value = String> {
    let typed = (select(TYPES), text()).prop_map(|(t, id)| format!("{t}/{id}"));
    let conditional = (select(TYPES), text(), text()).prop_map(|(t, s, v)| format!("{t}?identifier={s}|{v}"));
    prop_oneof![
        4 => select(BAD_REFERENCES).prop_map(str::to_owned),
        1 => typed,
        1 => conditional,
        1 => text(),
    ]
}

fn odd_number() -> impl Strategy<Value = OddNumber> {
    select(vec![
        OddNumber::Zero,
        OddNumber::NegZero,
        OddNumber::Max,
        OddNumber::Min,
        OddNumber::Tiny,
        OddNumber::U64Max,
        OddNumber::I64Min,
        OddNumber::Beyond53,
        OddNumber::Fraction,
    ])
}

fn base64_edit() -> impl Strategy<Value = Base64Edit> {
    prop_oneof![
        3 => (any::<Index>(), select(vec!['%', '$', '*', '-', '_', '.', '=', '\u{e9}', '\u{0}']))
            .prop_map(|(at, c)| Base64Edit::Char { at, c }),
        2 => any::<Index>().prop_map(Base64Edit::Truncate),
        1 => Just(Base64Edit::DropPadding),
        1 => Just(Base64Edit::ExtraPadding),
        1 => (any::<Index>(), select(vec![" ", "\r\n", "\t", "\u{a0}", "\u{2028}"]))
            .prop_map(|(at, ws)| Base64Edit::Whitespace { at, ws }),
        1 => Just(Base64Edit::UrlSafe),
        1 => Just(Base64Edit::Empty),
        1 => kind().prop_map(Base64Edit::NotAString),
    ]
}

fn byte_damage() -> impl Strategy<Value = ByteDamage> {
    prop_oneof![
        3 => any::<Index>().prop_map(ByteDamage::Truncate),
        3 => (any::<Index>(), 1..=255u8).prop_map(|(at, mask)| ByteDamage::Flip { at, mask }),
        2 => (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| ByteDamage::Insert { at, bytes }),
        1 => (any::<Index>(), any::<Index>(), 1..64usize).prop_map(|(from, to, len)| ByteDamage::Splice { from, to, len }),
    ]
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => byte_damage().prop_map(ByteEdit::Damage),
        3 => (any::<Index>(), select(INVALID_UTF8)).prop_map(|(at, seq)| ByteEdit::InvalidUtf8 { at, seq }),
        1 => Just(ByteEdit::Bom),
        1 => Just(ByteEdit::CrLf),
    ]
}

fn huge_len() -> impl Strategy<Value = usize> {
    prop_oneof![9 => 1_000..32_768usize, 1 => 32_768..600_000usize]
}

fn nest_depth() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1..20usize, 2 => 120..136usize, 1 => 200..400usize]
}

fn attachment_bytes() -> impl Strategy<Value = Vec<u8>> {
    let header = select(vec![
        &b"\x89PNG\r\n\x1a\n"[..],
        &b"\xff\xd8\xff"[..],
        &b"II*\0"[..],
        &b"MM\0*"[..],
        &b"RIFF\0\0\0\0WEBP"[..],
        &b"%PDF-"[..],
    ]);
    prop_oneof![
        2 => vec(any::<u8>(), 0..256),
        1 => (header, vec(any::<u8>(), 0..128)).prop_map(|(h, tail)| [h, &tail[..]].concat()),
    ]
}

/// The edits that change values in place.
fn value_edit() -> impl Strategy<Value = Edit> {
    let at = || (any::<Index>(), any::<Index>());
    prop_oneof![
        3 => (at(), kind()).prop_map(|((entry, node), to)| Edit::SwapType { entry, node, to }),
        1 => (at(), nest_depth(), any::<bool>())
            .prop_map(|((entry, node), depth, array)| Edit::Nest { entry, node, depth, array }),
        1 => (at(), huge_len(), select(vec!['a', ' ', '\u{e9}', '\u{200b}', '\u{1f600}', '\n', '<', '0']))
            .prop_map(|((entry, node), len, fill)| Edit::HugeString { entry, node, len, fill }),
        1 => (at(), prop_oneof![3 => 2..100usize, 1 => 1_000..20_000usize])
            .prop_map(|((entry, node), count)| Edit::Repeat { entry, node, count }),
        2 => (at(), text()).prop_map(|((entry, node), text)| Edit::OddString { entry, node, text }),
        2 => (at(), odd_number()).prop_map(|((entry, node), number)| Edit::OddNumber { entry, node, number }),
        4 => (at(), date()).prop_map(|((entry, node), date)| Edit::BadDate { entry, node, date }),
        4 => (at(), reference()).prop_map(|((entry, node), reference)| Edit::BadReference { entry, node, reference }),
        2 => (at(), any::<Index>()).prop_map(|((entry, node), child)| Edit::Remove { entry, node, child }),
    ]
}

/// The edits of attachments and identities.
fn structural_edit() -> impl Strategy<Value = Edit> {
    let at = || (any::<Index>(), any::<Index>());
    prop_oneof![
        3 => (at(), base64_edit()).prop_map(|((entry, node), how)| Edit::BadBase64 { entry, node, how }),
        2 => (any::<Index>(), select(CONTENT_TYPES), attachment_bytes(), any::<Index>())
            .prop_map(|(entry, content_type, bytes, place)| Edit::Attach { entry, content_type, bytes, place }),
        3 => (at(), byte_damage()).prop_map(|((entry, node), damage)| Edit::AttachmentBytes { entry, node, damage }),
        1 => (at(), select(CONTENT_TYPES))
            .prop_map(|((entry, node), content_type)| Edit::ContentType { entry, node, content_type }),
        2 => (any::<Index>(), any::<Index>(), any::<bool>())
            .prop_map(|(entry, from, whole)| Edit::Duplicate { entry, from, whole }),
        1 => (any::<Index>(), prop_oneof![3 => select(TYPES), 1 => select(ODD_TYPES)])
            .prop_map(|(entry, rtype)| Edit::SetType { entry, rtype }),
        1 => (any::<Index>(), prop_oneof![
                1 => select(vec!["", "a/b", "a b", "..", "-", "_", "\u{e9}", "../x", "1?x=2"]).prop_map(str::to_owned),
                1 => text(),
                1 => Just("x".repeat(65)),
            ])
            .prop_map(|(entry, id)| Edit::SetId { entry, id }),
        1 => (any::<Index>(), prop::option::of(reference())).prop_map(|(entry, url)| Edit::SetFullUrl { entry, url }),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    Union::new_weighted(vec![(2, value_edit().boxed()), (1, structural_edit().boxed())])
}

/// Keys a date mutation may add when the resource has no date-like string.
pub fn date_key(i: &Index) -> &'static str {
    DATE_KEYS[i.index(DATE_KEYS.len())]
}
