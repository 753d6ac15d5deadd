//! Test images and comparisons shared by the modules' tests.

use crate::{DecodeLimits, Fit, Size, decode, decode_for, resize};
use image::{DynamicImage, ImageEncoder, RgbImage};

pub(crate) fn size(width: u32, height: u32) -> Size {
    Size { width, height }
}

pub(crate) const ALL_FITS: [Fit; 3] = [Fit::Contain, Fit::Cover, Fit::Fill];

/// Smooth gradients crossed by hard edges, like a photograph at a glance.
pub(crate) fn scene(w: u32, h: u32) -> RgbImage {
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
        image::Rgb([
            c(40.0 + 180.0 * fx + stripe),
            c(200.0 - 150.0 * fy + disc),
            c(60.0 + 100.0 * (fx * 9.0).sin().abs() + disc),
        ])
    })
}

pub(crate) fn jpeg_of(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    // Not `encode_image`: it would see a `DynamicImage` as RGBA and write grey as colour.
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(
            img.as_bytes(),
            img.width(),
            img.height(),
            img.color().into(),
        )
        .unwrap();
    out
}

pub(crate) fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
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
pub(crate) fn assert_scaled_like_full(
    jpeg: &[u8],
    sizes: &[Size],
    fits: &[Fit],
    expect: (u32, u32),
) {
    let limits = DecodeLimits::default();
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
