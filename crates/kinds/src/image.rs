//! `image.thumbnail`: one input image (JPEG, PNG, WebP, GIF's first frame, TIFF) to one
//! or more resized images, EXIF orientation applied, metadata not carried over.
//!
//! Untrusted input is checked before it is decoded: byte size first, then the
//! dimensions from the header against the pixel limit (so decompression bombs are
//! refused without allocating), and the decoder runs with an allocation limit.
//! A JPEG much larger than its thumbnails is decoded at 1/2, 1/4 or 1/8 scale by
//! the IDCT itself (jpeg-decoder), which skips most of the decoding work; resizing to
//! the exact output uses fast_image_resize (SIMD convolution, Lanczos3).

use ::image::metadata::Orientation;
use ::image::{
    DynamicImage, GrayImage, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader,
    Limits, RgbImage, RgbaImage,
};
use async_trait::async_trait;
use fast_image_resize::{self as fr, ResizeAlg, ResizeOptions, Resizer};
use forklift_engine::{JobCtx, JobError, Kind, Violation, parse_params};
use forklift_rpc::v1::{self as pb, job_params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Cursor;

/// Limits on untrusted images.
#[derive(Debug, Clone)]
pub struct ImageLimits {
    /// Largest input file in bytes.
    pub max_input_bytes: u64,
    /// Largest input in pixels (width × height).
    pub max_pixels: u64,
    /// Largest input width or height.
    pub max_dimension: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 64 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_dimension: 30_000,
        }
    }
}

/// How a thumbnail fills its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fill the box, cropping the centre.
    Cover,
    /// Fit inside the box, keeping the aspect ratio.
    #[default]
    Contain,
    /// Fill the box, stretching.
    Fill,
}

/// An output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG, lossy with `quality`.
    #[default]
    Jpeg,
    /// PNG, lossless.
    Png,
    /// WebP, lossless.
    Webp,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }
    fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }
}

/// One thumbnail box; a side of 0 follows from the aspect ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// Width in pixels, or 0.
    #[serde(default)]
    pub width: u32,
    /// Height in pixels, or 0.
    #[serde(default)]
    pub height: u32,
}

/// Parameters of `image.thumbnail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// 1 to 8 boxes.
    pub sizes: Vec<Size>,
    /// How each thumbnail fills its box.
    #[serde(default)]
    pub fit: Fit,
    /// Output format.
    #[serde(default)]
    pub format: Format,
    /// JPEG quality 1-100; 0 means 85.
    #[serde(default)]
    pub quality: u8,
}

const MAX_SIDE: u32 = 8192;
const DEFAULT_QUALITY: u8 = 85;

impl Params {
    /// Checks ranges and fills in defaults.
    pub fn validate(mut self) -> Result<Self, Vec<Violation>> {
        let mut v = Vec::new();
        if self.sizes.is_empty() || self.sizes.len() > 8 {
            v.push(Violation::new("sizes", "give 1 to 8 sizes"));
        }
        for (i, s) in self.sizes.iter().enumerate() {
            if s.width == 0 && s.height == 0 {
                v.push(Violation::new(
                    format!("sizes[{i}]"),
                    "set width, height or both",
                ));
            }
            if s.width > MAX_SIDE {
                v.push(Violation::new(
                    format!("sizes[{i}].width"),
                    format!("at most {MAX_SIDE}"),
                ));
            }
            if s.height > MAX_SIDE {
                v.push(Violation::new(
                    format!("sizes[{i}].height"),
                    format!("at most {MAX_SIDE}"),
                ));
            }
        }
        if self.quality > 100 {
            v.push(Violation::new(
                "quality",
                "1 to 100 (0 for the default of 85)",
            ));
        }
        if self.quality == 0 {
            self.quality = DEFAULT_QUALITY;
        }
        if v.is_empty() { Ok(self) } else { Err(v) }
    }
}

/// The `image.thumbnail` kind.
pub struct Thumbnail {
    limits: ImageLimits,
}

impl Thumbnail {
    /// The kind with these input limits.
    pub fn new(limits: ImageLimits) -> Self {
        Self { limits }
    }
}

