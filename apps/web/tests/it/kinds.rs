//! data.profile, video.transcode and image.convert end to end: real CSVs, a real
//! ffmpeg, real images.

use crate::support::*;
use crate::web::Web;
use forklift_rpc::v1 as pb;
use reqwest::StatusCode;
use tonic::Code;

fn profile_params(delimiter: &str) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::DataProfile(pb::DataProfileParams {
            delimiter: delimiter.into(),
            header: 0,
        })),
    }
}

fn transcode_params(height: u32) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::VideoTranscode(
            pb::VideoTranscodeParams { height },
        )),
    }
}

async fn output(c: &Client, job: &pb::Job, name: &str) -> Vec<u8> {
    let out = job
        .outputs
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no {name} in {job:#?}"));
    c.download(&out.file_id).await.unwrap().1
}

/// Uploads `bytes` as `name`, profiles it with the detected dialect and returns the
/// job in its final state.
async fn profiled(c: &Client, name: &str, bytes: &[u8]) -> pb::Job {
    let file = c.upload(name, bytes).await.unwrap();
    let job = c
        .submit(submit(profile_params(""), &[&file.id]))
        .await
        .unwrap();
    c.watch_to_end(&job.id).await.pop().unwrap()
}

#[tokio::test]
async fn a_csv_is_profiled_into_json_and_html_reports() {
    let app = TestApp::start().await;
    let c = &app.client;
    let mut csv = String::from("\u{feff}id,amount,active,joined,note\n");
    for i in 1..=500 {
        let note = if i % 50 == 0 {
            "\"multi\nline, quoted\"".to_owned()
        } else {
            format!("note {i}")
        };
        let amount = if i % 10 == 0 {
            String::new()
        } else {
            format!("{}.5", i % 97)
        };
        csv += &format!(
            "{i},{amount},{},2024-01-{:02},{note}\n",
            i % 2 == 0,
            i % 28 + 1
        );
    }
    csv += "501,1.5,true\n"; // ragged: three fields of five
    let done = profiled(c, "people.csv", csv.as_bytes()).await;
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");

    let report: serde_json::Value =
        serde_json::from_slice(&output(c, &done, "report.json").await).unwrap();
    assert_eq!(report["schema"], "forklift.data.profile/v1");
    assert_eq!(report["rows"], 500);
    assert_eq!(report["bad_rows"]["count"], 1);
    assert_eq!(
        report["bad_rows"]["examples"][0]["line"], 512,
        "the ragged row's line, counting quoted newlines"
    );
    let columns = report["columns"].as_array().unwrap();
    let types: Vec<(&str, &str)> = columns
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "integer"),
            ("amount", "float"),
            ("active", "boolean"),
            ("joined", "date"),
            ("note", "string")
        ]
    );
    assert_eq!(columns[0]["min"], 1);
    assert_eq!(columns[0]["max"], 500);
    assert_eq!(columns[1]["nulls"], 50);
    let html = String::from_utf8(output(c, &done, "report.html").await).unwrap();
    assert!(
        html.contains("<svg") && html.contains("amount"),
        "the HTML report has charts"
    );
    assert!(!html.contains("<script"), "no script in the report");
    app.stop().await;
}

