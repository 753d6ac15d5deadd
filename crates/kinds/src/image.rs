//! `image.thumbnail`: one input image (JPEG, PNG, WebP, GIF's first frame, TIFF) to one
//! or more resized images, EXIF orientation applied, metadata not carried over. The
//! parameters, their validation and description live here, with what the image kinds
//! share (input limits, output format and quality, reading and decoding the input);
//! decoding, resizing and encoding are `forklift-image`'s.

use crate::describe::{self, Param};
use async_trait::async_trait;
use forklift_rpc::v1 as pb;
use forklift_runner::{JobCtx, JobError, Kind, Violation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The most boxes one job may ask for.
pub const MAX_SIZES: usize = 8;
/// The largest width or height of a box, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// The lowest JPEG quality.
pub const MIN_QUALITY: u8 = 1;
/// The highest JPEG quality.
pub const MAX_QUALITY: u8 = 100;
/// The JPEG quality a `quality` of 0 stands for.
pub const DEFAULT_QUALITY: u8 = 85;
/// The largest input file by default, in bytes.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

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
    /// [`DEFAULT_MAX_INPUT_BYTES`], and `forklift-image`'s default decoding limits.
    fn default() -> Self {
        let decoding = forklift_image::DecodeLimits::default();
        Self {
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_pixels: decoding.max_pixels,
            max_dimension: decoding.max_dimension,
        }
    }
}

