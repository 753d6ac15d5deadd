//! Files over gRPC: streaming round trip, limits, ownership, deletion.

use crate::support::*;
use forklift_rpc::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn upload_download_list_delete() {
    let app = TestApp::start().await;
    let c = &app.client;
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let f = c.upload("data.bin", &content).await.unwrap();
    assert_eq!(f.size_bytes, 3_000_000);
    assert_eq!(f.content_type, "application/octet-stream");
    let (meta, back) = c.download(&f.id).await.unwrap();
    assert_eq!(meta, f);
    assert!(back == content, "content round-trips");
    let got = c.get_file(&f.id).await.unwrap();
    assert_eq!(got, f);
    let list = c.list_files().await.unwrap();
    assert_eq!(list, vec![f.clone()]);
    c.delete_file(&f.id).await.unwrap();
    let err = c.download(&f.id).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_and_bad_names_are_refused() {
    let app = TestApp::start_with(&["--max-upload-mb", "1"]).await;
    let c = &app.client;
    let err = c
        .upload("big.bin", &vec![7u8; 1024 * 1024 + 1])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("upload limit"), "{}", err.message());
    let err = c.upload("../etc/passwd", b"x").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A client that gives up mid-upload ends its stream with a message without data:
    // what arrived is refused, not stored as a shorter file.
    let msgs = vec![
        pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Metadata(pb::FileMetadata {
                name: "half.bin".into(),
                content_type: String::new(),
            })),
        },
        pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Chunk(vec![1u8; 1000])),
        },
        pb::UploadFileRequest { data: None },
    ];
    let err = c
        .files
        .clone()
        .upload_file(futures::stream::iter(msgs))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("abandoned"), "{}", err.message());

    let list = c.list_files().await.unwrap();
    assert!(list.is_empty(), "nothing stored");
    app.stop().await;
}

#[tokio::test]
async fn another_user_sees_nothing_of_mine() {
    let app = TestApp::start().await;
    let a = &app.client;
    let b = app.new_user("b@example.com").await;
    let file = a.upload("a.jpg", &test_jpeg(40, 40, None)).await.unwrap();
    let job = a
        .submit(submit(
            thumbnail_params(&[(8, 8)], pb::Fit::Cover, pb::ImageFormat::Jpeg),
            &[&file.id],
        ))
        .await
        .unwrap();
    let done = a.watch_to_end(&job.id).await.pop().unwrap();
    let output = &done.outputs[0].file_id;

    for id in [&file.id, output] {
        assert_eq!(b.download(id).await.unwrap_err().code(), Code::NotFound);
        let err = b.get_file(id).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = b.delete_file(id).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    assert_eq!(b.get(&job.id).await.unwrap_err().code(), Code::NotFound);
    let err = b
        .jobs
        .clone()
        .watch_job(pb::WatchJobRequest { id: job.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = b.cancel(&job.id).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = b.retry(&job.id).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = b
        .submit(submit(
            thumbnail_params(&[(8, 8)], pb::Fit::Cover, pb::ImageFormat::Jpeg),
            &[&file.id],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "cannot use my file as input");
    let listed = b.list_jobs(pb::ListJobsRequest::default()).await.unwrap();
    assert!(listed.jobs.is_empty());
    let listed = b.list_files().await.unwrap();
    assert!(listed.is_empty());
    // Still mine.
    assert!(a.download(output).await.is_ok());
    app.stop().await;
}

/// Uploads `bytes` named `name` with the media type `content_type`.
async fn upload_typed(
    c: &Client,
    name: &str,
    content_type: &str,
) -> Result<pb::File, tonic::Status> {
    let msgs = vec![
        pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Metadata(pb::FileMetadata {
                name: name.into(),
                content_type: content_type.into(),
            })),
        },
        pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Chunk(b"x".to_vec())),
        },
    ];
    c.files
        .clone()
        .upload_file(futures::stream::iter(msgs))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn names_that_disguise_themselves_and_made_up_media_types_are_refused() {
    let app = TestApp::start().await;
    let c = &app.client;
    // A right-to-left override (U+202E) makes "invoice<RLO>gpj.exe" show as "invoiceexe.jpg".
    for name in [
        "invoice\u{202E}gpj.exe",
        "a\u{200B}b.png",
        "\u{2066}x.csv",
        "x\u{FEFF}.jpg",
    ] {
        let err = upload_typed(c, name, "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name:?}");
        assert_eq!(violated_fields(&err), ["metadata.name"], "{name:?}");
    }
    for content_type in [
        &"a".repeat(200),
        "text/html; charset=utf-8",
        "image",
        "image/",
        "image/png\r\nx-evil: 1",
    ] {
        let err = upload_typed(c, "ok.png", content_type).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{content_type:?}");
        assert_eq!(violated_fields(&err), ["metadata.content_type"]);
    }
    let f = upload_typed(c, "naïve café.png", "Image/PNG")
        .await
        .unwrap();
    assert_eq!(
        (f.name.as_str(), f.content_type.as_str()),
        ("naïve café.png", "image/png")
    );
    assert!(
        app.stored_keys("uploads").await.len() == 1,
        "only the good one is stored"
    );
    app.stop().await;
}