#[async_trait]
impl Kind for Thumbnail {
    fn name(&self) -> &'static str {
        "image.thumbnail"
    }
    fn queue(&self) -> &'static str {
        "media"
    }
    fn proto_field(&self) -> &'static str {
        "image_thumbnail"
    }

    fn params_from_proto(&self, p: &job_params::Kind) -> Option<Value> {
        let job_params::Kind::ImageThumbnail(p) = p else {
            return None;
        };
        let fit = match pb::Fit::try_from(p.fit) {
            Ok(pb::Fit::Unspecified | pb::Fit::Contain) => "contain".to_owned(),
            Ok(pb::Fit::Cover) => "cover".to_owned(),
            Ok(pb::Fit::Fill) => "fill".to_owned(),
            Err(_) => format!("unknown fit {}", p.fit),
        };
        let format = match pb::ImageFormat::try_from(p.format) {
            Ok(pb::ImageFormat::Unspecified | pb::ImageFormat::Jpeg) => "jpeg".to_owned(),
            Ok(pb::ImageFormat::Png) => "png".to_owned(),
            Ok(pb::ImageFormat::Webp) => "webp".to_owned(),
            Err(_) => format!("unknown format {}", p.format),
        };
        Some(serde_json::json!({
            "sizes": p.sizes.iter().map(|s| serde_json::json!({"width": s.width, "height": s.height})).collect::<Vec<_>>(),
            "fit": fit,
            "format": format,
            // Out-of-range values must reach validation, not wrap.
            "quality": p.quality.min(255),
        }))
    }

    fn params_to_proto(&self, v: &Value) -> Option<job_params::Kind> {
        let p: Params = serde_json::from_value(v.clone()).ok()?;
        Some(job_params::Kind::ImageThumbnail(pb::ImageThumbnailParams {
            sizes: p
                .sizes
                .iter()
                .map(|s| pb::ThumbnailSize {
                    width: s.width,
                    height: s.height,
                })
                .collect(),
            fit: match p.fit {
                Fit::Cover => pb::Fit::Cover,
                Fit::Contain => pb::Fit::Contain,
                Fit::Fill => pb::Fit::Fill,
            } as i32,
            format: match p.format {
                Format::Jpeg => pb::ImageFormat::Jpeg,
                Format::Png => pb::ImageFormat::Png,
                Format::Webp => pb::ImageFormat::Webp,
            } as i32,
            quality: u32::from(p.quality),
        }))
    }

    fn validate(&self, v: Value, inputs: usize) -> Result<Value, Vec<Violation>> {
        let mut violations = Vec::new();
        if inputs != 1 {
            violations.push(Violation::new(
                "input_file_ids",
                "image.thumbnail takes exactly one input image",
            ));
        }
        let p = parse_params::<Params>(v).and_then(Params::validate);
        match p {
            Ok(p) if violations.is_empty() => {
                Ok(serde_json::to_value(p).expect("params serialise"))
            }
            Ok(_) => Err(violations),
            Err(mut vs) => {
                vs.append(&mut violations);
                Err(vs)
            }
        }
    }

    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let params: Params = ctx.params()?;
        let bytes = ctx.input_bytes(0, self.limits.max_input_bytes).await?;
        ctx.progress(10, "decoding").await;
        let limits = self.limits.clone();
        let (sizes, fit) = (params.sizes.clone(), params.fit);
        let img = ctx
            .blocking(move || decode_for(&bytes, &limits, &sizes, fit))
            .await?;
        let total = params.sizes.len() as u32;
        let img = std::sync::Arc::new(img);
        for (i, size) in params.sizes.iter().copied().enumerate() {
            let n = i as u32 + 1;
            ctx.progress(10 + 90 * (n - 1) / total, format!("resizing {n}/{total}"))
                .await;
            let img = img.clone();
            let (fit, format, quality) = (params.fit, params.format, params.quality);
            let (bytes, w, h) = ctx
                .blocking(move || {
                    let out = resize(&img, size, fit)?;
                    let (w, h) = (out.width(), out.height());
                    Ok((encode(out, format, quality)?, w, h))
                })
                .await?;
            let name = format!("thumb-{n}-{w}x{h}.{}", format.ext());
            ctx.put_output(&name, format.media_type(), bytes.into())
                .await?;
        }
        ctx.progress(100, "done").await;
        Ok(())
    }
}

