//! One job of every kind, through the web app's JSON API and through the gRPC API, with
//! inputs made here and outputs checked for what they must be.

use crate::cluster::DEADLINE;
use forklift_rpc::v1 as pb;
use forklift_rpc::v1::files_client::FilesClient;
use forklift_rpc::v1::jobs_client::JobsClient;
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
            input: jpeg(120, 80),
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
            input: video(scratch),
            json_params: serde_json::json!({"height": 360}),
            grpc_params: pb::job_params::Kind::VideoTranscode(pb::VideoTranscodeParams {
                height: 360,
            }),
            check: |outs| {
                let info = probe(output(outs, "video.mp4"));
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

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

fn csv() -> Vec<u8> {
    let mut s = String::from("id,name,score\n");
    for i in 1..=CSV_ROWS {
        s += &format!("{i},person {i},{}.5\n", i % 17);
    }
    s.into_bytes()
}

/// One second of ffmpeg's test pattern and a tone, 320×240.
fn video(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("clip.mp4");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=1:size=320x240:rate=25")
        .args(["-f", "lavfi", "-i", "sine=duration=1"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&path)
        .output()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&path).unwrap()
}

fn probe(bytes: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .arg(&path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
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

/// A channel whose calls carry the token.
type Authed = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>;

/// The gRPC API (Files, Jobs) with a bearer API token.
pub struct Grpc {
    files: FilesClient<Authed>,
    jobs: JobsClient<Authed>,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

impl Grpc {
    pub async fn connect(port: u16, token: &str) -> Grpc {
        let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to the gRPC API");
        let bearer = Bearer(format!("Bearer {token}").parse().unwrap());
        Grpc {
            files: FilesClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(8 << 20),
            jobs: JobsClient::with_interceptor(channel, bearer),
        }
    }

    /// Uploads, submits, watches the job to its end, downloads its outputs.
    pub async fn run(&self, case: &Case) -> Done {
        let mut msgs = vec![pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Metadata(pb::FileMetadata {
                name: case.file_name.into(),
                content_type: String::new(),
            })),
        }];
        msgs.extend(case.input.chunks(64 * 1024).map(|c| pb::UploadFileRequest {
            data: Some(pb::upload_file_request::Data::Chunk(c.to_vec())),
        }));
        let file = self
            .files
            .clone()
            .upload_file(futures::stream::iter(msgs))
            .await
            .expect("upload over gRPC")
            .into_inner();
        let job = self
            .jobs
            .clone()
            .submit_job(pb::SubmitJobRequest {
                params: Some(pb::JobParams {
                    kind: Some(case.grpc_params.clone()),
                }),
                input_file_ids: vec![file.id],
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("submit {} over gRPC: {s:?}", case.kind))
            .into_inner();
        let mut stream = self
            .jobs
            .clone()
            .watch_job(pb::WatchJobRequest { id: job.id.clone() })
            .await
            .expect("watch")
            .into_inner();
        let mut last = job;
        let ended = tokio::time::timeout(DEADLINE, async {
            while let Some(j) = stream.message().await.expect("watch item") {
                last = j;
                if matches!(
                    last.state(),
                    pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled
                ) {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ended, Ok(true)),
            "{} job {} did not end in time over gRPC: {last:#?}",
            case.kind,
            last.id
        );
        assert_eq!(
            last.state(),
            pb::JobState::Succeeded,
            "{} over gRPC: {last:#?}",
            case.kind
        );
        let mut outputs = Vec::new();
        for o in &last.outputs {
            outputs.push((o.name.clone(), self.download(&o.file_id).await));
        }
        Done {
            id: last.id,
            outputs,
        }
    }

    async fn download(&self, id: &str) -> Vec<u8> {
        let mut s = self
            .files
            .clone()
            .download_file(pb::DownloadFileRequest { id: id.into() })
            .await
            .expect("download over gRPC")
            .into_inner();
        let mut content = Vec::new();
        while let Some(msg) = s.message().await.expect("download chunk") {
            if let Some(pb::download_file_response::Data::Chunk(c)) = msg.data {
                content.extend(c);
            }
        }
        content
    }
}
