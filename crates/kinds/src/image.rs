//! `image.thumbnail`: one input image (JPEG, PNG, WebP, GIF's first frame, TIFF) to one
//! or more resized images, EXIF orientation applied, metadata not carried over.
//!
//! Untrusted input is checked before it is decoded: byte size first, then the
//! dimensions from the header against the pixel limit (so decompression bombs are
//! refused without allocating), and the decoder runs with an allocation limit.
//! A JPEG larger than its thumbnails is decoded at the smallest of 1/8, 1/4 or 1/2
//! scale that still covers every output, as libvips' shrink-on-load chooses: at 1/8,
//! a baseline file's pixels are its blocks' DC coefficients (`dc_jpeg`, which skips
//! the rest of the entropy-coded data); other scales and files go through
//! jpeg-decoder's scaled IDCT. Resizing to the exact output uses fast_image_resize
//! (SIMD convolution, Lanczos3); JPEG output is jpeg-encoder's.

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
        let eighth = size == (w.div_ceil(8), h.div_ceil(8));
        if size.0 < w
            && let Some(mut image) = eighth
                .then(|| decode_jpeg_dc(bytes))
                .flatten()
                .or_else(|| decode_jpeg_scaled(bytes, size, limits))
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
/// is still at least as large as every output on both sides, as libvips' JPEG
/// shrink-on-load chooses. The IDCT's reduction averages each block (1/8 is the
/// block's mean), which is a fair pre-filter; the final Lanczos3 step then does the
/// rest. Outputs are compared as displayed: orientations 5-8 swap width and height.
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
                    dw >= tw && dh >= th
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

/// Decodes a baseline JPEG at 1/8 scale from its DC coefficients ([`dc_jpeg`]),
/// orientation not applied. `None` for a file that module does not handle, and for
/// one it panics on: the other decoders then get the file.
fn decode_jpeg_dc(bytes: &[u8]) -> Option<DynamicImage> {
    match std::panic::catch_unwind(|| dc_jpeg::decode(bytes)) {
        Ok(image) => image,
        Err(_) => {
            tracing::warn!("the DC-only JPEG decoder panicked, decoding another way");
            None
        }
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
                        // Eight bytes at a time while none is 0xFF (a byte of !word is
                        // zero): entropy-coded data is mostly such runs.
                        while let Some(chunk) = b.get(i..i + 8) {
                            let inverted =
                                !u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                            if inverted.wrapping_sub(0x0101_0101_0101_0101)
                                & !inverted
                                & 0x8080_8080_8080_8080
                                != 0
                            {
                                break;
                            }
                            i += 8;
                        }
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
            let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h)) else {
                return Err(JobError::permanent(format!(
                    "a JPEG cannot be {w}×{h}: at most 65535 pixels a side"
                )));
            };
            // jpeg-encoder: about three times as fast as image's encoder. Below quality
            // 90 it subsamples chroma 2×2 (4:2:0, as libjpeg and libvips do by default);
            // averaging each 2×2 block, not taking its top-left pixel, keeps colour
            // edges clean.
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
            encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
            encoder
                .encode(rgb.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| JobError::permanent(format!("encoding the thumbnail failed: {e}")))?;
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

/// JPEG decoding at 1/8 scale from the DC coefficients alone, for Huffman-coded 8-bit
/// greyscale and YCbCr files, sequential or progressive.
///
/// At 1/8 scale the IDCT of a block is its DC coefficient, so only the DC values are
/// needed. In a sequential scan the AC coefficients are still Huffman-decoded (the
/// bit stream cannot be walked otherwise) but only skipped — never stored,
/// dequantised or transformed; a progressive file's AC scans are not decoded at all.
/// Chroma planes at a lower resolution are upsampled by linear interpolation between
/// block centres (as libjpeg's "fancy" upsampling does), then converted with JFIF's
/// YCbCr equations.
///
/// Anything else — arithmetic-coded, lossless, 12-bit, CMYK or RGB-coded files, a
/// scan that ends early, a bad Huffman code or restart marker — answers `None`, and
/// the caller decodes the file another way.
mod dc_jpeg {
    use ::image::{DynamicImage, GrayImage, RgbImage};

    /// Bits looked up at once: codes this long or shorter, with their magnitude bits,
    /// resolve in one table read.
    const LUT_BITS: u32 = 10;

    /// The most scans a file may have here (libjpeg's progressive scripts use up to 10).
    const MAX_SCANS: u32 = 64;

    /// A Huffman table as canonical codes (`maxcode`, `valptr`) and a lookup table.
    struct Huffman {
        values: Vec<u8>,
        /// Per code length 1..=16 (index 0 unused): the largest code, or -1.
        maxcode: [i32; 18],
        /// Per code length: index in `values` of the first code minus that code.
        valptr: [i32; 17],
        /// Indexed by the next `LUT_BITS` bits: code length << 8 | symbol, 0 when the
        /// code is longer.
        lut: Box<[u16; 1 << LUT_BITS]>,
    }

