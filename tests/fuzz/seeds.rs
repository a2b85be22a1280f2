//! The fuzzer's seeds: real resources from the fixture bundles, read once.
//!
//! Mutating a 4 MB Synthea bundle a million times is not feasible, so every fixture is parsed
//! once and split into its resources; a case then builds a small input of one to five of them.
//! Resources are grouped by type so that a Synthea bundle's thousands of Observations do not
//! drown the few Patients, Media and ImagingStudies (every normaliser gets its share of cases).
//! Tiny images of every supported format are added, because the fixtures' images are few and
//! large, and the image decoders are where hostile bytes do the most.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::Engine;
use ehrqa::fhir::input::{self, Format};
use serde_json::{json, Value as Json};

/// Resources larger than this (serialised) are left out: they would make cases slow.
const MAX_SEED_BYTES: usize = 256 * 1024;
/// Whole inputs (bad fixtures, small edge files) up to this size are kept as byte seeds.
const MAX_INPUT_BYTES: usize = 64 * 1024;

/// One resource as it stood in its input, with the entry's fullUrl.
#[derive(Debug, Clone)]
pub struct Seed {
    pub resource: Json,
    pub full_url: Option<String>,
}

pub struct Seeds {
    /// Every seed resource, in file order (consecutive seeds of one bundle reference each other).
    pub all: Vec<Seed>,
    /// Indices into `all`, one group per resource type, plus one group of image attachments.
    pub groups: Vec<Vec<usize>>,
    /// Whole inputs as bytes: the bad fixtures and the small edge-case files.
    pub inputs: Vec<Vec<u8>>,
}

pub static SEEDS: LazyLock<Seeds> = LazyLock::new(load);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn load() -> Seeds {
    let mut all = Vec::new();
    let mut inputs = Vec::new();
    let mut files = Vec::new();
    for dir in ["fhir", "bad", "images"] {
        list_files(&fixtures().join(dir), &mut files);
    }
    files.sort();
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if bytes.len() <= MAX_INPUT_BYTES {
            inputs.push(bytes.clone());
        }
        let Ok(batch) = input::parse(&bytes, Format::for_path(path)) else { continue };
        all.extend(batch.entries.into_iter().map(|e| Seed { resource: e.resource, full_url: e.full_url }));
    }
    all.retain(|s| s.resource.to_string().len() <= MAX_SEED_BYTES);
    let first_image = all.len();
    all.extend(image_seeds());
    let groups = group(&all, first_image);
    assert!(groups.len() > 20 && !inputs.is_empty(), "the fixtures are missing");
    Seeds { all, groups, inputs }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            list_files(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "ndjson")) {
            out.push(path);
        }
    }
}

/// One group per resource type; the synthesised image resources (from `first_image` on) form a
/// group of their own so that they are not rare among the type's other resources.
fn group(all: &[Seed], first_image: usize) -> Vec<Vec<usize>> {
    let mut by_type: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in all.iter().enumerate() {
        let rtype = match s.resource.get("resourceType").and_then(Json::as_str) {
            _ if i >= first_image => "(images)",
            Some(t) => t,
            None => "(untyped)",
        };
        by_type.entry(rtype.to_owned()).or_default().push(i);
    }
    by_type.into_values().collect()
}

/// DocumentReference, Media and DiagnosticReport resources carrying small images of every
/// format the ingest decodes, a PDF, and a PNG header that claims an enormous size.
fn image_seeds() -> Vec<Seed> {
    let images = [
        ("image/png", encoded(image::ImageFormat::Png)),
        ("image/jpeg", encoded(image::ImageFormat::Jpeg)),
        ("image/tiff", encoded(image::ImageFormat::Tiff)),
        ("image/webp", encoded(image::ImageFormat::WebP)),
        (
            "application/pdf",
            b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec(),
        ),
        ("image/png", png_bomb_header()),
    ];
    let mut out = Vec::new();
    for (i, (content_type, bytes)) in images.iter().enumerate() {
        let attachment = json!({"contentType": content_type, "title": "scan",
            "data": base64::engine::general_purpose::STANDARD.encode(bytes)});
        let subject = json!({"reference": "urn:uuid:fuzz-patient"});
        out.push(json!({"resourceType": "DocumentReference", "id": format!("img-doc-{i}"),
            "status": "current", "subject": subject, "content": [{"attachment": attachment}]}));
        out.push(json!({"resourceType": "Media", "id": format!("img-media-{i}"),
            "status": "completed", "subject": subject, "content": attachment}));
        out.push(json!({"resourceType": "DiagnosticReport", "id": format!("img-report-{i}"),
            "status": "final", "subject": subject, "code": {"text": "Lab report"},
            "presentedForm": [attachment]}));
    }
    out.into_iter().map(|resource| Seed { resource, full_url: None }).collect()
}

/// A 13 x 9 gradient with an alpha channel where the format has one.
fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let rgba =
        image::RgbaImage::from_fn(13, 9, |x, y| image::Rgba([(x * 19) as u8, (y * 28) as u8, 90, 200]));
    let img = match format {
        image::ImageFormat::Jpeg => {
            image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(rgba).to_rgb8())
        }
        _ => image::DynamicImage::ImageRgba8(rgba),
    };
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).expect("a small image encodes");
    out
}

/// A PNG signature and a valid IHDR chunk for a 100,000 x 100,000 image, and nothing else: the
/// shape of a decompression bomb, which must be refused from the header alone.
fn png_bomb_header() -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    out
}

/// The PNG chunk checksum (CRC-32, polynomial 0xEDB88320).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
