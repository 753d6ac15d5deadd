//! Writes the photo-like 3000×2000 JPEGs (quality 90) of Forklift's thumbnail benchmark
//! (`crates/kinds/examples/thumbnail_bench.rs`) to files, byte for byte the same
//! images for the same seeds, so that sharp thumbnails exactly what Forklift does.
//!
//! Usage: `photos <dir> [count]` (default 20): writes `<dir>/photo-<seed>.jpg`, seeds 0…count-1.

use image::ImageEncoder;
use image::RgbImage;

const WIDTH: u32 = 3000;
const HEIGHT: u32 = 2000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: photos <dir> [count]");
        std::process::exit(2);
    };
    let count: u64 = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(20);
    std::fs::create_dir_all(dir).expect("create the output directory");
    for seed in 0..count {
        let path = format!("{dir}/photo-{seed}.jpg");
        std::fs::write(&path, photo_jpeg(seed)).expect("write a photo");
    }
    println!("wrote {count} JPEGs to {dir}");
}

// The generator below is a verbatim copy of thumbnail_bench.rs.

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