/// A decoded input: its pixels, possibly decoded at a reduced scale, and the size of
/// the whole image. Output dimensions follow from `full`, so they do not depend on
/// the scale the pixels were decoded at.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels, orientation applied.
    pub image: DynamicImage,
    /// The full-size image's width and height, orientation applied.
    pub full: (u32, u32),
}

/// Decodes an untrusted image at full size within `limits`, orientation applied.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<Decoded, JobError> {
    decode_inner(bytes, limits, None)
}

/// Decodes an untrusted image within `limits` for thumbnails of `sizes`, orientation
/// applied: a JPEG at the reduced size [`jpeg_decode_size`] picks, other formats (and
/// JPEGs the scaled decoder does not handle: CMYK, 16-bit) at full size.
pub fn decode_for(
    bytes: &[u8],
    limits: &ImageLimits,
    sizes: &[Size],
    fit: Fit,
) -> Result<Decoded, JobError> {
    decode_inner(bytes, limits, Some((sizes, fit)))
}

fn decode_inner(
    bytes: &[u8],
    limits: &ImageLimits,
    boxes: Option<(&[Size], Fit)>,
) -> Result<Decoded, JobError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| JobError::permanent(format!("the file could not be read: {e}")))?;
    let format = match reader.format() {
        Some(
            f @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Tiff),
        ) => f,
        _ => {
            return Err(JobError::permanent(
                "the file is not a supported image: use JPEG, PNG, WebP, GIF or TIFF",
            ));
        }
    };
    let name = format!("{format:?}").to_uppercase();
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(JobError::permanent(
            "the file is not a valid JPEG image: it is truncated or corrupt (it ends before the end-of-image marker)",
        ));
    }
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_dimension);
    decoder_limits.max_image_height = Some(limits.max_dimension);
    // Room for the largest allowed image at 16 bits per channel, RGBA.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    let mut reader = reader;
    reader.limits(decoder_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| describe(&name, e, limits))?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(JobError::permanent(format!(
            "the image is {w}×{h} ({:.1} megapixels), above the limit of {:.1} megapixels",
            pixels as f64 / 1e6,
            limits.max_pixels as f64 / 1e6
        )));
    }
    let orientation = decoder
        .orientation()
        .map_err(|e| describe(&name, e, limits))?;
    let full = displayed((w, h), orientation);
    if let (ImageFormat::Jpeg, Some((sizes, fit))) = (format, boxes) {
        let size = jpeg_decode_size((w, h), orientation, sizes, fit);
        if size.0 < w
            && let Some(mut image) = decode_jpeg_scaled(bytes, size, limits)
        {
            image.apply_orientation(orientation);
            return Ok(Decoded { image, full });
        }
    }
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| describe(&name, e, limits))?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, full })
}

/// The size a JPEG stored as `stored` pixels is decoded at for thumbnails of `sizes`:
/// the smallest DCT scale (1/8, 1/4, 1/2, else full size) at which the decoded image
/// is at least twice every output on both sides. The margin leaves the final Lanczos3
/// step real detail to filter, so the result looks like a thumbnail of the full image
/// rather than of a blurred copy. Outputs are compared as displayed: orientations 5-8
/// swap width and height.
pub fn jpeg_decode_size(
    stored: (u32, u32),
    orientation: Orientation,
    sizes: &[Size],
    fit: Fit,
) -> (u32, u32) {
    // What the IDCT produces at `eighths`/8 scale: partial blocks round up.
    let scaled = |(w, h): (u32, u32), eighths: u32| {
        let side = |n: u32| (u64::from(n) * u64::from(eighths)).div_ceil(8) as u32;
        (side(w), side(h))
    };
    let display = displayed(stored, orientation);
    let eighths = [1, 2, 4]
        .into_iter()
        .find(|&eighths| {
            let (dw, dh) = scaled(display, eighths);
            !sizes.is_empty()
                && sizes.iter().all(|&size| {
                    let (tw, th, _) = target_dims(display, size, fit);
                    u64::from(dw) >= 2 * u64::from(tw) && u64::from(dh) >= 2 * u64::from(th)
                })
        })
        .unwrap_or(8);
    scaled(stored, eighths)
}

/// Width and height as displayed: orientations 5-8 turn the image a quarter.
fn displayed((w, h): (u32, u32), orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (h, w),
        _ => (w, h),
    }
}

