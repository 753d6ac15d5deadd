//! One job of every kind, through the web app's JSON API and through the gRPC API, with
//! inputs made here and outputs checked for what they must be.

use crate::support::{Client, DEADLINE, probe_video, test_jpeg, test_video};
use forklift_rpc::v1 as pb;
use std::time::{Duration, Instant};

/// A job kind's test: its queue, an input and parameters, and what its outputs must be.
pub struct Case {
    pub kind: &'static str,
    pub queue: &'static str,
    pub file_name: &'static str,
    pub input: Vec<u8>,
    pub json_params: serde_json::Value,
    pub grpc_params: pb::job_params::Kind,
    pub check: fn(&[(String, Vec<u8>)]),
}

/// A finished job: its id and its outputs (name, content).
pub struct Done {
    pub id: String,
    pub outputs: Vec<(String, Vec<u8>)>,
}

const CSV_ROWS: usize = 50;

/// image.thumbnail, data.profile and video.transcode.
pub fn cases(scratch: &std::path::Path) -> Vec<Case> {
    vec![
        Case {
            kind: "image.thumbnail",
            queue: "media",
            file_name: "photo.jpg",
            input: test_jpeg(120, 80, None),
            json_params: serde_json::json!({"sizes": [{"width": 64, "height": 64}]}),
            grpc_params: pb::job_params::Kind::ImageThumbnail(pb::ImageThumbnailParams {
                sizes: vec![pb::ThumbnailSize {
                    width: 64,
                    height: 64,
                }],
                ..Default::default()
            }),
            check: |outs| {
                assert!(!outs.is_empty(), "thumbnails");
                for (name, bytes) in outs {
                    let img = image::load_from_memory(bytes)
                        .unwrap_or_else(|e| panic!("{name} is no image: {e}"));
                    assert!(img.width() <= 64 && img.height() <= 64, "{name}: {img:?}");
                    assert!(img.width() > 0 && img.height() > 0, "{name}");
                }
            },
        },
        Case {
            kind: "data.profile",
            queue: "data",
            file_name: "scores.csv",
            input: csv(),
            json_params: serde_json::json!({}),
            grpc_params: pb::job_params::Kind::DataProfile(pb::DataProfileParams::default()),
            check: |outs| {
                let report: serde_json::Value = serde_json::from_slice(output(outs, "report.json"))
                    .expect("report.json is JSON");
                assert_eq!(report["schema"], "forklift.data.profile/v1", "{report}");
                assert_eq!(report["rows"], CSV_ROWS, "{report}");
                let names: Vec<&str> = report["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].as_str().unwrap())
                    .collect();
                assert_eq!(names, ["id", "name", "score"]);
                let html = String::from_utf8(output(outs, "report.html").to_vec()).unwrap();
                assert!(html.contains("<svg") && html.contains("score"), "{html}");
            },
        },
        Case {
            kind: "video.transcode",
            queue: "video",
            file_name: "clip.mp4",
            input: test_video(scratch, 1, "320x240"),
            json_params: serde_json::json!({"height": 360}),
            grpc_params: pb::job_params::Kind::VideoTranscode(pb::VideoTranscodeParams {
                height: 360,
            }),
            check: |outs| {
                let info = probe_video(output(outs, "video.mp4"));
                let streams = info["streams"].as_array().expect("ffprobe streams");
                let v = streams
                    .iter()
                    .find(|s| s["codec_type"] == "video")
                    .expect("a video stream");
                assert_eq!(v["codec_name"], "h264");
                assert_eq!(v["height"], 240, "never upscaled");
                let poster = image::load_from_memory(output(outs, "poster.jpg")).unwrap();
                assert_eq!(poster.height(), 240);
            },
        },
    ]
}

fn output<'a>(outs: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    outs.iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_slice())
        .unwrap_or_else(|| {
            let names: Vec<&String> = outs.iter().map(|(n, _)| n).collect();
            panic!("no {name} among {names:?}")
        })
}

fn csv() -> Vec<u8> {
    let mut s = String::from("id,name,score\n");
    for i in 1..=CSV_ROWS {
        s += &format!("{i},person {i},{}.5\n", i % 17);
    }
    s.into_bytes()
}

/// The web app's JSON API (`/api/v1`) with a bearer API token.
pub struct JsonApi {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl JsonApi {
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn json(&self, r: reqwest::RequestBuilder, want: u16) -> serde_json::Value {
        let r = r.send().await.expect("the web app answers");
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, want, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Uploads, submits, waits for the job to end, downloads its outputs.
    pub async fn run(&self, case: &Case) -> Done {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(case.input.clone()).file_name(case.file_name),
        );
        let file = self
            .json(
                self.req(reqwest::Method::POST, "/api/v1/files")
                    .multipart(form),
                201,
            )
            .await;
        let body = serde_json::json!({
            "kind": case.kind,
            "params": case.json_params,
            "input_file_ids": [file["id"]],
        });
        let job = self
            .json(
                self.req(reqwest::Method::POST, "/api/v1/jobs").json(&body),
                201,
            )
            .await;
        let id = job["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + DEADLINE;
        let job = loop {
            let job = self
                .json(
                    self.req(reqwest::Method::GET, &format!("/api/v1/jobs/{id}")),
                    200,
                )
                .await;
            if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
                break job;
            }
            assert!(
                Instant::now() < deadline,
                "{} job {id} did not end in time: {job:#}",
                case.kind
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(
            job["state"], "succeeded",
            "{} over the JSON API: {job:#}",
            case.kind
        );
        let mut outputs = Vec::new();
        for o in job["outputs"].as_array().unwrap() {
            let path = format!("/api/v1/files/{}/content", o["file_id"].as_str().unwrap());
            let r = self.req(reqwest::Method::GET, &path).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "download {path}");
            outputs.push((
                o["name"].as_str().unwrap().to_owned(),
                r.bytes().await.unwrap().to_vec(),
            ));
        }
        Done { id, outputs }
    }
}

/// The gRPC API (Files, Jobs) with a bearer API token.
pub struct Grpc(Client);

impl Grpc {
    pub async fn connect(port: u16, token: &str) -> Grpc {
        Grpc(Client::connect(([127, 0, 0, 1], port).into(), Some(token)).await)
    }

    /// Uploads, submits, watches the job to its end, downloads its outputs.
    pub async fn run(&self, case: &Case) -> Done {
        let c = &self.0;
        let file = c
            .upload(case.file_name, &case.input)
            .await
            .expect("upload over gRPC");
        let job = c
            .submit(pb::SubmitJobRequest {
                params: Some(pb::JobParams {
                    kind: Some(case.grpc_params.clone()),
                }),
                input_file_ids: vec![file.id],
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("submit {} over gRPC: {s:?}", case.kind));
        let last = c.watch_to_end(&job.id).await.pop().expect("the job");
        assert_eq!(
            last.state(),
            pb::JobState::Succeeded,
            "{} over gRPC: {last:#?}",
            case.kind
        );
        let mut outputs = Vec::new();
        for o in &last.outputs {
            let (_, bytes) = c.download(&o.file_id).await.expect("download over gRPC");
            outputs.push((o.name.clone(), bytes));
        }
        Done {
            id: last.id,
            outputs,
        }
    }
}
