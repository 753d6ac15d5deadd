#![doc = include_str!("../README.md")]

mod dc_jpeg;
mod decode;
mod encode;
mod error;
mod resize;
#[cfg(test)]
mod testing;

pub use decode::{DecodeLimits, Decoded, decode, decode_for, jpeg_decode_size, jpeg_is_complete};
pub use encode::{Format, encode};
pub use error::Error;
pub use resize::{Fit, Size, resize, target_dims};
