//! Object storage on a real S3-compatible server: the same behaviour as a local
//! directory, including multipart uploads and the size limit.

use bytes::Bytes;
use forklift_blob::{BlobError, Blobs};
use futures::TryStreamExt;

#[tokio::test]
async fn streams_through_s3_with_a_prefix() {
    let s3 = forklift_testkit::S3::shared();
    let opts = s3.options();
    let opts: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let blobs = Blobs::from_url_with(&format!("s3://{}/forklift", s3.bucket()), &opts).unwrap();
    blobs.ping().await.unwrap();

    // Big enough to take several multipart parts.
    let chunks = || (0..24).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i as u8; 1 << 20])));
    let stored = blobs
        .put_stream("uploads/a", futures::stream::iter(chunks()), 64 << 20)
        .await
        .unwrap();
    assert_eq!(stored.size_bytes, 24 << 20);
    let back: Vec<Bytes> = blobs
        .get_stream("uploads/a")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(back.concat().len(), 24 << 20);
    assert_eq!(blobs.list("uploads").await.unwrap(), ["uploads/a"]);

    let err = blobs
        .put_stream("uploads/b", futures::stream::iter(chunks()), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { .. }));
    assert!(matches!(
        blobs.get_bytes("uploads/b", 10).await,
        Err(BlobError::NotFound(_))
    ));
    blobs.delete("uploads/a").await.unwrap();
    assert!(blobs.list("uploads").await.unwrap().is_empty());
}

#[test]
fn unknown_storage_urls_are_refused() {
    assert!(matches!(
        Blobs::from_url("ftp://x"),
        Err(BlobError::UnsupportedUrl(_))
    ));
}
