//! `image.convert`: one input image (JPEG, PNG, WebP, GIF's first frame, TIFF) to the
//! same image as JPEG, PNG or WebP, at its own size, EXIF orientation applied as for
//! thumbnails, metadata not carried over. One output: `converted.<ext>`.

use crate::describe;
use crate::image::{
    Format, ImageLimits, check_quality, decode_input, encoder_quality, failed, format_param,
    quality_param,
};
use async_trait::async_trait;
use forklift_rpc::v1 as pb;
use forklift_runner::{JobCtx, JobError, Kind, Violation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Parameters of `image.convert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Output format.
    #[serde(default)]
    pub format: Format,
    /// JPEG quality, as for `image.thumbnail`; 0 means the default.
    #[serde(default)]
    pub quality: u32,
}

impl Params {
    /// Checks ranges and fills in defaults.
    pub fn validate(mut self) -> Result<Self, Vec<Violation>> {
        let mut v = Vec::new();
        self.quality = check_quality(self.quality, &mut v);
        if v.is_empty() { Ok(self) } else { Err(v) }
    }
}

/// The `image.convert` kind.
pub struct Convert {
    limits: ImageLimits,
}

impl Convert {
    /// The kind with these input limits (the same as thumbnails').
    pub fn new(limits: ImageLimits) -> Self {
        Self { limits }
    }
}

#[async_trait]
impl Kind for Convert {
    fn name(&self) -> &'static str {
        "image.convert"
    }
    fn queue(&self) -> &'static str {
        "media"
    }
    fn proto_field(&self) -> &'static str {
        "image_convert"
    }

    fn describe(&self) -> pb::KindInfo {
        pb::KindInfo {
            accepts: vec!["image/".into()],
            fields: describe::fields(vec![format_param(), quality_param()]),
            ..describe::kind(
                "Convert",
                "One image (JPEG, PNG, WebP, GIF or TIFF) to JPEG, PNG or WebP at its own size.",
                "Convert",
            )
        }
    }

    fn validate(&self, v: Value, inputs: usize) -> Result<Value, Vec<Violation>> {
        crate::validate_one_input(
            v,
            inputs,
            "image.convert takes exactly one input image",
            Params::validate,
        )
    }

    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let params: Params = ctx.params()?;
        let img = decode_input(ctx, &self.limits, None).await?;
        let format = forklift_image::Format::from(params.format);
        let quality = encoder_quality(params.quality);
        ctx.progress(50, "encoding").await;
        let bytes = ctx
            .blocking(move || forklift_image::encode(img.image, format, quality).map_err(failed))
            .await?;
        let name = format!("converted.{}", format.extension());
        ctx.put_output(&name, format.media_type(), bytes.into())
            .await?;
        ctx.progress(100, "done").await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind() -> Convert {
        Convert::new(ImageLimits::default())
    }

    fn refused(v: Value, inputs: usize) -> Vec<String> {
        let vs = kind().validate(v, inputs).unwrap_err();
        vs.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn validation_fills_defaults() {
        assert_eq!(
            kind().validate(json!({}), 1).unwrap(),
            json!({"format": "jpeg", "quality": 85})
        );
        assert_eq!(
            kind()
                .validate(json!({"format": "webp", "quality": 40}), 1)
                .unwrap(),
            json!({"format": "webp", "quality": 40})
        );
    }

    #[test]
    fn validation_names_what_is_wrong() {
        // As gRPC hands them over: numbers of any size, enum numbers that are no choice.
        assert_eq!(
            refused(json!({"format": "png", "quality": 1000}), 2),
            ["quality", "input_file_ids"]
        );
        assert_eq!(refused(json!({"format": 7, "quality": 0}), 1), ["format"]);
        assert_eq!(refused(json!({"format": "gif"}), 1), ["format"]);
    }
}
