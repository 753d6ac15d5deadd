//! `image.thumbnail`: one input image (JPEG, PNG, WebP, GIF's first frame, TIFF) to one
//! or more resized images, EXIF orientation applied, metadata not carried over. The
//! parameters, their validation and their protobuf form live here; decoding, resizing
//! and encoding are `forklift-image`'s.

use crate::describe::{self, Param};
use async_trait::async_trait;
use forklift_engine::{JobCtx, JobError, Kind, Violation, parse_params};
use forklift_rpc::v1::{self as pb, job_params};
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
    /// JPEG quality [`MIN_QUALITY`]-[`MAX_QUALITY`]; 0 means [`DEFAULT_QUALITY`].
    #[serde(default)]
    pub quality: u8,
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
        if self.quality > MAX_QUALITY {
            v.push(Violation::new(
                "quality",
                format!("{MIN_QUALITY} to {MAX_QUALITY} (0 for the default of {DEFAULT_QUALITY})"),
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
                Param::enumeration(
                    "format",
                    "Format",
                    &[
                        ("jpeg", "JPEG", pb::ImageFormat::Jpeg as i32),
                        ("png", "PNG", pb::ImageFormat::Png as i32),
                        ("webp", "WebP", pb::ImageFormat::Webp as i32),
                    ],
                )
                .default(json!("jpeg")),
                Param::integer("quality", "JPEG quality")
                    .range(MIN_QUALITY.into(), MAX_QUALITY.into())
                    .default(json!(DEFAULT_QUALITY))
                    .help("PNG and WebP are lossless and ignore it."),
            ]),
            ..describe::kind(
                "Thumbnail",
                "One image (JPEG, PNG, WebP, GIF or TIFF) to resized copies, one per size.",
                "Make thumbnail",
            )
        }
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
        let limits = self.limits.decoding();
        let sizes: Vec<forklift_image::Size> = params.sizes.iter().map(|&s| s.into()).collect();
        let fit = forklift_image::Fit::from(params.fit);
        let img = ctx
            .blocking(move || {
                forklift_image::decode_for(&bytes, &limits, &sizes, fit).map_err(failed)
            })
            .await?;
        let total = params.sizes.len() as u32;
        let img = Arc::new(img);
        let (format, quality) = (forklift_image::Format::from(params.format), params.quality);
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
fn failed(e: forklift_image::Error) -> JobError {
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
    fn proto_params_map_to_json_and_back() {
        let kind = Thumbnail::new(ImageLimits::default());
        let proto = |fit, format, quality| {
            job_params::Kind::ImageThumbnail(pb::ImageThumbnailParams {
                sizes: vec![
                    pb::ThumbnailSize {
                        width: 64,
                        height: 0,
                    },
                    pb::ThumbnailSize {
                        width: 32,
                        height: 48,
                    },
                ],
                fit,
                format,
                quality,
            })
        };
        let sent = proto(pb::Fit::Cover as i32, pb::ImageFormat::Webp as i32, 70);
        let json = kind.params_from_proto(&sent).unwrap();
        let json = kind.validate(json, 1).unwrap();
        assert_eq!(kind.params_to_proto(&json), Some(sent));
        // Unknown enum values and out-of-range qualities reach validation.
        let bad = kind.params_from_proto(&proto(99, 0, 1000)).unwrap();
        assert!(kind.validate(bad, 1).is_err());
        let bad = kind.params_from_proto(&proto(0, 0, 1000)).unwrap();
        let fields: Vec<_> = kind
            .validate(bad, 1)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["quality"]);
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
