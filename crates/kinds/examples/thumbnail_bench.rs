//! Thumbnails per second for photo-sized JPEGs, full-size against DCT-scaled decoding.
//!
//! Each thumbnail is the `image.thumbnail` kind's work through `forklift_image`: decode,
//! resize to 256 px wide, encode as JPEG at quality 85. The inputs are
//! photo-like 3000×2000 JPEGs at quality 90 (gradients, edges and sensor-like noise,
//! so entropy decoding costs what it does for a photograph), made from a fixed seed.
//!
//! Usage: `cargo run --release -p forklift-kinds --example thumbnail_bench --
//! [images] [threads] [full|scaled|both]` (defaults: 20 images, 1 thread, both paths;
//! one path per run gives each its own peak memory). Each thread thumbnails every image
//! once. Run it under
//! `taskset -c 0` for a one-core figure: the scaled decoder hands colour components to
//! helper threads, which would otherwise borrow other cores.

use forklift_image::{
    DecodeLimits, Fit, Format, Size, decode, decode_for, encode, jpeg_decode_size, resize,
};
use image::metadata::Orientation;
use image::{ImageEncoder, RgbImage};
use std::hint::black_box;
use std::time::Instant;

const WIDTH: u32 = 3000;
const HEIGHT: u32 = 2000;
const THUMB: Size = Size {
    width: 256,
    height: 0,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!(
            "usage: thumbnail_bench [images] [threads] [full|scaled|both]\n       \
             thumbnail_bench photos <dir> [images]\n       \
             thumbnail_bench compare <photos dir> <peer thumbnails dir>"
        );
        std::process::exit(2);
    };
    if args.get(1).map(String::as_str) == Some("compare") {
        let (Some(photos), Some(peer)) = (args.get(2), args.get(3)) else {
            usage()
        };
        compare(photos, peer);
        return;
    }
    if args.get(1).map(String::as_str) == Some("photos") {
        let Some(dir) = args.get(2) else { usage() };
        let images: u64 = match args.get(3) {
            None => 20,
            Some(a) => a.parse().unwrap_or_else(|_| usage()),
        };
        write_photos(dir, images);
        return;
    }
    let number = |i: usize, default: usize| match args.get(i) {
        None => default,
        Some(a) => a.parse().unwrap_or_else(|_| usage()),
    };
    let (images, threads) = (number(1, 20).max(1), number(2, 1).max(1));
    let paths: &[(&str, bool)] = match args.get(3).map(String::as_str) {
        None | Some("both") => &[("full size", false), ("DCT-scaled", true)],
        Some("full") => &[("full size", false)],
        Some("scaled") => &[("DCT-scaled", true)],
        Some(_) => usage(),
    };

    let started = Instant::now();
    let jpegs: Vec<Vec<u8>> = (0..images as u64).map(photo_jpeg).collect();
    let mean_bytes = jpegs.iter().map(Vec::len).sum::<usize>() / jpegs.len();
    let scaled = jpeg_decode_size(
        (WIDTH, HEIGHT),
        Orientation::NoTransforms,
        &[THUMB],
        Fit::Contain,
    );
    eprintln!(
        "{images} JPEGs of {WIDTH}×{HEIGHT}, {:.2} MB each on average, made in {:.1} s; \
         scaled decoding is at {}×{}",
        mean_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        scaled.0,
        scaled.1
    );

    println!("| decoding | threads | images/s | ms/image (per thread) |");
    println!("|---|---:|---:|---:|");
    for &(label, scaled) in paths {
        // Once untimed, so page faults and lazy initialisation are not counted.
        black_box(thumbnail(&jpegs[0], scaled));
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for jpeg in &jpegs {
                        black_box(thumbnail(jpeg, scaled));
                    }
                });
            }
        });
        let seconds = started.elapsed().as_secs_f64();
        let per_second = (images * threads) as f64 / seconds;
        println!(
            "| {label} | {threads} | {per_second:.1} | {:.1} |",
            1000.0 * threads as f64 / per_second
        );
    }
    if paths.len() == 2 {
        // How far the scaled path's thumbnails are from the full-size path's, before
        // JPEG encoding (which would add its own, larger, error to both).
        let (mut sum, mut worst) = (0.0, 0.0f64);
        for jpeg in &jpegs {
            let d = mean_abs_diff(&resized(jpeg, true), &resized(jpeg, false));
            sum += d;
            worst = worst.max(d);
        }
        eprintln!(
            "DCT-scaled against full-size thumbnails: mean absolute difference {:.2} \
             levels (0-255) on average, {worst:.2} at most",
            sum / jpegs.len() as f64
        );
    }
}