impl ImageLimits {
    /// The limits the decoder checks (the byte limit applies when the input is read).
    fn decoding(&self) -> forklift_image::DecodeLimits {
        forklift_image::DecodeLimits {
            max_pixels: self.max_pixels,
            max_dimension: self.max_dimension,
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

impl From<Fit> for forklift_image::Fit {
    fn from(fit: Fit) -> Self {
        match fit {
            Fit::Cover => Self::Cover,
            Fit::Contain => Self::Contain,
            Fit::Fill => Self::Fill,
        }
    }
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

impl From<Format> for forklift_image::Format {
    fn from(format: Format) -> Self {
        match format {
            Format::Jpeg => Self::Jpeg,
            Format::Png => Self::Png,
            Format::Webp => Self::Webp,
        }
    }
}

/// The `quality` parameter's check, shared by the image kinds: `quality` with
/// [`DEFAULT_QUALITY`] for 0, or a violation if above [`MAX_QUALITY`].
pub(crate) fn check_quality(quality: u32, v: &mut Vec<Violation>) -> u32 {
    if quality > MAX_QUALITY.into() {
        v.push(Violation::new(
            "quality",
            format!("{MIN_QUALITY} to {MAX_QUALITY} (0 for the default of {DEFAULT_QUALITY})"),
        ));
    }
    if quality == 0 {
        DEFAULT_QUALITY.into()
    } else {
        quality
    }
}

/// A validated quality as the encoder takes it.
pub(crate) fn encoder_quality(quality: u32) -> u8 {
    u8::try_from(quality).map_or(MAX_QUALITY, |q| q.clamp(MIN_QUALITY, MAX_QUALITY))
}

/// The `format` parameter's description, shared by the image kinds.
pub(crate) fn format_param() -> Param {
    Param::enumeration(
        "format",
        "Format",
        &[
            ("jpeg", "JPEG", pb::ImageFormat::Jpeg as i32),
            ("png", "PNG", pb::ImageFormat::Png as i32),
            ("webp", "WebP", pb::ImageFormat::Webp as i32),
        ],
    )
    .default(json!("jpeg"))
}

/// The `quality` parameter's description, shared by the image kinds.
pub(crate) fn quality_param() -> Param {
    Param::integer("quality", "JPEG quality")
        .range(MIN_QUALITY.into(), MAX_QUALITY.into())
        .default(json!(DEFAULT_QUALITY))
        .help("PNG and WebP are lossless and ignore it.")
}

/// Reads the job's one input within the byte limit and decodes it on the CPU pool
/// within the pixel limits, orientation applied. `boxes`: the thumbnails it is for,
/// which lets a JPEG decode at a reduced scale; `None` for full size.
pub(crate) async fn decode_input(
    ctx: &mut JobCtx,
    limits: &ImageLimits,
    boxes: Option<(Vec<forklift_image::Size>, forklift_image::Fit)>,
) -> Result<forklift_image::Decoded, JobError> {
    let bytes = ctx.input_bytes(0, limits.max_input_bytes).await?;
    ctx.progress(10, "decoding").await;
    let limits = limits.decoding();
    ctx.blocking(move || {
        match &boxes {
            Some((sizes, fit)) => forklift_image::decode_for(&bytes, &limits, sizes, *fit),
            None => forklift_image::decode(&bytes, &limits),
        }
        .map_err(failed)
    })
    .await
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

impl From<Size> for forklift_image::Size {
    fn from(size: Size) -> Self {
        Self {
            width: size.width,
            height: size.height,
        }
    }
}

/// Parameters of `image.thumbnail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// 1 to [`MAX_SIZES`] boxes.
    pub sizes: Vec<Size>,
    /// How each thumbnail fills its box.
    #[serde(default)]
    pub fit: Fit,
    /// Output format.
    #[serde(default)]
    pub format: Format,
    /// JPEG quality [`MIN_QUALITY`]-[`MAX_QUALITY`]; 0 means [`DEFAULT_QUALITY`]. As
    /// wide as the proto's, so that validation says what is out of range.
    #[serde(default)]
    pub quality: u32,
}

impl Params {
    /// Checks ranges and fills in defaults.
    pub fn validate(mut self) -> Result<Self, Vec<Violation>> {
        let mut v = Vec::new();
        if self.sizes.is_empty() || self.sizes.len() > MAX_SIZES {
            v.push(Violation::new(
                "sizes",
                format!("give 1 to {MAX_SIZES} sizes"),
            ));
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
        self.quality = check_quality(self.quality, &mut v);
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

    fn describe(&self) -> pb::KindInfo {
        let side = |name: &str, label: &str, help: &str| {
            Param::integer(name, label)
                .range(0, MAX_SIDE.into())
                .help(help)
        };
        pb::KindInfo {
            accepts: vec!["image/".into()],
            fields: describe::fields(vec![
                Param::object(
                    "sizes",
                    "Size",
                    vec![
                        side("width", "Width (px)", "0 or empty: follow the height.")
                            .example(json!(256)),
                        side("height", "Height (px)", "Empty: keep the aspect ratio."),
                    ],
                )
                .list(1, MAX_SIZES as u32)
                .help("One output per size; set width, height or both."),
                Param::enumeration(
                    "fit",
                    "Fit",
                    &[
                        ("contain", "Contain", pb::Fit::Contain as i32),
                        ("cover", "Cover (crop)", pb::Fit::Cover as i32),
                        ("fill", "Fill (stretch)", pb::Fit::Fill as i32),
                    ],
                )
                .default(json!("contain")),
                format_param(),
                quality_param(),
            ]),
            ..describe::kind(
                "Thumbnail",
                "One image (JPEG, PNG, WebP, GIF or TIFF) to resized copies, one per size.",
                "Make thumbnail",
            )
        }
    }

    fn validate(&self, v: Value, inputs: usize) -> Result<Value, Vec<Violation>> {
        crate::validate_one_input(
            v,
            inputs,
            "image.thumbnail takes exactly one input image",
            Params::validate,
        )
    }

    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let params: Params = ctx.params()?;
        let sizes: Vec<forklift_image::Size> = params.sizes.iter().map(|&s| s.into()).collect();
        let fit = forklift_image::Fit::from(params.fit);
        let img = decode_input(ctx, &self.limits, Some((sizes, fit))).await?;
        let total = params.sizes.len() as u32;
        let img = Arc::new(img);
        let format = forklift_image::Format::from(params.format);
        let quality = encoder_quality(params.quality);
        for (i, size) in params.sizes.iter().copied().enumerate() {
            let n = i as u32 + 1;
            ctx.progress(10 + 90 * (n - 1) / total, format!("resizing {n}/{total}"))
                .await;
            let img = img.clone();
            let (bytes, w, h) = ctx
                .blocking(move || {
                    let out = forklift_image::resize(&img, size.into(), fit).map_err(failed)?;
                    let (w, h) = (out.width(), out.height());
                    let bytes = forklift_image::encode(out, format, quality).map_err(failed)?;
                    Ok((bytes, w, h))
                })
                .await?;
            let name = format!("thumb-{n}-{w}x{h}.{}", format.extension());
            ctx.put_output(&name, format.media_type(), bytes.into())
                .await?;
        }
        ctx.progress(100, "done").await;
        Ok(())
    }
}

/// Every `forklift-image` error is about the input file or the requested output, so a
/// retry would fail the same way: the job fails at once, with the library's message.
pub(crate) fn failed(e: forklift_image::Error) -> JobError {
    JobError::permanent(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(width: u32, height: u32) -> Size {
        Size { width, height }
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
    fn out_of_range_values_reach_validation_and_unknown_choices_are_refused() {
        let kind = Thumbnail::new(ImageLimits::default());
        let refused = |v: Value| -> Vec<String> {
            let vs = kind.validate(v, 1).unwrap_err();
            vs.into_iter().map(|v| v.field).collect()
        };
        // As gRPC hands them over: every field, numbers of any size.
        let sizes = json!([{"width": 64, "height": 0}]);
        assert_eq!(
            refused(json!({"sizes": sizes, "fit": "contain", "format": "jpeg", "quality": 1000})),
            ["quality"]
        );
        assert_eq!(
            refused(json!({"sizes": sizes, "fit": 99, "format": "jpeg", "quality": 0})),
            ["fit"]
        );
        let ok = kind
            .validate(
                json!({"sizes": sizes, "fit": "cover", "format": "webp", "quality": 0}),
                1,
            )
            .unwrap();
        assert_eq!(ok["quality"], 85);
    }

    #[test]
    fn image_errors_fail_the_job_at_once_with_their_message() {
        let limits = ImageLimits::default().decoding();
        let err = forklift_image::decode(b"definitely not an image", &limits).unwrap_err();
        let err = failed(err);
        assert!(matches!(err, JobError::Permanent(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the file is not a supported image: use JPEG, PNG, WebP, GIF or TIFF"
        );
    }
}
