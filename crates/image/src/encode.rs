//! Output encoding: JPEG (jpeg-encoder, transparency flattened onto white), PNG and
//! lossless WebP.

use crate::error::Error;
use image::{ColorType, DynamicImage, ImageEncoder, ImageError, RgbImage};

/// An output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// JPEG, lossy with a quality.
    #[default]
    Jpeg,
    /// PNG, lossless.
    Png,
    /// WebP, lossless.
    Webp,
}

impl Format {
    /// The file name extension: `jpg`, `png` or `webp`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }

    /// The media type, e.g. `image/jpeg`.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }
}

/// Encodes an image of any colour type [`crate::decode`] gives; JPEG flattens
/// transparency onto white, PNG keeps 8 or 16 bits a channel, WebP takes 8.
pub fn encode(img: DynamicImage, format: Format, quality: u8) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let err = |e: ImageError| Error::Encode(e.into());
    let (w, h) = (img.width(), img.height());
    match format {
        Format::Jpeg => {
            let rgb = flatten_on_white(img);
            let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h)) else {
                return Err(Error::JpegTooLarge {
                    width: w,
                    height: h,
                });
            };
            // jpeg-encoder: about three times as fast as image's encoder. Below quality
            // 90 it subsamples chroma 2×2 (4:2:0, as libjpeg and libvips do by default);
            // averaging each 2×2 block, not taking its top-left pixel, keeps colour
            // edges clean.
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
            encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
            encoder
                .encode(rgb.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| Error::Encode(e.into()))?;
        }
        Format::Png => {
            let img = match img.color() {
                ColorType::Rgb32F => DynamicImage::ImageRgb16(img.into_rgb16()),
                ColorType::Rgba32F => DynamicImage::ImageRgba16(img.into_rgba16()),
                _ => img,
            };
            let color = img.color().into();
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(img.as_bytes(), w, h, color)
            .map_err(err)?;
        }
        Format::Webp => {
            let img = match img.color() {
                ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => img,
                c if c.has_alpha() => DynamicImage::ImageRgba8(img.into_rgba8()),
                _ => DynamicImage::ImageRgb8(img.into_rgb8()),
            };
            let color = img.color().into();
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
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
    use crate::decode::Decoded;
    use crate::resize::{Fit, resize};
    use crate::testing::size;
    use image::RgbaImage;

    #[test]
    fn resizes_and_encodes_every_format() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(
            300,
            200,
            image::Rgba([200, 10, 10, 128]),
        ));
        let img = Decoded {
            image: img,
            full: (300, 200),
        };
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            let out = resize(&img, size(30, 30), Fit::Cover).unwrap();
            let bytes = encode(out, format, 80).unwrap();
            let back = image::load_from_memory(&bytes).unwrap();
            assert_eq!((back.width(), back.height()), (30, 30), "{format:?}");
        }
    }

    #[test]
    fn encodes_the_colour_types_decoding_gives_at_their_size() {
        let images = [
            DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(7, 5, image::Rgba([1u16; 4]))),
            DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(7, 5, image::Luma([9u16]))),
            DynamicImage::ImageRgb32F(image::ImageBuffer::from_pixel(
                7,
                5,
                image::Rgb([0.5f32; 3]),
            )),
        ];
        for img in images {
            for format in [Format::Jpeg, Format::Png, Format::Webp] {
                let color = img.color();
                let bytes = encode(img.clone(), format, 80).unwrap();
                let back = image::load_from_memory(&bytes).unwrap();
                assert_eq!(
                    (back.width(), back.height()),
                    (7, 5),
                    "{color:?} {format:?}"
                );
            }
        }
    }
}