/// Decodes a JPEG with DCT scaling to `size` (as [`jpeg_decode_size`] computed it),
/// orientation not applied. `None` sends the file down the full-size path, which then
/// decides and words any error: for CMYK and 16-bit samples (which this decoder leaves
/// unconverted), and for a file this decoder refuses or panics on, since it is
/// stricter about some encoder quirks than the full-size decoder.
fn decode_jpeg_scaled(
    bytes: &[u8],
    size: (u32, u32),
    limits: &ImageLimits,
) -> Option<DynamicImage> {
    use jpeg_decoder::PixelFormat;
    let (Ok(w), Ok(h)) = (u16::try_from(size.0), u16::try_from(size.1)) else {
        return None;
    };
    // Hostile input must not take the worker down, nor even fail the job: a panic in
    // this decoder only means the full-size decoder gets the file.
    let decoded = std::panic::catch_unwind(|| -> Result<_, jpeg_decoder::Error> {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder.set_max_decoding_buffer_size(
            usize::try_from(limits.max_pixels.saturating_mul(8)).unwrap_or(usize::MAX),
        );
        decoder.read_info()?;
        if !decoder
            .info()
            .is_some_and(|i| matches!(i.pixel_format, PixelFormat::L8 | PixelFormat::RGB24))
        {
            return Ok(None);
        }
        decoder.scale(w, h)?;
        let pixels = decoder.decode()?;
        let Some(info) = decoder.info() else {
            return Ok(None);
        };
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        Ok(match info.pixel_format {
            PixelFormat::L8 => GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
            PixelFormat::RGB24 => RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
            _ => None,
        })
    });
    match decoded {
        Ok(Ok(image)) => image,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "scaled JPEG decoding failed, decoding at full size: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("the scaled JPEG decoder panicked, decoding at full size");
            None
        }
    }
}