    impl Huffman {
        /// Builds a table from a DHT segment's 16 counts and its symbols.
        fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
            let mut maxcode = [-1i32; 18];
            let mut valptr = [0i32; 17];
            let mut lut = Box::new([0u16; 1 << LUT_BITS]);
            let (mut code, mut k) = (0i32, 0usize);
            for len in 1..=16u32 {
                let n = usize::from(counts[len as usize - 1]);
                valptr[len as usize] = k as i32 - code;
                for _ in 0..n {
                    // Canonical codes must fit their length (a malformed table would
                    // otherwise give codes that overlap).
                    if code >= 1 << len {
                        return None;
                    }
                    if len <= LUT_BITS {
                        let shift = LUT_BITS - len;
                        let first = (code as usize) << shift;
                        let entry = (len as u16) << 8 | u16::from(values[k]);
                        lut[first..first + (1 << shift)].fill(entry);
                    }
                    code += 1;
                    k += 1;
                }
                if n > 0 {
                    maxcode[len as usize] = code - 1;
                }
                code <<= 1;
            }
            maxcode[17] = i32::MAX;
            Some(Huffman {
                values: values.to_vec(),
                maxcode,
                valptr,
                lut,
            })
        }

        /// The next symbol; `None` for a code the table does not have.
        #[inline(always)]
        fn decode(&self, bits: &mut Bits) -> Option<u8> {
            bits.fill();
            let entry = self.lut[bits.peek(LUT_BITS) as usize];
            if entry != 0 {
                bits.consume(u32::from(entry >> 8));
                return Some(entry as u8);
            }
            let word = bits.peek(16) as i32;
            for len in LUT_BITS + 1..=16 {
                let code = word >> (16 - len);
                if code <= self.maxcode[len as usize] {
                    bits.consume(len);
                    let i = usize::try_from(code + self.valptr[len as usize]).ok()?;
                    return self.values.get(i).copied();
                }
            }
            None
        }
    }

    /// A Huffman table for AC coefficients that are only skipped: indexed by the next
    /// `LUT_BITS` bits, how many bits the code and its magnitude take (low 5 bits) and
    /// how many coefficients they cover (the rest; 64 for end-of-block); 0 when the
    /// code and magnitude are longer than `LUT_BITS`.
    struct AcSkip {
        huffman: Huffman,
        lut: Box<[u16; 1 << LUT_BITS]>,
    }

    impl AcSkip {
        fn new(huffman: Huffman) -> AcSkip {
            let mut lut = Box::new([0u16; 1 << LUT_BITS]);
            for (out, &entry) in lut.iter_mut().zip(huffman.lut.iter()) {
                *out = {
                    let (len, rs) = (u32::from(entry >> 8), entry & 0xFF);
                    let (run, size) = (rs >> 4, rs & 15);
                    let bits = len + u32::from(size);
                    if entry == 0 || bits > LUT_BITS {
                        0
                    } else {
                        let advance = match (run, size) {
                            (0, 0) => 64,
                            (15, 0) => 16,
                            // Other runs with no magnitude are not valid baseline codes;
                            // they end the block as libjpeg treats them.
                            (_, 0) => 64,
                            (run, _) => run + 1,
                        };
                        advance << 5 | bits as u16
                    }
                };
            }
            AcSkip { huffman, lut }
        }

        /// Skips one block's 63 AC coefficients.
        #[inline(always)]
        fn skip_block(&self, bits: &mut Bits) -> Option<()> {
            let mut k = 1u32;
            while k < 64 {
                bits.fill();
                let entry = self.lut[bits.peek(LUT_BITS) as usize];
                if entry != 0 {
                    bits.consume(u32::from(entry & 31));
                    k += u32::from(entry >> 5);
                    continue;
                }
                let rs = self.huffman.decode(bits)?;
                let (run, size) = (u32::from(rs >> 4), u32::from(rs & 15));
                if size == 0 {
                    if run != 15 {
                        break;
                    }
                    k += 16;
                } else {
                    bits.fill();
                    bits.consume(size);
                    k += run + 1;
                }
            }
            Some(())
        }
    }

    /// Entropy-coded data read most significant bit first, with stuffed zero bytes
    /// removed. At a marker it stops and feeds zero bits, counting them, so that a
    /// scan that ends early can be told apart from one that ends exactly.
    #[derive(Clone, Copy)]
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        /// The next bits, aligned to the top.
        buf: u64,
        /// How many bits of `buf` are valid.
        n: u32,
        /// Zero bits fed since a marker (or the end of the data) was reached.
        padding: u32,
        at_marker: bool,
    }

    impl<'a> Bits<'a> {
        fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
            Bits {
                data,
                pos,
                buf: 0,
                n: 0,
                padding: 0,
                at_marker: false,
            }
        }

        /// Tops the buffer up to at least 57 bits: a Huffman code and its magnitude
        /// take at most 32.
        #[inline(always)]
        fn fill(&mut self) {
            if self.n > 32 {
                return;
            }
            // Fast path: eight bytes with no 0xFF among them (so neither a stuffed
            // byte nor a marker) go in at once, as many whole bytes as fit.
            // (At a marker, `pos` is at its 0xFF, so the slow path takes over.)
            if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
                let word = u64::from_be_bytes(chunk.try_into().expect("eight bytes"));
                let inverted = !word;
                let has_ff = inverted.wrapping_sub(0x0101_0101_0101_0101)
                    & !inverted
                    & 0x8080_8080_8080_8080
                    != 0;
                if !has_ff {
                    let bytes = (64 - self.n) / 8;
                    let bits = bytes * 8;
                    self.buf |= (word >> (64 - bits)) << (64 - self.n - bits);
                    self.n += bits;
                    self.pos += bytes as usize;
                    return;
                }
            }
            *self = self.fill_bytewise();
        }

        /// `fill` a byte at a time, near a 0xFF byte. By value, so that the caller's
        /// bit buffer can stay in registers.
        #[cold]
        #[inline(never)]
        fn fill_bytewise(mut self) -> Self {
            while self.n <= 56 {
                let byte = self.next_byte();
                self.buf |= u64::from(byte) << (56 - self.n);
                self.n += 8;
            }
            self
        }

        fn next_byte(&mut self) -> u8 {
            if !self.at_marker {
                match self.data.get(self.pos) {
                    Some(0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                        self.pos += 2;
                        return 0xFF;
                    }
                    Some(0xFF) | None => self.at_marker = true,
                    Some(&b) => {
                        self.pos += 1;
                        return b;
                    }
                }
            }
            self.padding += 8;
            0
        }

        #[inline(always)]
        fn peek(&self, bits: u32) -> u64 {
            self.buf >> (64 - bits)
        }

        #[inline(always)]
        fn consume(&mut self, bits: u32) {
            self.buf <<= bits;
            self.n = self.n.saturating_sub(bits);
        }

        /// A magnitude of `size` bits (F.2.2.1's EXTEND); `fill` must have run.
        #[inline(always)]
        fn receive_extend(&mut self, size: u32) -> i32 {
            if size == 0 {
                return 0;
            }
            let v = self.peek(size) as i32;
            self.consume(size);
            if v < 1 << (size - 1) {
                v - (1 << size) + 1
            } else {
                v
            }
        }

        /// Whether bits were used that the data did not have.
        fn overran(&self) -> bool {
            self.n < self.padding
        }

        /// At a restart interval's end: drops the rest of the byte, then expects
        /// restart marker `index` (0-7).
        fn restart(mut self, index: u8) -> Option<Self> {
            if self.overran() {
                return None;
            }
            // What is still buffered must be the fill bits of the interval's last byte
            // (and zeros fed at the marker): whole bytes left over mean the data and
            // the restart interval disagree. Bytes only ever enter the buffer from
            // before the marker, so `pos` is at it (or at its fill bytes).
            if self.n - self.padding >= 8 {
                return None;
            }
            while self.data.get(self.pos) == Some(&0xFF)
                && self.data.get(self.pos + 1) == Some(&0xFF)
            {
                self.pos += 1;
            }
            if self.data.get(self.pos) != Some(&0xFF)
                || self.data.get(self.pos + 1) != Some(&(0xD0 + index))
            {
                return None;
            }
            Some(Bits::new(self.data, self.pos + 2))
        }
    }

    struct Component {
        id: u8,
        h: usize,
        v: usize,
        quant: usize,
        /// Blocks a row of `dc` holds: the MCU grid's width.
        stride: usize,
        /// Each block's DC coefficient, quantised.
        dc: Vec<i32>,
        /// Whether a scan has given this component's DC coefficients.
        started: bool,
    }

    /// The frame header, and each component's DC coefficients as scans fill them in.
    struct Frame {
        width: usize,
        height: usize,
        progressive: bool,
        components: Vec<Component>,
        hmax: usize,
        vmax: usize,
        mcus_x: usize,
        mcus_y: usize,
    }

    /// Decodes `jpeg` at 1/8 scale: `ceil(width / 8)` × `ceil(height / 8)` pixels,
    /// greyscale or RGB, orientation not applied.
    pub(super) fn decode(jpeg: &[u8]) -> Option<DynamicImage> {
        if !jpeg.starts_with(&[0xFF, 0xD8]) {
            return None;
        }
        let mut quant_dc = [None::<u16>; 4];
        let mut dc_tables: [Option<Huffman>; 4] = Default::default();
        let mut ac_tables: [Option<AcSkip>; 4] = Default::default();
        let mut frame: Option<Frame> = None;
        let (mut restart_interval, mut jfif, mut adobe_transform) = (0usize, false, None);
        let (mut i, mut scans) = (2, 0);
        loop {
            if *jpeg.get(i)? != 0xFF {
                return None;
            }
            while *jpeg.get(i)? == 0xFF {
                i += 1;
            }
            let marker = jpeg[i];
            i += 1;
            if matches!(marker, 0x01 | 0xD0..=0xD7) {
                continue;
            }
            if marker == 0xD9 {
                return image(frame?, &quant_dc, jfif, adobe_transform);
            }
            let len = usize::from(u16::from_be_bytes([*jpeg.get(i)?, *jpeg.get(i + 1)?]));
            if len < 2 {
                return None;
            }
            let seg = jpeg.get(i + 2..i + len)?;
            match marker {
                // Baseline, extended sequential and progressive, Huffman-coded.
                0xC0..=0xC2 => {
                    if frame.is_some() {
                        return None;
                    }
                    frame = Some(frame_header(seg, marker == 0xC2)?);
                }
                // Lossless, hierarchical, arithmetic-coded: not here.
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xC4 => {
                    let mut seg = seg;
                    while let Some((&class_id, rest)) = seg.split_first() {
                        let counts = rest.get(..16)?;
                        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                        let values = rest.get(16..16 + total)?;
                        let table = Huffman::new(counts, values)?;
                        let id = usize::from(class_id & 15);
                        match (class_id >> 4, id) {
                            (0, 0..=3) => dc_tables[id] = Some(table),
                            (1, 0..=3) => ac_tables[id] = Some(AcSkip::new(table)),
                            _ => return None,
                        }
                        seg = &rest[16 + total..];
                    }
                }
                0xDB => {
                    let mut seg = seg;
                    while let Some((&pq_tq, rest)) = seg.split_first() {
                        let id = usize::from(pq_tq & 15);
                        let (dc, size) = match pq_tq >> 4 {
                            0 => (u16::from(*rest.first()?), 64),
                            1 => (u16::from_be_bytes([*rest.first()?, *rest.get(1)?]), 128),
                            _ => return None,
                        };
                        *quant_dc.get_mut(id)? = Some(dc);
                        seg = rest.get(size..)?;
                    }
                }
                0xDD => {
                    restart_interval =
                        usize::from(u16::from_be_bytes([*seg.first()?, *seg.get(1)?]))
                }
                0xE0 if seg.starts_with(b"JFIF\0") => jfif = true,
                0xEE if seg.starts_with(b"Adobe") => adobe_transform = Some(*seg.get(11)?),
                0xDA => {
                    // Each scan walks every block of its components, so a hostile file
                    // of many tiny scans would cost blocks × scans; real progressive
                    // files have about ten.
                    scans += 1;
                    if scans > MAX_SCANS {
                        return None;
                    }
                    let tables = Tables {
                        dc: &dc_tables,
                        ac: &ac_tables,
                        restart_interval,
                    };
                    // The scan's data runs from the end of its header to the next
                    // marker, where the next segment starts.
                    i = scan(jpeg, i + len, seg, frame.as_mut()?, &tables)?;
                    continue;
                }
                _ => {}
            }
            i += len;
        }
    }

    /// A frame header (SOF segment): 8-bit samples, one or three components.
    fn frame_header(seg: &[u8], progressive: bool) -> Option<Frame> {
        let (&precision, rest) = seg.split_first()?;
        let height = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let width = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
        let count = usize::from(*rest.get(4)?);
        if precision != 8 || width == 0 || height == 0 || !(count == 1 || count == 3) {
            return None;
        }
        let mut components = Vec::new();
        for c in rest.get(5..5 + 3 * count)?.chunks_exact(3) {
            let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
                return None;
            }
            components.push(Component {
                id: c[0],
                h,
                v,
                quant: usize::from(c[2]),
                stride: 0,
                dc: Vec::new(),
                started: false,
            });
        }
        if count == 1 {
            // A lone component's scan is not interleaved: one block per MCU.
            components[0].h = 1;
            components[0].v = 1;
        }
        let hmax = components.iter().map(|c| c.h).max()?;
        let vmax = components.iter().map(|c| c.v).max()?;
        if components
            .iter()
            .any(|c| hmax % c.h != 0 || vmax % c.v != 0)
        {
            return None;
        }
        let (mcus_x, mcus_y) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
        for c in &mut components {
            // One value per block over the whole MCU grid.
            c.stride = mcus_x * c.h;
            c.dc = vec![0; c.stride * mcus_y * c.v];
        }
        Some(Frame {
            width,
            height,
            progressive,
            components,
            hmax,
            vmax,
            mcus_x,
            mcus_y,
        })
    }

    /// The Huffman tables and restart interval in force for a scan.
    struct Tables<'t> {
        dc: &'t [Option<Huffman>; 4],
        ac: &'t [Option<AcSkip>; 4],
        restart_interval: usize,
    }

    /// What a scan holds, as far as DC coefficients go.
    #[derive(Clone, Copy, PartialEq)]
    enum ScanKind {
        /// Sequential: every coefficient of its components' blocks.
        Sequential,
        /// Progressive, the DC coefficients' first scan, their high bits from bit `al`.
        DcFirst(u32),
        /// Progressive, one more bit (`al`) of the DC coefficients.
        DcRefine(u32),
    }

    /// Reads one scan into `frame`'s DC coefficients: its header is `header`, its data
    /// starts at `start`. Returns where the data ends (the next marker).
    fn scan(
        jpeg: &[u8],
        start: usize,
        header: &[u8],
        frame: &mut Frame,
        tables: &Tables,
    ) -> Option<usize> {
        let (&count, rest) = header.split_first()?;
        let count = usize::from(count);
        if count == 0 || count > frame.components.len() {
            return None;
        }
        let &[ss, se, approx] = rest.get(2 * count..2 * count + 3)? else {
            return None;
        };
        let (ah, al) = (u32::from(approx >> 4), u32::from(approx & 15));
        let kind = match (frame.progressive, ss, se) {
            (false, 0, 63) if approx == 0 => ScanKind::Sequential,
            (true, 0, 0) if al <= 13 && ah == 0 => ScanKind::DcFirst(al),
            (true, 0, 0) if al <= 13 => ScanKind::DcRefine(al),
            // AC coefficients, which 1/8 scale does not need.
            (true, 1.., _) => return next_marker(jpeg, start),
            _ => return None,
        };

        // Per component of the scan, in scan order: which frame component, its tables.
        let mut members: Vec<(usize, Option<&Huffman>, Option<&AcSkip>)> = Vec::new();
        for sel in rest.chunks_exact(2).take(count) {
            let index = frame.components.iter().position(|c| c.id == sel[0])?;
            if members.iter().any(|m| m.0 == index) {
                return None;
            }
            let (dc, ac) = (usize::from(sel[1] >> 4), usize::from(sel[1] & 15));
            let dc = tables.dc.get(dc)?.as_ref();
            let ac = tables.ac.get(ac)?.as_ref();
            match kind {
                ScanKind::Sequential if dc.is_none() || ac.is_none() => return None,
                ScanKind::DcFirst(_) if dc.is_none() => return None,
                ScanKind::DcRefine(_) if !frame.components[index].started => return None,
                _ => {}
            }
            members.push((index, dc, ac));
        }
        // An interleaved scan goes MCU by MCU; a single component's, block by block
        // over that component's own extent.
        let (units_x, units_y, interleaved) = if count > 1 {
            (frame.mcus_x, frame.mcus_y, true)
        } else {
            let c = &frame.components[members[0].0];
            let w = (frame.width * c.h).div_ceil(frame.hmax).div_ceil(8);
            let h = (frame.height * c.v).div_ceil(frame.vmax).div_ceil(8);
            (w, h, false)
        };

        let mut bits = Bits::new(jpeg, start);
        let mut pred = [0i32; 3];
        let restart_interval = tables.restart_interval;
        let (mut units_left, mut next_restart) = (restart_interval, 0u8);
        for uy in 0..units_y {
            for ux in 0..units_x {
                if restart_interval > 0 {
                    if units_left == 0 {
                        bits = bits.restart(next_restart)?;
                        next_restart = (next_restart + 1) & 7;
                        pred = [0; 3];
                        units_left = restart_interval;
                    }
                    units_left -= 1;
                }
                for (&(index, dc, ac), pred) in members.iter().zip(&mut pred) {
                    let c = &mut frame.components[index];
                    let (h, v) = if interleaved { (c.h, c.v) } else { (1, 1) };
                    for by in 0..v {
                        let row = (uy * v + by) * c.stride + ux * h;
                        for bx in 0..h {
                            let coef = &mut c.dc[row + bx];
                            match (kind, dc, ac) {
                                (ScanKind::DcRefine(al), _, _) => {
                                    bits.fill();
                                    if bits.peek(1) == 1 {
                                        *coef |= 1 << al;
                                    }
                                    bits.consume(1);
                                }
                                (_, Some(dc), ac) => {
                                    let size = u32::from(dc.decode(&mut bits)?);
                                    if size > 11 {
                                        return None;
                                    }
                                    bits.fill();
                                    *pred = pred.wrapping_add(bits.receive_extend(size));
                                    match (kind, ac) {
                                        (ScanKind::DcFirst(al), _) => *coef = *pred << al,
                                        (_, Some(ac)) => {
                                            *coef = *pred;
                                            ac.skip_block(&mut bits)?;
                                        }
                                        _ => return None,
                                    }
                                }
                                _ => return None,
                            }
                        }
                    }
                }
            }
        }
        if bits.overran() {
            return None;
        }
        for &(index, ..) in &members {
            frame.components[index].started = true;
        }
        next_marker(jpeg, bits.pos)
    }

    /// Where the entropy-coded data from `i` ends: the next marker that is neither a
    /// stuffed zero nor a restart marker.
    fn next_marker(jpeg: &[u8], mut i: usize) -> Option<usize> {
        loop {
            let at = i + jpeg.get(i..)?.iter().position(|&b| b == 0xFF)?;
            match *jpeg.get(at + 1)? {
                0x00 | 0xD0..=0xD7 => i = at + 2,
                // Fill bytes before a marker.
                0xFF => i = at + 1,
                _ => return Some(at),
            }
        }
    }

    /// The decoded frame's pixels, once its scans have given every component's DC.
    fn image(
        frame: Frame,
        quant_dc: &[Option<u16>; 4],
        jfif: bool,
        adobe_transform: Option<u8>,
    ) -> Option<DynamicImage> {
        let components = &frame.components;
        if components.iter().any(|c| !c.started) {
            return None;
        }
        if let [a, b, c] = components.as_slice() {
            // RGB and big-gamut variants by component ids; Adobe's "no transform"
            // means RGB unless JFIF says YCbCr.
            if matches!(
                (a.id, b.id, c.id),
                (82, 71, 66) | (1, 34, 35) | (114, 103, 98)
            ) || (!jfif && adobe_transform.is_some_and(|t| t != 1))
            {
                return None;
            }
        }
        let (out_w, out_h) = (frame.width.div_ceil(8), frame.height.div_ceil(8));
        let mut planes = Vec::with_capacity(components.len());
        for c in components {
            let quant = i32::from((*quant_dc.get(c.quant)?)?);
            // The 1×1 IDCT: the dequantised DC over 8, level-shifted. (In 32 bits: a
            // valid file's DC, at most 2^11, times a quantiser stays far inside; a
            // corrupt one's wraps.)
            let pixels: Vec<u8> =
                c.dc.iter()
                    .map(|&dc| {
                        ((dc.wrapping_mul(quant).wrapping_add(4) >> 3) + 128).clamp(0, 255) as u8
                    })
                    .collect();
            let (fx, fy) = (frame.hmax / c.h, frame.vmax / c.v);
            planes.push(upsample(&pixels, c.stride, fx, fy, out_w, out_h));
        }
        let (w, h) = (u32::try_from(out_w).ok()?, u32::try_from(out_h).ok()?);
        match <[Vec<u8>; 3]>::try_from(planes) {
            Ok([y, cb, cr]) => {
                let mut rgb = vec![0; out_w * out_h * 3];
                for (((px, &y), &cb), &cr) in rgb.chunks_exact_mut(3).zip(&y).zip(&cb).zip(&cr) {
                    px.copy_from_slice(&ycbcr_to_rgb(y, cb, cr));
                }
                RgbImage::from_raw(w, h, rgb).map(DynamicImage::ImageRgb8)
            }
            Err(mut planes) if planes.len() == 1 => {
                GrayImage::from_raw(w, h, planes.pop()?).map(DynamicImage::ImageLuma8)
            }
            Err(_) => None,
        }
    }

    /// A plane of `stride` columns scaled up by whole factors to `out_w` × `out_h`,
    /// interpolating linearly between sample centres, edges replicated.
    fn upsample(
        plane: &[u8],
        stride: usize,
        fx: usize,
        fy: usize,
        out_w: usize,
        out_h: usize,
    ) -> Vec<u8> {
        let rows = plane.len() / stride;
        if fx == 1 && fy == 1 {
            let mut out = Vec::with_capacity(out_w * out_h);
            for row in plane.chunks_exact(stride).take(out_h) {
                out.extend_from_slice(&row[..out_w]);
            }
            return out;
        }
        // For each output coordinate, the two source samples and the second's weight
        // in 1/256: output centre x + 1/2 sits at (x + 1/2) / f in source samples.
        let taps = |f: usize, n: usize, len: usize| -> Vec<(usize, usize, u32)> {
            (0..n)
                .map(|x| {
                    let pos256 = ((2 * x + 1) * 256 / (2 * f)).saturating_sub(128);
                    let (i, w) = (pos256 / 256, (pos256 % 256) as u32);
                    (i.min(len - 1), (i + 1).min(len - 1), w)
                })
                .collect()
        };
        let (xs, ys) = (taps(fx, out_w, stride), taps(fy, out_h, rows));
        let mut out = Vec::with_capacity(out_w * out_h);
        let mut line = vec![0u32; stride];
        for &(y0, y1, wy) in &ys {
            let (r0, r1) = (
                &plane[y0 * stride..][..stride],
                &plane[y1 * stride..][..stride],
            );
            for ((l, &a), &b) in line.iter_mut().zip(r0).zip(r1) {
                *l = u32::from(a) * (256 - wy) + u32::from(b) * wy;
            }
            for &(x0, x1, wx) in &xs {
                let v = line[x0] * (256 - wx) + line[x1] * wx;
                out.push(((v + (1 << 15)) >> 16) as u8);
            }
        }
        out
    }

    /// JFIF's YCbCr to RGB in 16-bit fixed point.
    #[inline(always)]
    fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = i32::from(y) << 16;
        let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
        let c = |v: i32| ((v + (1 << 15)) >> 16).clamp(0, 255) as u8;
        [
            c(y + 91_881 * cr),
            c(y - 22_554 * cb - 46_802 * cr),
            c(y + 116_130 * cb),
        ]
    }
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

    /// CRC-32 as PNG chunks carry it (IEEE, reflected).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
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
        // IHDR width/height live at bytes 16..24, its CRC (over type and data) at 29..33:
        // a well-formed header, so only the pixel limit can refuse it.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&png, &limits).unwrap_err();
        assert!(matches!(err, JobError::Permanent(_)), "{err}");
        assert!(err.to_string().contains("megapixels"), "{err}");

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
    fn jpeg_decode_size_keeps_every_output_covered() {
        let pick = |o, sizes: &[Size], fit| jpeg_decode_size((3000, 2000), o, sizes, fit);
        let up = Orientation::NoTransforms;
        // 256×171 out: 1/8 scale (375×250) is the smallest still as large.
        assert_eq!(pick(up, &[size(256, 0)], Fit::Contain), (375, 250));
        assert_eq!(pick(up, &[size(375, 0)], Fit::Contain), (375, 250));
        assert_eq!(pick(up, &[size(376, 0)], Fit::Contain), (750, 500));
        // Displayed as 2000×3000, 256 wide is 256×384 out: 1/8 would be 250 wide.
        assert_eq!(
            pick(Orientation::Rotate90, &[size(256, 0)], Fit::Contain),
            (750, 500)
        );
        assert_eq!(pick(up, &[size(100, 100)], Fit::Cover), (375, 250));
        // Contained, 300×300 is 300×200; covered it needs 300 rows.
        assert_eq!(pick(up, &[size(300, 300)], Fit::Contain), (375, 250));
        assert_eq!(pick(up, &[size(300, 300)], Fit::Cover), (750, 500));
        assert_eq!(pick(up, &[size(400, 100)], Fit::Fill), (750, 500));
        // The largest output decides.
        assert_eq!(
            pick(up, &[size(64, 0), size(0, 300)], Fit::Contain),
            (750, 500)
        );
        assert_eq!(
            pick(up, &[size(64, 0), size(1000, 0)], Fit::Contain),
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
        // 1/8 scale, from the DC coefficients.
        assert_scaled_like_full(&jpeg, &[size(200, 0)], &ALL_FITS, (201, 134));
        // 150×150 is 150×100 contained, but cover and fill need 150 rows: 1/4 scale.
        let sizes = [size(150, 150), size(0, 64)];
        assert_scaled_like_full(&jpeg, &sizes, &[Fit::Contain], (201, 134));
        assert_scaled_like_full(&jpeg, &sizes, &[Fit::Cover, Fit::Fill], (401, 267));
        assert_scaled_like_full(&jpeg, &[size(700, 0)], &ALL_FITS, (801, 534));
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
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &ALL_FITS, (150, 100));
        assert_scaled_like_full(&jpeg, &[size(200, 0)], &ALL_FITS, (300, 200));
    }

    #[test]
    fn progressive_jpegs_decode_scaled() {
        let img = scene(1200, 800);
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.set_progressive(true);
        enc.encode(img.as_raw(), 1200, 800, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        // 1/8 from the DC scans alone; 1/4 through jpeg-decoder's scaled IDCT.
        assert!(dc_jpeg::decode(&jpeg).is_some());
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &ALL_FITS, (150, 100));
        assert_scaled_like_full(&jpeg, &[size(200, 0)], &ALL_FITS, (300, 200));
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
        assert!(dc_jpeg::decode(&jpeg).is_none());
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &ALL_FITS, (800, 600));
    }

    /// A JPEG of `img` from jpeg-encoder: baseline, with these chroma sampling factors
    /// and restart interval (0 for none).
    fn baseline_jpeg(
        img: &RgbImage,
        sampling: jpeg_encoder::SamplingFactor,
        restart: u16,
    ) -> Vec<u8> {
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.set_sampling_factor(sampling);
        if restart > 0 {
            enc.set_restart_interval(restart);
        }
        let (w, h) = (img.width() as u16, img.height() as u16);
        enc.encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        jpeg
    }

    /// jpeg-decoder's 1/8-scale decoding of `jpeg`.
    fn jpeg_decoder_eighth(jpeg: &[u8]) -> DynamicImage {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        d.read_info().unwrap();
        d.scale(1, 1).unwrap();
        let pixels = d.decode().unwrap();
        let info = d.info().unwrap();
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => {
                DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).unwrap())
            }
            _ => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).unwrap()),
        }
    }

    /// The mean of each 8×8 block (partial blocks at the edges: of what is there),
    /// which is what an IDCT at 1/8 scale gives.
    fn block_means(img: &DynamicImage) -> DynamicImage {
        let img = img.to_rgb8();
        let (w, h) = img.dimensions();
        DynamicImage::ImageRgb8(RgbImage::from_fn(w.div_ceil(8), h.div_ceil(8), |bx, by| {
            let (mut sum, mut n) = ([0u32; 3], 0);
            for y in by * 8..(by * 8 + 8).min(h) {
                for x in bx * 8..(bx * 8 + 8).min(w) {
                    let p = img.get_pixel(x, y);
                    for c in 0..3 {
                        sum[c] += u32::from(p[c]);
                    }
                    n += 1;
                }
            }
            ::image::Rgb(sum.map(|v| ((v + n / 2) / n) as u8))
        }))
    }

    #[test]
    fn dc_decoding_matches_the_scaled_idct() {
        use jpeg_encoder::SamplingFactor as S;
        // Odd sides: partial MCUs at the right and bottom edges.
        let img = scene(1001, 667);
        let limits = ImageLimits::default();
        let progressive = |sampling| {
            let mut jpeg = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
            enc.set_sampling_factor(sampling);
            enc.set_progressive(true);
            enc.encode(img.as_raw(), 1001, 667, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            jpeg
        };
        let gray = DynamicImage::ImageRgb8(img.clone()).into_luma8();
        let cases = [
            ("4:4:4", baseline_jpeg(&img, S::F_1_1, 0), 1.25, true),
            (
                "4:4:4, restarts",
                baseline_jpeg(&img, S::F_1_1, 5),
                1.25,
                true,
            ),
            ("4:2:0", baseline_jpeg(&img, S::F_2_2, 0), 1.25, false),
            (
                "4:2:2, restarts",
                baseline_jpeg(&img, S::F_2_1, 7),
                1.25,
                false,
            ),
            (
                "4:4:0, restarts",
                baseline_jpeg(&img, S::F_1_2, 1),
                1.25,
                false,
            ),
            // jpeg-encoder writes these as one scan per component.
            ("4:1:1", baseline_jpeg(&img, S::F_4_1, 0), 4.0, false),
            (
                "2×4, restarts",
                baseline_jpeg(&img, S::F_2_4, 3),
                4.0,
                false,
            ),
            ("progressive 4:4:4", progressive(S::F_1_1), 1.25, true),
            ("progressive 4:2:0", progressive(S::F_2_2), 1.25, false),
            (
                "greyscale",
                jpeg_of(&DynamicImage::ImageLuma8(gray)),
                1.25,
                true,
            ),
        ];
        for (label, jpeg, bound, full_chroma) in cases {
            let ours = dc_jpeg::decode(&jpeg).expect(label);
            assert_eq!((ours.width(), ours.height()), (126, 84), "{label}");
            assert_eq!(
                matches!(ours, DynamicImage::ImageLuma8(_)),
                label == "greyscale"
            );
            // jpeg-decoder truncates where libjpeg (and this decoder) round: about half
            // a level lower on each of Y, Cb and Cr. Chroma at a quarter of the width
            // or height differs more: jpeg-decoder replicates it, this decoder
            // interpolates.
            let diff = mean_abs_diff(&ours, &jpeg_decoder_eighth(&jpeg));
            assert!(diff < bound, "{label}: mean difference {diff}");
            if full_chroma {
                // Without subsampled chroma, each pixel is its block's mean.
                let full = decode(&jpeg, &limits).unwrap().image;
                let diff = mean_abs_diff(&ours, &block_means(&full));
                assert!(diff < 0.5, "{label}: mean difference {diff}");
            }
            // decode_for takes this path for thumbnails this small.
            let thumb = decode_for(&jpeg, &limits, &[size(100, 0)], Fit::Contain).unwrap();
            assert_eq!(thumb.image, ours, "{label}");
        }
    }

    #[test]
    fn dc_decoding_refuses_what_it_cannot_read() {
        let img = scene(160, 96);
        let jpeg = baseline_jpeg(&img, jpeg_encoder::SamplingFactor::F_2_2, 4);
        assert!(dc_jpeg::decode(&jpeg).is_some());
        let sos = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        let data = sos + 2 + 12;
        // A scan that stops early (EOI right after half its data) is not padded out.
        let mut short = jpeg[..data + (jpeg.len() - data) / 2].to_vec();
        short.extend_from_slice(&[0xFF, 0xD9]);
        assert!(dc_jpeg::decode(&short).is_none());
        // Restart markers out of order.
        let mut swapped = jpeg.clone();
        let rst = swapped.windows(2).position(|w| w == [0xFF, 0xD0]).unwrap();
        swapped[rst + 1] = 0xD3;
        assert!(dc_jpeg::decode(&swapped).is_none());
        // 12-bit samples.
        let mut deep = jpeg.clone();
        let sof = deep.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        deep[sof + 4] = 12;
        assert!(dc_jpeg::decode(&deep).is_none());
        // RGB-coded components.
        let mut rgb = jpeg.clone();
        for (k, id) in [82, 71, 66].into_iter().enumerate() {
            rgb[sof + 10 + 3 * k] = id;
        }
        let (sof_ids, sos_ids) = (sof + 10, sos + 5);
        for k in 0..3 {
            rgb[sos_ids + 2 * k] = rgb[sof_ids + 3 * k];
        }
        assert!(dc_jpeg::decode(&rgb).is_none());
        // Too many scans: a progressive file's last (AC) scan repeated.
        let mut progressive = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 90);
        enc.set_progressive(true);
        enc.encode(img.as_raw(), 160, 96, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let last = progressive
            .windows(2)
            .rposition(|w| w == [0xFF, 0xDA])
            .unwrap();
        let end = progressive.len() - 2;
        let repeated = |times| {
            let mut out = progressive[..end].to_vec();
            for _ in 0..times {
                out.extend_from_slice(&progressive[last..end]);
            }
            out.extend_from_slice(&[0xFF, 0xD9]);
            out
        };
        assert!(dc_jpeg::decode(&repeated(3)).is_some());
        assert!(dc_jpeg::decode(&repeated(64)).is_none());
    }

    #[test]
    fn dc_decoding_survives_corrupt_files() {
        let img = scene(200, 136);
        let baseline = baseline_jpeg(&img, jpeg_encoder::SamplingFactor::F_2_2, 3);
        let mut progressive = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 80);
        enc.set_progressive(true);
        enc.set_restart_interval(2);
        enc.encode(img.as_raw(), 200, 136, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(dc_jpeg::decode(&progressive).is_some());
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        };
        // Any answer will do, but no panic (debug builds check arithmetic overflow),
        // and no hang.
        for round in 0..3000 {
            let mut bad = if round % 2 == 0 {
                baseline.clone()
            } else {
                progressive.clone()
            };
            for _ in 0..1 + next(4) {
                let i = 2 + next(bad.len() - 2);
                bad[i] = next(256) as u8;
            }
            let _ = dc_jpeg::decode(&bad);
            bad.truncate(next(bad.len()));
            let _ = dc_jpeg::decode(&bad);
        }
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
        // 100 wide as displayed is 100×150 out: 1/8 scale, 150×100 stored.
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &[Fit::Contain], (100, 150));
        assert_scaled_like_full(&jpeg, &[size(101, 0)], &[Fit::Contain], (200, 300));
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
