//! Bounded decoding of untrusted images, EXIF orientation applied, and JPEG
//! shrink-on-load for thumbnails.
//!
//! The dimensions from the header are checked against the pixel limit before anything
//! is decoded (so decompression bombs are refused without allocating), a JPEG must
//! reach its end-of-image marker, and the decoder runs with an allocation limit. For
//! thumbnails, a JPEG larger than its outputs is decoded at the smallest of 1/8, 1/4 or
//! 1/2 scale that still covers every output, as libvips' shrink-on-load chooses: at
//! 1/8, a baseline or progressive file's pixels are its blocks' DC coefficients
//! (`dc_jpeg`, which skips the rest of the entropy-coded data); other scales and files
//! go through jpeg-decoder's scaled IDCT.

use crate::dc_jpeg;
use crate::error::Error;
use crate::resize::{Fit, Size, target_dims};
use image::metadata::Orientation;
use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
};
use std::io::Cursor;

/// Limits on the untrusted images [`decode`] and [`decode_for`] accept.
#[derive(Debug, Clone)]
pub struct DecodeLimits {
    /// Largest input in pixels (width × height).
    pub max_pixels: u64,
    /// Largest input width or height.
    pub max_dimension: u32,
}

impl Default for DecodeLimits {
    /// 100 megapixels, 30,000 pixels a side.
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
            max_dimension: 30_000,
        }
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
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, Error> {
    decode_inner(bytes, limits, None)
}

/// Decodes an untrusted image within `limits` for thumbnails of `sizes`, orientation
/// applied: a JPEG at the reduced size [`jpeg_decode_size`] picks, other formats (and
/// JPEGs the scaled decoder does not handle: CMYK, 16-bit) at full size.
pub fn decode_for(
    bytes: &[u8],
    limits: &DecodeLimits,
    sizes: &[Size],
    fit: Fit,
) -> Result<Decoded, Error> {
    decode_inner(bytes, limits, Some((sizes, fit)))
}

fn decode_inner(
    bytes: &[u8],
    limits: &DecodeLimits,
    boxes: Option<(&[Size], Fit)>,
) -> Result<Decoded, Error> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(Error::Unreadable)?;
    let format = match reader.format() {
        Some(
            f @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Tiff),
        ) => f,
        _ => return Err(Error::UnsupportedFormat),
    };
    let name = format!("{format:?}").to_uppercase();
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(Error::TruncatedJpeg);
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
        return Err(Error::TooManyPixels {
            width: w,
            height: h,
            max_pixels: limits.max_pixels,
        });
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
    limits: &DecodeLimits,
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

/// The decoder's error as this crate's: limits, unsupported features, and anything
/// else as an invalid file of `format`.
fn describe(format: &str, e: ImageError, limits: &DecodeLimits) -> Error {
    match e {
        ImageError::Limits(_) => Error::OverLimits {
            max_dimension: limits.max_dimension,
            max_pixels: limits.max_pixels,
        },
        ImageError::Unsupported(source) => Error::UnsupportedFeature {
            format: format.to_owned(),
            source,
        },
        source => Error::Invalid {
            format: format.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resize::resize;
    use crate::testing::{ALL_FITS, assert_scaled_like_full, jpeg_of, scene, size};
    use forklift_testkit::with_exif_orientation;
    use image::ImageEncoder;

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
        let limits = DecodeLimits::default();
        let err = decode(b"definitely not an image", &limits).unwrap_err();
        assert!(err.to_string().contains("not a supported image"), "{err}");

        // A valid PNG header claiming 100000×100000 pixels, with no pixel data behind it.
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&[0; 3], 1, 1, image::ExtendedColorType::Rgb8)
            .unwrap();
        // IHDR width/height live at bytes 16..24, its CRC (over type and data) at 29..33:
        // a well-formed header, so only the pixel limit can refuse it.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&png, &limits).unwrap_err();
        // Refused by a limit (here the decoder's on dimensions), not by a failed decode.
        assert!(
            matches!(err, Error::OverLimits { .. } | Error::TooManyPixels { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("megapixels"), "{err}");

        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(&[0; 64 * 64 * 3], 64, 64, image::ExtendedColorType::Rgb8)
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
            &DecodeLimits::default(),
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

    #[test]
    fn tiff_inputs_decode() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, image::Rgb([10, 200, 30])));
        let mut tiff = std::io::Cursor::new(Vec::new());
        img.write_to(&mut tiff, ImageFormat::Tiff).unwrap();
        let d = decode(tiff.get_ref(), &DecodeLimits::default()).unwrap();
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
                image::Rgb([220, 20, 20])
            } else {
                image::Rgb([20, 20, 220])
            }
        });
        let jpeg = with_exif_orientation(&jpeg_of(&DynamicImage::ImageRgb8(img)), 6);
        // 100 wide as displayed is 100×150 out: 1/8 scale, 150×100 stored.
        assert_scaled_like_full(&jpeg, &[size(100, 0)], &[Fit::Contain], (100, 150));
        assert_scaled_like_full(&jpeg, &[size(101, 0)], &[Fit::Contain], (200, 300));
        let d = decode_for(
            &jpeg,
            &DecodeLimits::default(),
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
