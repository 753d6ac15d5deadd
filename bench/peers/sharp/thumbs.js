// S6 for sharp: thumbnails per second of the photo-like 3000×2000 JPEGs that Forklift's
// thumbnail benchmark uses (written by bench/grpc-load's `photos`): each decoded,
// resized to 256 px wide (Lanczos3, sharp's default; JPEG shrink-on-load as sharp
// always does) and encoded as JPEG quality 85.
//
// Usage: node thumbs.js <dir> <streams> [--exact-shrink] [--out <dir>]
//   streams = 1: one image at a time with sharp.concurrency(1) (run it with
//   UV_THREADPOOL_SIZE=1 and under `taskset -c 0` for one core);
//   streams = N: N images in flight, sharp's default libvips threads.
//   --out <dir>: also writes each thumbnail there under its photo's name, untimed
//   (for thumbnail_bench's `compare`).
// Every stream thumbnails every image once (as thumbnail_bench's threads do). Prints
// one JSON line: images, seconds, images_per_s.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const sharp = require('sharp');

// --exact-shrink: fastShrinkOnLoad off, so that JPEG shrink-on-load keeps at least
// twice the target size (here ¼ scale, 750×500) before Lanczos3: a reference for a
// decode at the next larger scale.
const fastShrinkOnLoad = !process.argv.includes('--exact-shrink');

async function thumbnail(buf) {
  return sharp(buf).resize({ width: 256, fastShrinkOnLoad }).jpeg({ quality: 85 }).toBuffer();
}

async function main() {
  const dir = process.argv[2];
  const streams = Number(process.argv[3] || 1);
  // Results must not come from libvips' operation cache.
  sharp.cache(false);
  if (streams === 1) sharp.concurrency(1);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort();
  const jpegs = files.map((f) => fs.readFileSync(path.join(dir, f)));
  // Once untimed (lazy initialisation, page faults), as thumbnail_bench does.
  await thumbnail(jpegs[0]);
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: streams }, async () => {
    for (const jpeg of jpegs) await thumbnail(jpeg);
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const images = jpegs.length * streams;
  const out = process.argv.indexOf('--out');
  if (out > 0) {
    fs.mkdirSync(process.argv[out + 1], { recursive: true });
    for (const [i, f] of files.entries()) {
      fs.writeFileSync(path.join(process.argv[out + 1], f), await thumbnail(jpegs[i]));
    }
  }
  console.log(JSON.stringify({
    images, seconds, images_per_s: images / seconds,
    sharp: sharp.versions.sharp, vips: sharp.versions.vips, concurrency: sharp.concurrency(),
  }));
}
main().catch((e) => { console.error(e); process.exit(1); });
