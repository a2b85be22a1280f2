//! Image preprocessing as Gemma 3's reference processor does it (`Gemma3ImageProcessorPil`):
//! convert to RGB (transparency over white), resize to the tower's square input with PIL's bilinear filter,
//! rescale by 1/255, normalise with mean 0.5 and std 0.5. The resize is PIL's algorithm
//! (`ImagingResample`: antialiased bilinear, 8-bit fixed-point coefficients, horizontal pass then
//! vertical) so pixels come out identical, not merely close.

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::llm::LlmError;

/// Bounds on what is decoded at all (hostile images: bombs, absurd sizes).
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_side: u32,
    pub max_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_side: 8_192, max_bytes: 256 * 1024 * 1024 }
    }
}

/// Decodes PNG, JPEG, TIFF or WebP bytes to 8-bit RGB within `limits` (the same checks as
/// ingest applies, and transparency over white as the reference does).
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, LlmError> {
    let img = crate::fhir::image::decode_within(bytes, limits.max_side, limits.max_bytes)
        .map_err(LlmError::Image)?;
    Ok(crate::fhir::image::to_rgb(&img))
}

/// `[3, size, size]` pixel values for the vision tower.
pub fn pixels(img: &RgbImage, size: usize, device: &Device) -> Result<Tensor, LlmError> {
    let resized = resize_bilinear(img, size as u32, size as u32);
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in resized.pixels().enumerate() {
        for c in 0..3 {
            let x = (f64::from(p[c]) * (1.0 / 255.0)) as f32;
            out[c * plane + i] = (x - 0.5) / 0.5;
        }
    }
    Ok(Tensor::from_vec(out, (3, size, size), device)?)
}

/// Fixed-point precision of PIL's 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL's `Image.resize(..., BILINEAR)` for RGB images (Pillow 13's `ImagingResampleInner`,
/// including its choice of which pass runs first: vertical when the height shrinks by more than
/// twice as many pixels as the width).
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w0, h0) = img.dimensions();
    let shrink_h = i64::from(h0) - i64::from(height);
    let shrink_w = i64::from(w0) - i64::from(width);
    let horizontal_first = !(shrink_h > 0 && shrink_h > shrink_w * 2);
    let h = |i: &RgbImage| if i.width() == width { i.clone() } else { resample_h(i, width) };
    let v = |i: &RgbImage| if i.height() == height { i.clone() } else { resample_v(i, height) };
    if horizontal_first {
        v(&h(img))
    } else {
        h(&v(img))
    }
}

/// Per output pixel: the first input index, and fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    k: Vec<i32>,
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter.
fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut k = vec![0i32; out_size * ksize];
    let mut w = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, wx) in w.iter_mut().enumerate().take(xmax) {
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            *wx = (1.0 - t.abs()).max(0.0);
            ww += *wx;
        }
        for x in 0..ksize {
            let v = if x < xmax && ww != 0.0 { w[x] / ww } else { 0.0 };
            let f = v * f64::from(1u32 << PRECISION_BITS);
            k[xx * ksize + x] = if v < 0.0 { (-0.5 + f) as i32 } else { (0.5 + f) as i32 };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs { bounds, ksize, k }
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

fn resample_h(img: &RgbImage, width: u32) -> RgbImage {
    let (w0, h0) = img.dimensions();
    let c = coeffs(w0 as usize, width as usize);
    let mut out = RgbImage::new(width, h0);
    for y in 0..h0 {
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.k[xx * c.ksize..];
            let mut ss = [1i64 << (PRECISION_BITS - 1); 3];
            for (x, &kx) in k.iter().enumerate().take(n) {
                let p = img.get_pixel((xmin + x) as u32, y);
                for ch in 0..3 {
                    ss[ch] += i64::from(p[ch]) * i64::from(kx);
                }
            }
            out.put_pixel(xx as u32, y, image::Rgb([clip8(ss[0]), clip8(ss[1]), clip8(ss[2])]));
        }
    }
    out
}

fn resample_v(img: &RgbImage, height: u32) -> RgbImage {
    let (w0, h0) = img.dimensions();
    let c = coeffs(h0 as usize, height as usize);
    let mut out = RgbImage::new(w0, height);
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        let k = &c.k[yy * c.ksize..];
        for x in 0..w0 {
            let mut ss = [1i64 << (PRECISION_BITS - 1); 3];
            for (y, &ky) in k.iter().enumerate().take(n) {
                let p = img.get_pixel(x, (ymin + y) as u32);
                for ch in 0..3 {
                    ss[ch] += i64::from(p[ch]) * i64::from(ky);
                }
            }
            out.put_pixel(x, yy as u32, image::Rgb([clip8(ss[0]), clip8(ss[1]), clip8(ss[2])]));
        }
    }
    out
}
