#![doc = include_str!("../README.md")]
pub mod data;
pub mod debug;
pub mod describe;
pub mod image;
pub mod image_convert;
pub mod video;

use forklift_runner::{Registry, Violation, parse_params};

/// Settings the kinds need.
#[derive(Debug, Clone, Default)]
pub struct KindsConfig {
    /// Register the `debug.*` kinds as available (tests and benchmarks only).
    pub debug_kinds: bool,
    /// Limits on untrusted images.
    pub image: image::ImageLimits,
    /// Where ffmpeg is, and video limits.
    pub video: video::VideoConfig,
}

/// Every kind this build knows, configured.
pub fn registry(cfg: &KindsConfig) -> Registry {
    let mut r = Registry::new();
    r.register(image::Thumbnail::new(cfg.image.clone()))
        .register(data::Profile)
        .register(video::Transcode::new(&cfg.video))
        .register(image_convert::Convert::new(cfg.image.clone()))
        .register(debug::Noop::new(cfg.debug_kinds))
        .register(debug::Sleep::new(cfg.debug_kinds))
        .register(debug::Flaky::new(cfg.debug_kinds));
    r
}

/// A kind's `validate` for one input file: the parameters parsed and put through `check`
/// (defaults filled in), every problem named at once — the parameters' first, then the
/// input count's (`one_input` says what the kind takes).
pub fn validate_one_input<P>(
    params: serde_json::Value,
    inputs: usize,
    one_input: &str,
    check: impl FnOnce(P) -> Result<P, Vec<Violation>>,
) -> Result<serde_json::Value, Vec<Violation>>
where
    P: serde::de::DeserializeOwned + serde::Serialize,
{
    let mut violations = Vec::new();
    if inputs != 1 {
        violations.push(Violation::new("input_file_ids", one_input));
    }
    match parse_params::<P>(params).and_then(check) {
        Ok(p) if violations.is_empty() => {
            Ok(serde_json::to_value(p).expect("parameters serialise"))
        }
        Ok(_) => Err(violations),
        Err(mut vs) => {
            vs.append(&mut violations);
            Err(vs)
        }
    }
}
