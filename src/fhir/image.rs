//! Images in attachments (scanned or rendered lab reports): recognised by content, checked
//! against strict limits before anything large is allocated, decoded, and normalised to an RGB
//! PNG no larger than `NORMALISED_SIDE` for transcription and for vision models. PDFs are
//! recognised and kept, not decoded. A hostile image (a decompression bomb, a truncated file, a
//! wrong content type, absurd dimensions) is refused with a reason; it never fails the resource.

use image::{ImageFormat, ImageReader, Limits};

/// Images larger than this on either side are refused before decoding.
pub const MAX_SIDE: u32 = 10_000;
/// At most this many bytes are allocated to decode one image.
pub const MAX_DECODED_BYTES: u64 = 192 * 1024 * 1024;
/// Longest side of the normalised copy.
pub const NORMALISED_SIDE: u32 = 2_048;

/// What an attachment's data turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCheck {
    /// Decoded within limits.
    Image {
        format: &'static str,
        width: u32,
        height: u32,
        normalised_png: Vec<u8>,
    },
    /// A PDF: stored, not decoded.
    Pdf,
    Refused(String),
}

/// The format the bytes are, by their signature.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        return Some("pdf");
    }
    match image::guess_format(bytes).ok()? {
        ImageFormat::Png => Some("png"),
        ImageFormat::Jpeg => Some("jpeg"),
        ImageFormat::Tiff => Some("tiff"),
        ImageFormat::WebP => Some("webp"),
        _ => None,
    }
}

/// Whether an attachment should be treated as an image: declared as one (or as a PDF), or
/// undeclared / generic binary with an image signature.
pub fn is_candidate(content_type: Option<&str>, bytes: &[u8]) -> bool {
    let ct = content_type.map(|c| c.trim().to_ascii_lowercase()).unwrap_or_default();
    ct.starts_with("image/")
        || ct == "application/pdf"
        || ((ct.is_empty() || ct == "application/octet-stream") && sniff(bytes).is_some())
}

/// Checks and decodes one image attachment.
pub fn inspect(content_type: Option<&str>, bytes: &[u8]) -> ImageCheck {
    let declared = content_type.map(|c| c.trim().to_ascii_lowercase()).unwrap_or_default();
    let Some(format) = sniff(bytes) else {
        return ImageCheck::Refused(format!("not a PNG, JPEG, TIFF, WebP or PDF (declared {declared:?})"));
    };
    let expected = match declared.as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/tiff" => Some("tiff"),
        "image/webp" => Some("webp"),
        "application/pdf" => Some("pdf"),
        _ => None,
    };
    if let Some(e) = expected.filter(|e| *e != format) {
        return ImageCheck::Refused(format!("declared {e} but the data is {format}"));
    }
    if format == "pdf" {
        return ImageCheck::Pdf;
    }
    match decode(bytes) {
        Ok(img) => {
            let (width, height) = (img.width(), img.height());
            match normalised_png(img) {
                Ok(normalised_png) => ImageCheck::Image { format, width, height, normalised_png },
                Err(e) => ImageCheck::Refused(e),
            }
        }
        Err(e) => ImageCheck::Refused(e),
    }
}

/// Decodes within the ingest limits.
pub fn decode(bytes: &[u8]) -> Result<image::DynamicImage, String> {
    decode_within(bytes, MAX_SIDE, MAX_DECODED_BYTES)
}

/// Decodes within the given limits: dimensions are read from the header first, so nothing large
/// is allocated for an image that would be refused.
pub fn decode_within(bytes: &[u8], max_side: u32, max_bytes: u64) -> Result<image::DynamicImage, String> {
    let reader = || -> Result<ImageReader<std::io::Cursor<&[u8]>>, String> {
        ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())
    };
    // The header alone, so the reason names the dimensions.
    let (w, h) = reader()?.into_dimensions().map_err(|e| format!("unreadable image header: {e}"))?;
    if w > max_side || h > max_side || w == 0 || h == 0 {
        return Err(format!("{w} x {h} pixels is outside the limit of {max_side} on a side"));
    }
    // RGBA is the widest decoded form: refuse what would not fit before allocating any of it.
    let decoded = u64::from(w) * u64::from(h) * 4;
    if decoded > max_bytes {
        return Err(format!(
            "{w} x {h} pixels would take {} MB to decode, over the limit of {} MB",
            decoded >> 20,
            max_bytes >> 20
        ));
    }
    let mut r = reader()?;
    let mut l = Limits::default();
    l.max_image_width = Some(max_side);
    l.max_image_height = Some(max_side);
    l.max_alloc = Some(max_bytes);
    r.limits(l);
    r.decode().map_err(|e| format!("cannot decode the image: {e}"))
}

/// 8-bit RGB; transparent images composited over white as the Gemma 3 reference processor's
/// `convert_to_rgb` does with PIL's `alpha_composite` (its fixed-point arithmetic, to the bit).
pub fn to_rgb(img: &image::DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    const BITS: u32 = 7;
    let shift_div255 = |a: u32| ((a >> 8) + a) >> 8;
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y);
        let a = u32::from(p[3]);
        if a == 0 {
            return image::Rgb([255, 255, 255]);
        }
        let outa255 = a * 255 + 255 * (255 - a);
        let coef1 = a * 255 * 255 * (1 << BITS) / outa255;
        let coef2 = 255 * (1 << BITS) - coef1;
        let ch = |c: u8| (shift_div255(u32::from(c) * coef1 + 255 * coef2 + (0x80 << BITS)) >> BITS) as u8;
        image::Rgb([ch(p[0]), ch(p[1]), ch(p[2])])
    })
}

/// RGB (transparency over white), longest side at most `NORMALISED_SIDE`, as PNG.
fn normalised_png(img: image::DynamicImage) -> Result<Vec<u8>, String> {
    let rgb = to_rgb(&img);
    let (w, h) = rgb.dimensions();
    let scale = f64::from(NORMALISED_SIDE) / f64::from(w.max(h));
    let rgb = if scale < 1.0 {
        let (nw, nh) =
            (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
        image::imageops::resize(&rgb, nw, nh, image::imageops::FilterType::Triangle)
    } else {
        rgb
    };
    let mut out = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(out)
}
