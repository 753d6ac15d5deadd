//! `Jobs.ListKinds`, and what the web app builds from it alone: the file page's
//! forms, the JSON API's parameter checks and the OpenAPI parameter schemas.

use crate::support::{Client, TestApp, test_jpeg};
use crate::web::Web;
use forklift_rpc::v1 as pb;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn the_jobs_service_describes_its_kinds_and_the_web_app_follows_the_description() {
    let app = TestApp::start().await;
    // Public like the contract: no credentials needed.
    let anonymous = Client::connect(app.grpc_addr, None).await;
    let kinds = anonymous
        .jobs
        .clone()
        .list_kinds(pb::ListKindsRequest {})
        .await
        .unwrap()
        .into_inner()
        .kinds;
    let names: Vec<&str> = kinds.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "data.profile",
            "debug.flaky",
            "debug.noop",
            "debug.sleep",
            "image.convert",
            "image.thumbnail",
            "video.transcode"
        ]
    );
    let thumb = kinds.iter().find(|k| k.name == "image.thumbnail").unwrap();
    assert_eq!(
        (
            thumb.queue.as_str(),
            thumb.params_field.as_str(),
            thumb.available
        ),
        ("media", "image_thumbnail", true)
    );
    assert_eq!(thumb.accepts, ["image/"]);
    let sizes = &thumb.fields[0];
    assert_eq!(
        (sizes.name.as_str(), sizes.min_items, sizes.max_items),
        ("sizes", 1, 8)
    );
    assert_eq!(
        (sizes.fields[0].name.as_str(), sizes.fields[0].maximum),
        ("width", Some(8192))
    );
    let quality = thumb.fields.iter().find(|f| f.name == "quality").unwrap();
    assert_eq!((quality.minimum, quality.maximum), (Some(1), Some(100)));
    assert_eq!(quality.default_json, "85");
    let debug = kinds.iter().find(|k| k.name == "debug.sleep").unwrap();
    assert!(debug.available, "the tests enable debug kinds");

    // The form is the description's: the limit the kind enforces, not another one.
    let web = Web::new(app.http_addr);
    web.signup("kinds@example.com", "a long enough password")
        .await;
    let file = web.upload("photo.jpg", test_jpeg(64, 48, None)).await;
    let page = web
        .get(&format!("/files/{file}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"name="width" min="0" max="8192" value="256""#),
        "{page}"
    );
    assert!(
        page.contains(r#"<option value="contain" selected>Contain</option>"#),
        "{page}"
    );
    assert!(page.contains(">Make thumbnail</button>"), "{page}");
    assert!(
        !page.contains("Profile this CSV"),
        "a JPEG suggests no data profile"
    );

    // The JSON API: types and choices are checked from the description, ranges by the
    // kind in the jobs service; both are named as the JSON names them.
    let token = web.create_token("kinds").await;
    let submit = |params: Value| {
        web.http
            .post(web.url("/api/v1/jobs"))
            .bearer_auth(&token)
            .json(&json!({"kind": "image.thumbnail", "params": params, "input_file_ids": [file]}))
            .send()
    };
    let fields = |body: Value| -> Vec<(String, String)> {
        body["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["field"].as_str().unwrap().to_owned(),
                    f["description"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let r = submit(json!({"sizes": [{"width": 64}], "fit": "squash"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(r.json().await.unwrap()),
        [(
            "params.fit".to_owned(),
            r#"must be one of "contain", "cover", "fill""#.to_owned()
        )]
    );
    let r = submit(json!({"sizes": [{"width": 9000}]})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(r.json().await.unwrap()),
        [(
            "params.sizes[0].width".to_owned(),
            "at most 8192".to_owned()
        )]
    );
    let r = submit(json!({"sizes": [{"width": 64}], "format": "png"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let job: Value = r.json().await.unwrap();
    assert_eq!(
        job["params"],
        json!({"sizes": [{"width": 64, "height": 0}], "fit": "contain", "format": "png", "quality": 85})
    );

    // The OpenAPI document carries each kind's parameters.
    let spec: Value = web.get("/api/v1/openapi.json").await.json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    let params = &schemas["ImageThumbnailParams"];
    assert_eq!(params["properties"]["quality"]["maximum"], 100, "{params}");
    assert_eq!(params["properties"]["sizes"]["maxItems"], 8, "{params}");
    assert_eq!(
        params["properties"]["fit"]["enum"],
        json!(["contain", "cover", "fill"])
    );
    assert_eq!(
        schemas["VideoTranscodeParams"]["properties"]["height"]["enum"],
        json!([360, 720, 1080])
    );
    let one_of: Vec<&str> = schemas["NewJob"]["properties"]["params"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["$ref"].as_str().unwrap())
        .collect();
    assert!(
        one_of.contains(&"#/components/schemas/DataProfileParams"),
        "{one_of:?}"
    );
    app.stop().await;
}
