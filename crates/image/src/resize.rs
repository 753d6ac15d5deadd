//! Output geometry (fit, cover, fill) and resizing with fast_image_resize's Lanczos3.

use crate::decode::Decoded;
use crate::error::Error;
use fast_image_resize::{self as fr, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage, RgbaImage};

/// How an output fills its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fit {
    /// Fill the box, cropping the centre.
    Cover,
    /// Fit inside the box, keeping the aspect ratio.
    #[default]
    Contain,
    /// Fill the box, stretching.
    Fill,
}

/// One output box; a side of 0 follows from the aspect ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width in pixels, or 0.
    pub width: u32,
    /// Height in pixels, or 0.
    pub height: u32,
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
pub fn resize(img: &Decoded, size: Size, fit: Fit) -> Result<DynamicImage, Error> {
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
        .map_err(Error::Resize)?;
    let buf = dst.into_vec();
    let out = if pixel_type == fr::PixelType::U8x4 {
        RgbaImage::from_raw(w, h, buf).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(w, h, buf).map(DynamicImage::ImageRgb8)
    };
    out.ok_or(Error::MalformedBuffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::size;

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
}
