#![doc = include_str!("../README.md")]
pub mod data;
pub mod debug;
pub mod describe;
pub mod image;
pub mod image_convert;
pub mod video;

use forklift_engine::Registry;

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