#[tokio::test]
async fn files_that_are_not_csv_fail_clearly_and_bad_params_are_refused() {
    let app = TestApp::start().await;
    let c = &app.client;
    let gz = c
        .upload(
            "data.csv",
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4],
        )
        .await
        .unwrap();
    let job = c
        .submit(submit(profile_params(""), &[&gz.id]))
        .await
        .unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Failed);
    assert!(
        done.error.contains("not CSV") && done.error.contains("gzip"),
        "{}",
        done.error
    );
    assert_eq!(done.attempt, 1);

    // A file cut off inside a quoted field: profiled, with the broken last record
    // reported by its line instead of failing the job; and the worker carries on.
    let done = profiled(c, "cut.csv", b"id,note\n1,fine\n2,\"never closed\n3,more").await;
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    let report: serde_json::Value =
        serde_json::from_slice(&output(c, &done, "report.json").await).unwrap();
    let bad = &report["bad_rows"];
    assert_eq!(bad["by_kind"]["unterminated_quote"], 1, "{bad}");
    assert_eq!(
        bad["examples"][0]["line"], 3,
        "the record starts on line 3: {bad}"
    );
    assert_eq!(report["rows"], 1, "the good row is profiled: {report}");

    let err = c
        .submit(submit(profile_params("x"), &[&gz.id]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["params.data_profile.delimiter"]);
    let err = c
        .submit(submit(transcode_params(480), &[&gz.id]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["params.video_transcode.height"]);
    app.stop().await;
}

/// Uploads a video and submits a transcode of it.
async fn transcode(c: &Client, video: &[u8], height: u32) -> pb::Job {
    let file = c.upload("clip.mp4", video).await.unwrap();
    c.submit(submit(transcode_params(height), &[&file.id]))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_video_is_transcoded_without_upscaling_and_gets_a_poster() {
    let app = TestApp::start().await;
    let c = &app.client;
    let dir = tempfile::tempdir().unwrap();
    let job = transcode(c, &test_video(dir.path(), 3, "320x240"), 720).await;
    let seen = c.watch_to_end(&job.id).await;
    let done = seen.last().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert!(
        seen.iter()
            .any(|j| j.progress_percent > 0 && j.progress_percent < 100),
        "progress seen"
    );
    let info = probe_video(&output(c, done, "video.mp4").await);
    let streams = info["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["height"], 240, "never upscaled");
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"));
    let duration: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 3.0).abs() < 0.3, "duration {duration}");
    let poster = image::load_from_memory_with_format(
        &output(c, done, "poster.jpg").await,
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    assert_eq!(poster.height(), 240);

    let broken = c
        .upload("broken.mp4", &test_video(dir.path(), 1, "160x120")[..2000])
        .await
        .unwrap();
    let job = c
        .submit(submit(transcode_params(360), &[&broken.id]))
        .await
        .unwrap();
    let failed = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(failed.state(), pb::JobState::Failed);
    assert!(
        failed.error.contains("not a video ffmpeg can read"),
        "{}",
        failed.error
    );
    assert!(failed.error.len() < 300, "condensed: {}", failed.error);
    // The worker is none the worse: the next video goes through.
    let job = transcode(c, &test_video(dir.path(), 1, "160x120"), 360).await;
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    app.stop().await;
}

/// ffmpeg processes working on files under `dir`.
fn ffmpeg_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("ffmpeg") && c.contains(&needle))
        .collect()
}

#[tokio::test]
async fn cancelling_a_video_job_leaves_no_ffmpeg_running() {
    let app = TestApp::start().await;
    let c = &app.client;
    let dir = tempfile::tempdir().unwrap();
    let job = transcode(c, &test_video(dir.path(), 60, "1280x720"), 720).await;
    c.watch_until(&job.id, |j| j.progress_message == "transcoding")
        .await;
    assert!(
        !ffmpeg_under(app.data_dir()).is_empty(),
        "ffmpeg is running before the cancel"
    );
    c.cancel(&job.id).await.unwrap();
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Cancelled);
    assert_eq!(
        ffmpeg_under(app.data_dir()),
        Vec::<String>::new(),
        "no ffmpeg left"
    );
    app.stop().await;
}

