//! The Kubernetes manifests, run without a cluster: the dev overlay is rendered with
//! kustomize, deploy/launch_plan.py turns it into what each pod would run, and the real
//! binaries are started from that — each with exactly its container's environment
//! (Service names and ports mapped to local ones, each volume a fresh directory) over
//! real PostgreSQL, Redis and S3 servers holding the overlay's credentials. The
//! migration Job runs first; then one job of every kind goes through the web app's JSON
//! API and the jobs API's gRPC, each on the worker Deployment of its queue. The
//! NetworkPolicies are checked against every connection the settings make.
//!
//! Needs kubectl and PyYAML from `scripts/deploy-check.sh` (`just test-manifests`).

mod cluster;
mod jobs;
mod network;
mod plan;
#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

use cluster::{Pod, Servers, container};
use network::Network;
use plan::Plan;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Lays out every pod and localizes its settings (no process started); panics listing
/// every setting that leads nowhere. Returns the pods and their connections.
fn lay_out<'p>(plan: &'p Plan, net: &mut Network<'p>) -> (Vec<Pod>, Vec<network::Connection>) {
    let mut pods = Pod::lay_out(plan, net);
    let mut connections = Vec::new();
    let mut errors = Vec::new();
    for pod in &mut pods {
        match pod.localize(plan, net) {
            Ok(c) => connections.extend(c),
            Err(e) => errors.extend(e),
        }
    }
    assert!(
        errors.is_empty(),
        "settings that would not work in a cluster:\n  {}",
        errors.join("\n  ")
    );
    (pods, connections)
}

#[test]
fn the_network_policies_admit_every_connection_the_settings_make() {
    let plan = Plan::render();
    let mut net = Network::new(&plan);
    Servers::assume(&plan, &mut net);
    let (_pods, mut connections) = lay_out(&plan, &mut net);
    for w in plan.workloads.iter().filter(|w| !w.is_forklift()) {
        for c in &w.containers {
            connections.extend(net.written_connections(w, c));
        }
    }
    connections.extend(
        net.ingress_connections()
            .unwrap_or_else(|e| panic!("{e:?}")),
    );
    let from = |name: &str| {
        connections
            .iter()
            .filter(|c| c.from.as_deref() == Some(name))
            .count()
    };
    // The check must see the connections it is about.
    assert!(from("forklift-web") >= 2, "web → jobs API and PostgreSQL");
    assert!(
        from("forklift-worker-media") >= 3,
        "a worker → PostgreSQL, Redis, S3"
    );
    let denied = network::denied(&plan, &connections);
    assert!(
        denied.is_empty(),
        "the NetworkPolicies would drop:\n  {}",
        denied.join("\n  ")
    );
}