/// A thumbnail before encoding.
fn resized(jpeg: &[u8], scaled: bool) -> image::RgbImage {
    let limits = DecodeLimits::default();
    let img = if scaled {
        decode_for(jpeg, &limits, &[THUMB], Fit::Contain)
    } else {
        decode(jpeg, &limits)
    }
    .expect("the benchmark's JPEGs decode");
    resize(&img, THUMB, Fit::Contain)
        .expect("resizing succeeds")
        .into_rgb8()
}

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Compares a peer's thumbnails (`<peer>/photo-<seed>.jpg`, 256 px wide, of the photos
/// in `<photos>`) and this crate's, both as encoded, with the unencoded full-size
/// path's thumbnail of the same photo: the mean absolute difference in levels.
fn compare(photos: &str, peer: &str) {
    let mut names: Vec<_> = std::fs::read_dir(peer)
        .expect("the peer's directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".jpg").then_some(name)
        })
        .collect();
    names.sort();
    let (mut ours_scaled, mut ours_full, mut theirs) = (0.0, 0.0, 0.0);
    for name in &names {
        let photo = std::fs::read(format!("{photos}/{name}")).expect("the photo");
        let reference = resized(&photo, false);
        let decoded = |bytes: &[u8]| image::load_from_memory(bytes).expect("a JPEG").into_rgb8();
        let encoded = |scaled| {
            let limits = DecodeLimits::default();
            let img = if scaled {
                decode_for(&photo, &limits, &[THUMB], Fit::Contain)
            } else {
                decode(&photo, &limits)
            }
            .expect("the photo decodes");
            let out = resize(&img, THUMB, Fit::Contain).expect("resizing succeeds");
            decoded(&encode(out, Format::Jpeg, 85).expect("encoding succeeds"))
        };
        ours_scaled += mean_abs_diff(&encoded(true), &reference);
        ours_full += mean_abs_diff(&encoded(false), &reference);
        let peer = std::fs::read(format!("{peer}/{name}")).expect("the peer's thumbnail");
        theirs += mean_abs_diff(&decoded(&peer), &reference);
    }
    let n = names.len().max(1) as f64;
    println!(
        "mean absolute difference from the full-size decoding's thumbnail before encoding, \
         over {} images, in levels (0-255):",
        names.len()
    );
    println!("| thumbnail | difference |");
    println!("|---|---:|");
    println!(
        "| Forklift, DCT-scaled, JPEG q85 | {:.2} |",
        ours_scaled / n
    );
    println!("| Forklift, full size, JPEG q85 | {:.2} |", ours_full / n);
    println!("| peer, JPEG q85 | {:.2} |", theirs / n);
}

/// Writes the benchmark's inputs as `<dir>/photo-<seed>.jpg`, seeds 0 to `images` - 1:
/// the same files as bench/grpc-load's `photos`, for peers to thumbnail.
fn write_photos(dir: &str, images: u64) {
    std::fs::create_dir_all(dir).expect("create the output directory");
    for seed in 0..images {
        std::fs::write(format!("{dir}/photo-{seed}.jpg"), photo_jpeg(seed)).expect("write a photo");
    }
    println!("wrote {images} JPEGs to {dir}");
}

/// One thumbnail, as the kind makes it; returns the encoded size.
fn thumbnail(jpeg: &[u8], scaled: bool) -> usize {
    let limits = DecodeLimits::default();
    let img = if scaled {
        decode_for(jpeg, &limits, &[THUMB], Fit::Contain)
    } else {
        decode(jpeg, &limits)
    }
    .expect("the benchmark's JPEGs decode");
    let out = resize(&img, THUMB, Fit::Contain).expect("resizing succeeds");
    encode(out, Format::Jpeg, 85)
        .expect("encoding succeeds")
        .len()
}

/// A deterministic photo-like JPEG: a lit gradient, soft blobs, hard-edged bars and
/// per-pixel noise, different for each seed.
fn photo_jpeg(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let tint: [f32; 3] = std::array::from_fn(|_| 0.6 + 0.4 * rng.unit());
    let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            let colour = std::array::from_fn(|_| 120.0 * rng.unit() - 60.0);
            (rng.unit(), rng.unit(), 0.02 + 0.15 * rng.unit(), colour)
        })
        .collect();
    let bars: Vec<(u32, u32, f32)> = (0..40)
        .map(|_| {
            let x = (rng.unit() * WIDTH as f32) as u32;
            (
                x,
                x + 2 + (rng.unit() * 60.0) as u32,
                80.0 * rng.unit() - 40.0,
            )
        })
        .collect();
    let img = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32 / WIDTH as f32, y as f32 / HEIGHT as f32);
        let light = 70.0 + 140.0 * (1.0 - fy) * (0.7 + 0.3 * (fx * 3.0).sin());
        let mut px: [f32; 3] = std::array::from_fn(|c| light * tint[c]);
        for &(bx, by, r, colour) in &blobs {
            let d2 = ((fx - bx) * 1.5).powi(2) + (fy - by).powi(2);
            let weight = (-d2 / (r * r)).exp();
            for c in 0..3 {
                px[c] += colour[c] * weight;
            }
        }
        if y > HEIGHT / 3 {
            for &(x0, x1, shade) in &bars {
                if (x0..x1).contains(&x) {
                    for v in &mut px {
                        *v += shade;
                    }
                }
            }
        }
        let noise = 12.0 * (rng.unit() - 0.5);
        image::Rgb(px.map(|v| (v + noise + 6.0 * (rng.unit() - 0.5)).clamp(0.0, 255.0) as u8))
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .write_image(img.as_raw(), WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)
        .expect("encoding to memory succeeds");
    jpeg
}

/// xorshift64*: enough randomness for pixels, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }
}