/// Submitting a transcode is refused with FAILED_PRECONDITION naming the kind and `tool`.
async fn video_is_unavailable(c: &Client, tool: &str) {
    let file = c.upload("clip.mp4", b"whatever").await.unwrap();
    let err = c
        .submit(submit(transcode_params(360), &[&file.id]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let msg = err.message();
    assert!(
        msg.contains("video.transcode") && msg.contains(tool),
        "{msg}"
    );
}

#[tokio::test]
async fn without_ffmpeg_video_jobs_are_unavailable_and_the_rest_works() {
    let app = TestApp::start_with(&["--ffmpeg", "/nonexistent/ffmpeg"]).await;
    let c = &app.client;
    video_is_unavailable(c, "ff").await;
    let img = c.upload("a.jpg", &test_jpeg(40, 40, None)).await.unwrap();
    let job = c
        .submit(submit(
            thumbnail_params(&[(8, 8)], pb::Fit::Cover, pb::ImageFormat::Jpeg),
            &[&img.id],
        ))
        .await
        .unwrap();
    assert_eq!(
        c.watch_to_end(&job.id).await.pop().unwrap().state(),
        pb::JobState::Succeeded
    );
    app.stop().await;
}

#[tokio::test]
async fn the_ffprobe_setting_is_used_on_its_own() {
    // Only ffprobe is configured (ffmpeg comes from the PATH): a wrong ffprobe must make
    // video jobs unavailable, not be ignored for want of an ffmpeg setting.
    let app = TestApp::start_with(&["--ffprobe", "/nonexistent/ffprobe"]).await;
    video_is_unavailable(&app.client, "ffprobe").await;
    app.stop().await;
}

fn convert_params(format: pb::ImageFormat, quality: u32) -> pb::JobParams {
    pb::JobParams {
        kind: Some(pb::job_params::Kind::ImageConvert(pb::ImageConvertParams {
            format: format as i32,
            quality,
        })),
    }
}

/// A PNG `w`×`h` with an alpha channel.
fn test_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 90, 200]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

#[tokio::test]
async fn an_image_is_converted_at_its_size_and_bad_parameters_are_named() {
    let app = TestApp::start().await;
    let c = &app.client;
    let file = c.upload("drawing.png", &test_png(90, 60)).await.unwrap();
    let job = c
        .submit(submit(
            convert_params(pb::ImageFormat::Jpeg, 70),
            &[&file.id],
        ))
        .await
        .unwrap();
    assert_eq!(job.kind, "image.convert");
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    assert_eq!(done.params, Some(convert_params(pb::ImageFormat::Jpeg, 70)));
    let names: Vec<&str> = done.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["converted.jpg"]);
    let (out, bytes) = c.download(&done.outputs[0].file_id).await.unwrap();
    assert_eq!(out.content_type, "image/jpeg");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (90, 60));

    // UNSPECIFIED and 0 are the defaults; the stored job says which they were.
    let job = c
        .submit(submit(
            convert_params(pb::ImageFormat::Unspecified, 0),
            &[&file.id],
        ))
        .await
        .unwrap();
    assert_eq!(job.params, Some(convert_params(pb::ImageFormat::Jpeg, 85)));
    c.watch_to_end(&job.id).await;

    // What the proto carries but the kind does not allow, the kind refuses by name.
    let mut bad = convert_params(pb::ImageFormat::Png, 500);
    let err = c
        .submit(submit(bad.clone(), &[&file.id]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(violated_fields(&err), ["params.image_convert.quality"]);
    if let Some(pb::job_params::Kind::ImageConvert(p)) = &mut bad.kind {
        (p.format, p.quality) = (9, 0);
    }
    let err = c.submit(submit(bad, &[&file.id])).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["params.image_convert.format"]);
    app.stop().await;
}

/// The file page offers the conversion from its description alone, and the form's job
/// applies EXIF orientation as thumbnails do.
#[tokio::test]
async fn the_file_page_converts_an_image_from_the_kinds_description() {
    let app = TestApp::start().await;
    let web = Web::new(app.http_addr);
    web.signup("convert@example.com", "a long enough password")
        .await;
    // Stored 60×40, tagged "rotate 90° clockwise": displayed 40×60.
    let file = web.upload("photo.jpg", test_jpeg(60, 40, Some(6))).await;
    let page_path = format!("/files/{file}");
    let page = web.text(&page_path).await;
    for expected in [
        r#"<legend id="image_convert-title">Convert</legend>"#,
        r#"<select id="image_convert-format" name="format">"#,
        r#"id="image_convert-quality" name="quality" min="1" max="100" value="85""#,
        ">Convert</button>",
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    let r = web
        .post(
            &page_path,
            &format!("{page_path}/jobs"),
            &[
                ("kind", "image.convert"),
                ("format", "webp"),
                ("quality", ""),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let location = r.headers()[reqwest::header::LOCATION].to_str().unwrap();
    let job = location.strip_prefix("/jobs/").unwrap().to_owned();
    let events = web
        .events_until_final(&format!("/jobs/{job}/events"), None)
        .await;
    assert_eq!(events.last().unwrap()["state"], "succeeded", "{events:?}");
    let page = web.text(&format!("/jobs/{job}")).await;
    assert!(page.contains("converted.webp"), "{page}");
    let href = page
        .split("class=\"download\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a download link")
        .to_owned();
    let bytes = web.get(&href).await.bytes().await.unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).unwrap();
    assert_eq!((img.width(), img.height()), (40, 60));
    app.stop().await;
}
