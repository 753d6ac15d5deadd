//! image.thumbnail end to end: upload, submit, watch, download, decode.

use crate::support::*;
use forklift_rpc::v1 as pb;

#[tokio::test]
async fn thumbnails_at_two_sizes_honour_exif_orientation() {
    let app = TestApp::start().await;
    let c = &app.client;
    // Stored 600×400 landscape, tagged "rotate 90° clockwise": displayed 400×600 portrait,
    // with the stored left (red) half on top.
    let file = c
        .upload("photo.jpg", &test_jpeg(600, 400, Some(6)))
        .await
        .unwrap();
    assert_eq!(file.content_type, "image/jpeg");
    let job = c
        .submit(submit(
            thumbnail_params(
                &[(120, 120), (50, 0)],
                pb::Fit::Contain,
                pb::ImageFormat::Jpeg,
            ),
            &[&file.id],
        ))
        .await
        .unwrap();
    assert_eq!(job.kind, "image.thumbnail");
    assert_eq!(job.state(), pb::JobState::Queued);

    let seen = c.watch_to_end(&job.id).await;
    let done = seen.last().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert!(
        seen.iter().any(|j| j.state() == pb::JobState::Running
            && j.progress_percent > 0
            && j.progress_percent < 100),
        "progress was reported: {seen:#?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].version < w[1].version),
        "versions increase"
    );
    assert_eq!(done.progress_percent, 100);

    let mut dims = Vec::new();
    for out in &done.outputs {
        let (meta, bytes) = c.download(&out.file_id).await.unwrap();
        assert_eq!(meta.source_job_id, job.id);
        assert_eq!(meta.size_bytes as usize, bytes.len());
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        let (w, h) = img.dimensions();
        let top = img.get_pixel(w / 2, h / 5);
        let bottom = img.get_pixel(w / 2, h * 4 / 5);
        assert!(
            top[0] > 150 && top[2] < 100,
            "top is red after rotation: {top:?}"
        );
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "bottom is blue after rotation: {bottom:?}"
        );
        dims.push((out.name.clone(), w, h));
        assert!(
            !bytes.windows(6).any(|w| w == b"Exif\0\0"),
            "metadata is stripped from {}",
            out.name
        );
    }
    assert_eq!(
        dims,
        [
            ("thumb-1-80x120.jpg".to_owned(), 80, 120),
            ("thumb-2-50x75.jpg".to_owned(), 50, 75)
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn cover_png_and_webp_outputs() {
    let app = TestApp::start().await;
    let c = &app.client;
    let file = c
        .upload("photo.jpg", &test_jpeg(300, 200, None))
        .await
        .unwrap();
    for (format, ext) in [
        (pb::ImageFormat::Png, image::ImageFormat::Png),
        (pb::ImageFormat::Webp, image::ImageFormat::WebP),
    ] {
        let job = c
            .submit(submit(
                thumbnail_params(&[(64, 64)], pb::Fit::Cover, format),
                &[&file.id],
            ))
            .await
            .unwrap();
        let done = c.watch_to_end(&job.id).await.pop().unwrap();
        assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
        let (_, bytes) = c.download(&done.outputs[0].file_id).await.unwrap();
        let img = image::load_from_memory_with_format(&bytes, ext).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
    }
    app.stop().await;
}

#[tokio::test]
async fn png_gif_webp_and_tiff_inputs_become_thumbnails() {
    let app = TestApp::start().await;
    let c = &app.client;
    // Left half red, right half blue: the colours must survive each decoder.
    let source = image::RgbImage::from_fn(120, 80, |x, _| {
        if x < 60 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    for (name, format) in [
        ("in.png", image::ImageFormat::Png),
        ("in.gif", image::ImageFormat::Gif),
        ("in.webp", image::ImageFormat::WebP),
        ("in.tiff", image::ImageFormat::Tiff),
    ] {
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(source.clone())
            .write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .unwrap();
        let file = c.upload(name, &bytes).await.unwrap();
        let job = c
            .submit(submit(
                thumbnail_params(&[(60, 0)], pb::Fit::Contain, pb::ImageFormat::Png),
                &[&file.id],
            ))
            .await
            .unwrap();
        let done = c.watch_to_end(&job.id).await.pop().unwrap();
        assert_eq!(done.state(), pb::JobState::Succeeded, "{name}: {done:#?}");
        let (_, out) = c.download(&done.outputs[0].file_id).await.unwrap();
        let img = image::load_from_memory_with_format(&out, image::ImageFormat::Png)
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (60, 40), "{name}");
        let (left, right) = (img.get_pixel(10, 20), img.get_pixel(50, 20));
        assert!(
            left[0] > 150 && left[2] < 100,
            "{name}: left is red: {left:?}"
        );
        assert!(
            right[2] > 150 && right[0] < 100,
            "{name}: right is blue: {right:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn corrupt_image_fails_clearly_and_the_next_job_runs() {
    let app = TestApp::start().await;
    let c = &app.client;
    let mut truncated = test_jpeg(400, 300, None);
    truncated.truncate(truncated.len() / 3);
    let bad = c.upload("broken.jpg", &truncated).await.unwrap();
    let text = c
        .upload("notes.jpg", b"this is not an image at all")
        .await
        .unwrap();
    let good = c.upload("ok.jpg", &test_jpeg(64, 64, None)).await.unwrap();
    let params = || thumbnail_params(&[(32, 32)], pb::Fit::Contain, pb::ImageFormat::Jpeg);

    let job = c.submit(submit(params(), &[&bad.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Failed);
    assert_eq!(done.attempt, 1, "a corrupt file is not retried");
    assert!(
        done.error.contains("truncated or corrupt"),
        "{}",
        done.error
    );
    assert!(done.outputs.is_empty());

    let job = c.submit(submit(params(), &[&text.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Failed);
    assert!(
        done.error.contains("not a supported image"),
        "{}",
        done.error
    );

    let job = c.submit(submit(params(), &[&good.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(
        done.state(),
        pb::JobState::Succeeded,
        "the worker is still healthy"
    );
    app.stop().await;
}

#[tokio::test]
async fn images_over_the_pixel_limit_are_refused() {
    let app = TestApp::start_with(&["--image-max-megapixels", "1"]).await;
    let c = &app.client;
    let params = || thumbnail_params(&[(32, 32)], pb::Fit::Contain, pb::ImageFormat::Jpeg);
    let big = c
        .upload("big.jpg", &test_jpeg(1500, 1000, None))
        .await
        .unwrap();
    let job = c.submit(submit(params(), &[&big.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Failed);
    assert_eq!(done.attempt, 1, "refused for good, not retried");
    assert!(
        done.error.contains("1500×1000") && done.error.contains("limit of 1.0 megapixels"),
        "{}",
        done.error
    );
    // Just under the limit is fine.
    let fits = c
        .upload("fits.jpg", &test_jpeg(1000, 990, None))
        .await
        .unwrap();
    let job = c.submit(submit(params(), &[&fits.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    app.stop().await;
}

/// A PNG of `w`×`h` pixels of noise: it barely compresses, about 3 bytes a pixel.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        // xorshift32
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let [r, g, b, _] = x.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[tokio::test]
async fn images_over_the_byte_limit_are_refused() {
    let app = TestApp::start_with(&["--image-max-input-mb", "1"]).await;
    let c = &app.client;
    let params = || thumbnail_params(&[(32, 32)], pb::Fit::Contain, pb::ImageFormat::Jpeg);
    // Half a megapixel, far within the pixel limit, but over 1 MiB.
    let png = noise_png(800, 600);
    assert!(png.len() > 1024 * 1024, "{} bytes", png.len());
    let big = c.upload("noise.png", &png).await.unwrap();
    let job = c.submit(submit(params(), &[&big.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Failed);
    assert_eq!(done.attempt, 1, "refused for good, not retried");
    assert!(
        done.error.contains(&format!(
            "is {} bytes, above this kind's limit of 1048576 bytes",
            png.len()
        )),
        "{}",
        done.error
    );
    // The same picture, smaller, is fine.
    let small = c.upload("noise.png", &noise_png(400, 300)).await.unwrap();
    let job = c.submit(submit(params(), &[&small.id])).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    app.stop().await;
}