#[test]
fn every_forklift_setting_is_one_its_binary_reads() {
    let plan = Plan::render();
    let mut unknown = Vec::new();
    for w in plan.workloads.iter().filter(|w| w.is_forklift()) {
        let c = container(w);
        let argv = c.argv.as_ref().unwrap();
        let program = cluster::binary(argv[0].rsplit('/').next().unwrap());
        let help = std::process::Command::new(&program)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        let read: BTreeSet<&str> = help
            .split("[env: ")
            .skip(1)
            .filter_map(|s| s.split(['=', ']']).next())
            .collect();
        assert!(read.contains("FORKLIFT_DATABASE_URL"), "{help}");
        for k in c.env.keys().filter(|k| k.starts_with("FORKLIFT_")) {
            if !read.contains(k.as_str()) {
                unknown.push(format!(
                    "{} sets {k}, which {} never reads",
                    w.name,
                    program.display()
                ));
            }
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

/// The dev overlay runs one worker Deployment per queue, named after it.
fn worker_of(queue: &str) -> String {
    format!("forklift-worker-{queue}")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dev_overlay_runs_every_kind_of_job_through_both_apis() {
    let plan = Plan::render();
    let mut net = Network::new(&plan);
    let servers = Servers::start(&plan, &mut net);
    let (mut pods, connections) = lay_out(&plan, &mut net);

    // Storage: every process uses the same s3:// URL; MinIO would accept their keys;
    // the overlay creates that bucket (here the test does, as its Job would).
    let urls: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.env.get("FORKLIFT_STORAGE_URL").cloned())
        .collect();
    let [storage] = &urls.into_iter().collect::<Vec<_>>()[..] else {
        panic!("the pods disagree on FORKLIFT_STORAGE_URL (or none sets it)");
    };
    let bucket = storage
        .strip_prefix("s3://")
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("FORKLIFT_STORAGE_URL={storage}: expected s3://bucket[/prefix]"));
    let (s3, user, password) = servers.s3.as_ref().expect("the dev overlay runs MinIO");
    for w in plan.workloads.iter().filter(|w| w.is_forklift()) {
        let env = &container(w).env;
        if env.contains_key("FORKLIFT_STORAGE_URL") {
            assert_eq!(
                (
                    env.get("AWS_ACCESS_KEY_ID"),
                    env.get("AWS_SECRET_ACCESS_KEY")
                ),
                (Some(user), Some(password)),
                "{}: S3 keys other than MinIO's root credentials",
                w.name
            );
        }
    }
    let makes_bucket = plan
        .workloads
        .iter()
        .filter(|w| !w.is_forklift() && w.kind == "Job")
        .flat_map(|w| &w.containers)
        .map(|c| c.written_argv().join(" "))
        .any(|cmd| cmd.contains("mc mb") && cmd.contains(&format!("/{bucket}")));
    assert!(
        makes_bucket,
        "no Job of the overlay creates bucket {bucket}"
    );
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{}/{bucket}", s3.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket {bucket}: {r:?}");

    // The migration Job first, then every Deployment until its probes pass.
    let is_job = |p: &Pod| plan.workload(&p.workload).kind == "Job";
    for pod in pods.iter_mut().filter(|p| is_job(p)) {
        pod.run_to_success().await;
    }
    assert!(
        pods.iter().any(|p| p.workload == "forklift-migrate"),
        "the overlay has the migration Job"
    );
    for pod in pods.iter_mut().filter(|p| !is_job(p)) {
        pod.start();
    }
    for pod in pods.iter_mut().filter(|p| !is_job(p)) {
        let w = plan.workload(&pod.workload);
        pod.wait_ready(container(w)).await;
    }

    // A user with an API token, made in the accounts tables as an admin would.
    let web = pods.iter().find(|p| p.workload == "forklift-web").unwrap();
    let db = forklift_db::Db::open(&web.env["FORKLIFT_DATABASE_URL"])
        .await
        .expect("open the database with the web app's URL");
    let (store, accounts) = (
        forklift_store::Store::new(db.clone()),
        forklift_accounts::Accounts::new(db),
    );
    let (_, token) = forklift_accounts::create_user_with_token(
        &accounts,
        "manifests@example.com",
        forklift_domain::Role::User,
        "manifests",
    )
    .await
    .unwrap();

    // In through the Ingresses, as users and programs come.
    let ingress = |name: &str| {
        let ing = plan.ingresses.iter().find(|i| i.name == name).unwrap();
        let b = &ing.backends[0];
        net.backend(&ing.namespace, &b.service, &b.port)
            .unwrap_or_else(|e| panic!("Ingress {name}: {e}"))
    };
    let json_api = jobs::JsonApi {
        base: format!("http://127.0.0.1:{}", ingress("forklift-web").local),
        token: token.clone(),
        http,
    };
    let grpc = jobs::Grpc::connect(ingress("forklift-grpc").local, &token).await;

    let scratch = tempfile::tempdir().unwrap();
    let mut contents = BTreeMap::new(); // sha256 → what
    for case in jobs::cases(scratch.path()) {
        contents.insert(sha256(&case.input), format!("{} input", case.kind));
        for (api, done) in [
            ("JSON API", json_api.run(&case).await),
            ("gRPC", grpc.run(&case).await),
        ] {
            (case.check)(&done.outputs);
            for (name, bytes) in &done.outputs {
                contents.insert(sha256(bytes), format!("{} output {name}", case.kind));
            }
            let job = store
                .get_job(forklift_domain::JobId::from_str(&done.id).unwrap())
                .await
                .unwrap()
                .unwrap();
            let worker = job.worker.unwrap_or_default();
            let pod = pods
                .iter()
                .find(|p| worker.starts_with(&format!("{}-", p.hostname)))
                .map(|p| p.workload.as_str());
            assert_eq!(
                pod,
                Some(worker_of(case.queue).as_str()),
                "{} (over the {api}) ran on worker {worker:?}",
                case.kind
            );
        }
    }

    // Each worker Deployment consumes its own queue and no other.
    let workers = store.workers_seen_since(0).await.unwrap();
    for case in jobs::cases(scratch.path()) {
        let name = worker_of(case.queue);
        let pod = pods.iter().find(|p| p.workload == name).unwrap();
        let rows: Vec<_> = workers
            .iter()
            .filter(|r| r.name.starts_with(&format!("{}-", pod.hostname)))
            .collect();
        assert!(
            rows.len() == 1 && rows[0].queues == [case.queue],
            "{name} should consume queue {} alone; it reports {rows:?}",
            case.queue
        );
    }

    // The files are in the storage (bucket and prefix), and on no pod's disk.
    // Read as an operator would: with the storage settings of a pod that uses it.
    let api = pods
        .iter()
        .find(|p| p.workload == "forklift-jobs-api")
        .unwrap();
    let options: Vec<(String, String)> = api
        .env
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("AWS_")?.to_ascii_lowercase(), v.clone())))
        .collect();
    let options: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let blobs = forklift_blob::Blobs::from_url_with(storage, &options).unwrap();
    let keys = blobs.list("").await.expect("list the bucket");
    let mut stored = BTreeSet::new();
    for key in &keys {
        let bytes = blobs.get_bytes(key, 64 << 20).await.unwrap();
        stored.insert(sha256(&bytes));
    }
    let missing: Vec<&String> = contents
        .iter()
        .filter(|(sha, _)| !stored.contains(*sha))
        .map(|(_, what)| what)
        .collect();
    assert!(
        missing.is_empty(),
        "not in {storage}: {missing:?}; it holds {keys:?}"
    );
    for pod in &pods {
        for f in pod.volume_files() {
            let sha = sha256(&std::fs::read(&f).unwrap());
            assert!(
                !contents.contains_key(&sha),
                "{} keeps {} on its own disk at {}: extracted processes share files only through storage",
                pod.workload,
                contents[&sha],
                f.display()
            );
        }
    }

    // Scale-in or rollout: SIGTERM, and every process stops cleanly; what the others
    // connect to (the jobs API) last.
    store.close().await;
    let needed = |p: &Pod| {
        connections
            .iter()
            .any(|c| c.to == network::Dest::Workload(p.workload.clone()))
    };
    pods.sort_by_key(|p| needed(p));
    for pod in pods.iter_mut().filter(|p| !is_job(p)) {
        let status = pod.terminate().await;
        assert!(
            status.success(),
            "{} stopped with {status}; its output:\n{}",
            pod.workload,
            pod.log_tail()
        );
    }
}
