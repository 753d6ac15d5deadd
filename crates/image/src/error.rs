//! What can go wrong decoding, resizing or encoding an image.

/// Why an image could not be decoded, resized or encoded. Each one is about the input
/// file or the requested output, so trying again fails the same way. The messages are
/// written for the person who uploaded the file: they name no paths.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes could not be read to guess their format.
    #[error("the file could not be read: {0}")]
    Unreadable(#[source] std::io::Error),
    /// Not JPEG, PNG, WebP, GIF or TIFF.
    #[error("the file is not a supported image: use JPEG, PNG, WebP, GIF or TIFF")]
    UnsupportedFormat,
    /// A JPEG that ends before its end-of-image marker (the decoder would fill the
    /// missing part with grey rather than fail).
    #[error(
        "the file is not a valid JPEG image: it is truncated or corrupt (it ends before the end-of-image marker)"
    )]
    TruncatedJpeg,
    /// The header's dimensions are above the pixel limit; nothing was decoded.
    #[error(
        "the image is {width}×{height} ({:.1} megapixels), above the limit of {:.1} megapixels",
        area_megapixels(.width, .height),
        megapixels(.max_pixels)
    )]
    TooManyPixels {
        /// The image's width as stored.
        width: u32,
        /// The image's height as stored.
        height: u32,
        /// The limit it is above.
        max_pixels: u64,
    },
    /// The decoder's dimension or allocation limit refused the image.
    #[error(
        "the image is larger than this server accepts (at most {max_dimension} pixels a side, {:.0} megapixels)",
        megapixels(.max_pixels)
    )]
    OverLimits {
        /// The limit on width and height.
        max_dimension: u32,
        /// The limit on pixels.
        max_pixels: u64,
    },
    /// A valid file of a supported format that uses a feature the decoder lacks.
    #[error("this {format} image uses a feature that is not supported: {source}")]
    UnsupportedFeature {
        /// The format's name, e.g. `JPEG`.
        format: String,
        /// What is not supported.
        source: image::error::UnsupportedError,
    },
    /// The decoder failed: a truncated or corrupt file.
    #[error("the file is not a valid {format} image (it may be truncated or corrupt): {source}")]
    Invalid {
        /// The format's name, e.g. `PNG`.
        format: String,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// The resizer refused the images it was given.
    #[error("resizing failed: {0}")]
    Resize(#[source] fast_image_resize::ResizeError),
    /// The resizer's output did not have the size it was asked for.
    #[error("resizing produced a malformed buffer")]
    MalformedBuffer,
    /// JPEG stores width and height in 16 bits.
    #[error("a JPEG cannot be {width}×{height}: at most 65535 pixels a side")]
    JpegTooLarge {
        /// The requested width.
        width: u32,
        /// The requested height.
        height: u32,
    },
    /// The encoder failed.
    #[error("encoding the thumbnail failed: {0}")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn megapixels(pixels: &u64) -> f64 {
    *pixels as f64 / 1e6
}

fn area_megapixels(width: &u32, height: &u32) -> f64 {
    megapixels(&(u64::from(*width) * u64::from(*height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_messages_give_sizes_in_megapixels() {
        let e = Error::TooManyPixels {
            width: 12_000,
            height: 9_000,
            max_pixels: 100_000_000,
        };
        assert_eq!(
            e.to_string(),
            "the image is 12000×9000 (108.0 megapixels), above the limit of 100.0 megapixels"
        );
        let e = Error::OverLimits {
            max_dimension: 30_000,
            max_pixels: 100_000_000,
        };
        assert_eq!(
            e.to_string(),
            "the image is larger than this server accepts (at most 30000 pixels a side, 100 megapixels)"
        );
        let e = Error::JpegTooLarge {
            width: 70_000,
            height: 10,
        };
        assert_eq!(
            e.to_string(),
            "a JPEG cannot be 70000×10: at most 65535 pixels a side"
        );
    }
}