/// Walks a JPEG's segments to its end-of-image marker. The decoder fills missing
/// data with grey rather than failing, so a truncated upload must be caught here.
pub fn jpeg_is_complete(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        match marker {
            0xD9 => return true,
            // Fill bytes, TEM and restart markers carry no length.
            0xFF => i += 1,
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                if i + 3 >= b.len() {
                    return false;
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                i += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data: runs to the next marker that is not a stuffed
                    // zero or a restart marker.
                    loop {
                        if i + 1 >= b.len() {
                            return false;
                        }
                        if b[i] == 0xFF && b[i + 1] != 0x00 && !(0xD0..=0xD7).contains(&b[i + 1]) {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
    false
}

fn describe(format: &str, e: ImageError, limits: &ImageLimits) -> JobError {
    match e {
        ImageError::Limits(_) => JobError::permanent(format!(
            "the image is larger than this server accepts (at most {} pixels a side, {:.0} megapixels)",
            limits.max_dimension,
            limits.max_pixels as f64 / 1e6
        )),
        ImageError::Unsupported(u) => JobError::permanent(format!(
            "this {format} image uses a feature that is not supported: {u}"
        )),
        e => JobError::permanent(format!(
            "the file is not a valid {format} image (it may be truncated or corrupt): {e}"
        )),
    }
}

/// The output dimensions for `size`, and whether the source is cropped (cover).
pub fn target_dims(src: (u32, u32), size: Size, fit: Fit) -> (u32, u32, bool) {
    let (sw, sh) = (f64::from(src.0.max(1)), f64::from(src.1.max(1)));
    let round = |x: f64| (x.round() as u32).max(1);
    match (size.width, size.height) {
        (w, 0) => (w, round(sh * f64::from(w) / sw), false),
        (0, h) => (round(sw * f64::from(h) / sh), h, false),
        (w, h) => match fit {
            Fit::Fill => (w, h, false),
            Fit::Cover => (w, h, true),
            Fit::Contain => {
                let scale = (f64::from(w) / sw).min(f64::from(h) / sh);
                (round(sw * scale).min(w), round(sh * scale).min(h), false)
            }
        },
    }
}

/// Resizes to one box, sized from the full image whatever scale it was decoded at.
/// Alpha is kept (premultiplied while resizing) when present.
pub fn resize(img: &Decoded, size: Size, fit: Fit) -> Result<DynamicImage, JobError> {
    let (w, h, crop) = target_dims(img.full, size, fit);
    let img = &img.image;
    let src: DynamicImage = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let pixel_type = if src.color().has_alpha() {
        fr::PixelType::U8x4
    } else {
        fr::PixelType::U8x3
    };
    let mut dst = fr::images::Image::new(w, h, pixel_type);
    let mut opts =
        ResizeOptions::new().resize_alg(ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    if crop {
        opts = opts.fit_into_destination(Some((0.5, 0.5)));
    }
    Resizer::new()
        .resize(&src, &mut dst, &opts)
        .map_err(|e| JobError::permanent(format!("resizing failed: {e}")))?;
    let buf = dst.into_vec();
    let out = if pixel_type == fr::PixelType::U8x4 {
        RgbaImage::from_raw(w, h, buf).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(w, h, buf).map(DynamicImage::ImageRgb8)
    };
    out.ok_or_else(|| JobError::permanent("resizing produced a malformed buffer"))
}

/// Encodes an image; JPEG flattens transparency onto white.
pub fn encode(img: DynamicImage, format: Format, quality: u8) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::new();
    let err = |e: ImageError| JobError::permanent(format!("encoding the thumbnail failed: {e}"));
    let (w, h) = (img.width(), img.height());
    match format {
        Format::Jpeg => {
            let rgb = flatten_on_white(img);
            ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .write_image(rgb.as_raw(), w, h, ::image::ExtendedColorType::Rgb8)
                .map_err(err)?;
        }
        Format::Png => {
            let color = img.color().into();
            ::image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                ::image::codecs::png::CompressionType::Fast,
                ::image::codecs::png::FilterType::Adaptive,
            )
            .write_image(img.as_bytes(), w, h, color)
            .map_err(err)?;
        }
        Format::Webp => {
            let color = img.color().into();
            ::image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .write_image(img.as_bytes(), w, h, color)
                .map_err(err)?;
        }
    }
    Ok(out)
}

fn flatten_on_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut rgb = RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(rgb.pixels_mut()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(width: u32, height: u32) -> Size {
        Size { width, height }
    }

    #[test]
    fn target_dims_follow_fit() {
        assert_eq!(
            target_dims((3000, 2000), size(256, 0), Fit::Contain),
            (256, 171, false)
        );
        assert_eq!(
            target_dims((3000, 2000), size(0, 100), Fit::Cover),
            (150, 100, false)
        );
        assert_eq!(
            target_dims((3000, 2000), size(100, 100), Fit::Contain),
            (100, 67, false)
        );
        assert_eq!(
            target_dims((3000, 2000), size(100, 100), Fit::Cover),
            (100, 100, true)
        );
        assert_eq!(
            target_dims((3000, 2000), size(100, 100), Fit::Fill),
            (100, 100, false)
        );
        assert_eq!(
            target_dims((1, 5000), size(10, 0), Fit::Contain),
            (10, 50000, false)
        );
    }

    #[test]
    fn validation_names_fields_and_fills_defaults() {
        let p = Params {
            sizes: vec![size(0, 0), size(9000, 10)],
            fit: Fit::Cover,
            format: Format::Png,
            quality: 101,
        };
        let v = p.validate().unwrap_err();
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["sizes[0]", "sizes[1].width", "quality"]);
        let ok = Params {
            sizes: vec![size(10, 0)],
            fit: Fit::Cover,
            format: Format::Png,
            quality: 0,
        }
        .validate()
        .unwrap();
        assert_eq!(ok.quality, 85);
    }

    #[test]
    fn resizes_and_encodes_every_format() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(
            300,
            200,
            ::image::Rgba([200, 10, 10, 128]),
        ));
        let img = Decoded {
            image: img,
            full: (300, 200),
        };
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            let out = resize(&img, size(30, 30), Fit::Cover).unwrap();
            let bytes = encode(out, format, 80).unwrap();
            let back = ::image::load_from_memory(&bytes).unwrap();
            assert_eq!((back.width(), back.height()), (30, 30), "{format:?}");
        }
    }

    #[test]
    fn refuses_garbage_and_bombs_before_decoding() {
        let limits = ImageLimits::default();
        let err = decode(b"definitely not an image", &limits).unwrap_err();
        assert!(err.to_string().contains("not a supported image"), "{err}");

        // A valid PNG header claiming 100000×100000 pixels, with no pixel data behind it.
        let mut png = Vec::new();
        ::image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&[0; 3], 1, 1, ::image::ExtendedColorType::Rgb8)
            .unwrap();
        // IHDR width/height live at bytes 16..24; the CRC is not re-computed, so the
        // decoder may complain of either: both must be a clear, permanent failure.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode(&png, &limits).unwrap_err();
        assert!(matches!(err, JobError::Permanent(_)), "{err}");

        let mut jpeg = Vec::new();
        ::image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(&[0; 64 * 64 * 3], 64, 64, ::image::ExtendedColorType::Rgb8)
            .unwrap();
        assert!(jpeg_is_complete(&jpeg));
        jpeg.truncate(jpeg.len() / 2);
        let err = decode(&jpeg, &limits).unwrap_err();
        assert!(err.to_string().contains("truncated or corrupt"), "{err}");
        let err = decode_for(&jpeg, &limits, &[size(8, 0)], Fit::Contain).unwrap_err();
        assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    }

    #[test]
    fn jpeg_decode_size_keeps_twice_every_output() {
        let pick = |o, sizes: &[Size], fit| jpeg_decode_size((3000, 2000), o, sizes, fit);
        let up = Orientation::NoTransforms;
        // 256×171 out: 1/4 scale (750×500) is the smallest at least twice as large.
        assert_eq!(pick(up, &[size(256, 0)], Fit::Contain), (750, 500));
        // Displayed as 2000×3000, 256 wide is 256×384 out: 1/4 would be 500 wide.
        assert_eq!(
            pick(Orientation::Rotate90, &[size(256, 0)], Fit::Contain),
            (1500, 1000)
        );
        assert_eq!(pick(up, &[size(100, 100)], Fit::Cover), (375, 250));
        assert_eq!(pick(up, &[size(400, 100)], Fit::Fill), (1500, 1000));
        // The largest output decides.
        assert_eq!(
            pick(up, &[size(64, 0), size(0, 300)], Fit::Contain),
            (1500, 1000)
        );
        assert_eq!(
            pick(up, &[size(64, 0), size(1600, 0)], Fit::Contain),
            (3000, 2000)
        );
        // Partial blocks round up, as the IDCT emits them.
        assert_eq!(
            jpeg_decode_size((3001, 1999), up, &[size(100, 0)], Fit::Contain),
            (376, 250)
        );
    }

    const ALL_FITS: [Fit; 3] = [Fit::Contain, Fit::Cover, Fit::Fill];

    /// Smooth gradients crossed by hard edges, like a photograph at a glance.
    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let stripe = if (x / 37 + y / 53) % 5 == 0 {
                90.0
            } else {
                0.0
            };
            let disc = if (fx - 0.3).powi(2) + (fy - 0.6).powi(2) < 0.04 {
                120.0
            } else {
                0.0
            };
            let c = |v: f32| v.clamp(0.0, 255.0) as u8;
            ::image::Rgb([
                c(40.0 + 180.0 * fx + stripe),
                c(200.0 - 150.0 * fy + disc),
                c(60.0 + 100.0 * (fx * 9.0).sin().abs() + disc),
            ])
        })
    }

    fn jpeg_of(img: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        // Not `encode_image`: it would see a `DynamicImage` as RGBA and write grey as colour.
        ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(
                img.as_bytes(),
                img.width(),
                img.height(),
                img.color().into(),
            )
            .unwrap();
        out
    }

    fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        assert_eq!(a.dimensions(), b.dimensions());
        let sum: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| u64::from(x.abs_diff(y)))
            .sum();
        sum as f64 / a.as_raw().len() as f64
    }

    /// Checks that `jpeg` is decoded at `expect` pixels (as displayed) for `sizes` and
    /// each of `fits`, and that its thumbnails have the full-size path's dimensions and
    /// look the same.
    fn assert_scaled_like_full(jpeg: &[u8], sizes: &[Size], fits: &[Fit], expect: (u32, u32)) {
        let limits = ImageLimits::default();
        let full = decode(jpeg, &limits).unwrap();
        for &fit in fits {
            let scaled = decode_for(jpeg, &limits, sizes, fit).unwrap();
            assert_eq!(scaled.full, full.full);
            assert_eq!(
                (scaled.image.width(), scaled.image.height()),
                expect,
                "{fit:?}"
            );
            for &s in sizes {
                let a = resize(&full, s, fit).unwrap();
                let b = resize(&scaled, s, fit).unwrap();
                assert_eq!((a.width(), a.height()), (b.width(), b.height()));
                let diff = mean_abs_diff(&a, &b);
                assert!(diff < 3.0, "{s:?} {fit:?}: mean difference {diff}");
            }
        }
    }

    #[test]
    fn large_jpegs_decode_scaled_with_the_same_thumbnails() {
        // Odd sides: the scaled image's aspect ratio differs slightly from the full one's.
        let jpeg = jpeg_of(&DynamicImage::ImageRgb8(scene(1601, 1067)));
        assert_scaled_like_full(&jpeg, &[size(200, 0)], &ALL_FITS, (401, 267));
        // 96×96 is 96×64 contained, but cover and fill need 192 rows.
        let sizes = [size(96, 96), size(0, 64)];
        assert_scaled_like_full(&jpeg, &sizes, &[Fit::Contain], (201, 134));
        assert_scaled_like_full(&jpeg, &sizes, &[Fit::Cover, Fit::Fill], (401, 267));
        // Too large an output for any reduction: decoded at full size.
        assert_scaled_like_full(&jpeg, &[size(900, 0)], &ALL_FITS, (1601, 1067));
    }

    #[test]
    fn grayscale_jpegs_decode_scaled() {
        let gray = DynamicImage::ImageRgb8(scene(1200, 800)).into_luma8();
        let jpeg = jpeg_of(&DynamicImage::ImageLuma8(gray));
        let scaled = decode_for(
            &jpeg,
            &ImageLimits::default(),
            &[size(100, 0)],
            Fit::Contain,
        )
        .unwrap();
        assert!(matches!(scaled.image, DynamicImage::ImageLuma8(_)));
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &ALL_FITS, (300, 200));
    }

    #[test]
    fn progressive_jpegs_decode_scaled() {
        let img = scene(1200, 800);
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.set_progressive(true);
        enc.encode(img.as_raw(), 1200, 800, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &ALL_FITS, (300, 200));
    }

    #[test]
    fn cmyk_jpegs_decode_at_full_size() {
        let rgb = scene(800, 600);
        let cmyk: Vec<u8> = rgb
            .pixels()
            .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 0])
            .collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&cmyk, 800, 600, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &ALL_FITS, (800, 600));
    }

    use forklift_testkit::with_exif_orientation;

    #[test]
    fn tiff_inputs_decode() {
        let img =
            DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, ::image::Rgb([10, 200, 30])));
        let mut tiff = std::io::Cursor::new(Vec::new());
        img.write_to(&mut tiff, ImageFormat::Tiff).unwrap();
        let d = decode(tiff.get_ref(), &ImageLimits::default()).unwrap();
        assert_eq!((d.image.width(), d.image.height()), (64, 48));
        let thumb = resize(&d, size(16, 0), Fit::Contain).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (16, 12));
    }

    #[test]
    fn scaled_decoding_applies_exif_orientation() {
        // Stored 1200×800 with the left third red; tagged "rotate 90° clockwise", so
        // displayed 800×1200 with red on top.
        let img = RgbImage::from_fn(1200, 800, |x, _| {
            if x < 400 {
                ::image::Rgb([220, 20, 20])
            } else {
                ::image::Rgb([20, 20, 220])
            }
        });
        let jpeg = with_exif_orientation(&jpeg_of(&DynamicImage::ImageRgb8(img)), 6);
        // 100 wide as displayed is 100×150 out: 1/4 scale, 300×200 stored.
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &[Fit::Contain], (200, 300));
        let d = decode_for(
            &jpeg,
            &ImageLimits::default(),
            &[size(100, 0)],
            Fit::Contain,
        )
        .unwrap();
        let thumb = resize(&d, size(100, 0), Fit::Contain).unwrap().to_rgb8();
        assert_eq!(thumb.dimensions(), (100, 150));
        let (top, bottom) = (thumb.get_pixel(50, 20), thumb.get_pixel(50, 130));
        assert!(top[0] > 150 && top[2] < 100, "top is red: {top:?}");
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "bottom is blue: {bottom:?}"
        );
    }
}
