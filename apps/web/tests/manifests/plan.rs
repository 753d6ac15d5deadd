//! The launch plan: the dev overlay rendered by kustomize and flattened by
//! deploy/launch_plan.py into what each pod would run.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The overlay under test: the one that runs PostgreSQL, Redis and MinIO inside.
pub const OVERLAY: &str = "deploy/k8s/overlays/dev";

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Deserialize)]
pub struct Plan {
    /// Namespace name → its labels.
    pub namespaces: BTreeMap<String, Labels>,
    pub workloads: Vec<Workload>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
}

#[derive(Debug, Deserialize)]
pub struct Workload {
    /// Deployment, StatefulSet, DaemonSet, Job or CronJob.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub pod_labels: Labels,
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
}

#[derive(Debug, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// As written, after `$(VAR)` expansion (None: the image's default).
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    /// Forklift's images only: the command line the container runs.
    pub argv: Option<Vec<String>>,
    /// The environment the process sees: the image's ENV (Forklift's images), envFrom,
    /// env, every reference resolved.
    pub env: BTreeMap<String, String>,
    pub ports: Vec<ContainerPort>,
    pub volume_mounts: Vec<VolumeMount>,
    /// startup, readiness, liveness → the probe as rendered.
    pub probes: BTreeMap<String, Value>,
    /// Forklift's images only: what the Dockerfile target puts in the image.
    pub forklift_image: Option<Image>,
}

#[derive(Debug, Deserialize)]
pub struct ContainerPort {
    pub name: Option<String>,
    #[serde(rename = "containerPort")]
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "TCP".into()
}

#[derive(Debug, Deserialize)]
pub struct VolumeMount {
    pub name: String,
    #[serde(rename = "mountPath")]
    pub mount_path: String,
}

#[derive(Debug, Deserialize)]
pub struct Image {
    /// Paths the image has files at (COPY destinations), e.g. `/usr/local/bin/forklift-jobs`.
    pub files: Vec<String>,
    /// Debian packages installed in it, e.g. `ffmpeg`.
    pub packages: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Deserialize)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    /// A number or the name of a container port.
    #[serde(rename = "targetPort")]
    pub target_port: Value,
    pub protocol: String,
}

#[derive(Debug, Deserialize)]
pub struct Ingress {
    pub name: String,
    pub namespace: String,
    /// The Services it sends traffic to, with their port (a number or a port name).
    pub backends: Vec<Backend>,
}

#[derive(Debug, Deserialize)]
pub struct Backend {
    pub service: String,
    pub port: Value,
}

#[derive(Debug, Deserialize)]
pub struct NetworkPolicy {
    pub name: String,
    pub namespace: String,
    pub spec: PolicySpec,
}

#[derive(Debug, Deserialize)]
pub struct PolicySpec {
    #[serde(rename = "podSelector", default)]
    pub pod_selector: Selector,
    #[serde(rename = "policyTypes", default)]
    pub policy_types: Vec<String>,
    #[serde(default)]
    pub ingress: Vec<PolicyRule>,
    #[serde(default)]
    pub egress: Vec<PolicyRule>,
}

/// An ingress (`from`) or egress (`to`) rule. Absent peers or ports mean all.
#[derive(Debug, Deserialize)]
pub struct PolicyRule {
    pub from: Option<Vec<Peer>>,
    pub to: Option<Vec<Peer>>,
    pub ports: Option<Vec<PolicyPort>>,
}

#[derive(Debug, Deserialize)]
pub struct Peer {
    #[serde(rename = "podSelector")]
    pub pod_selector: Option<Selector>,
    #[serde(rename = "namespaceSelector")]
    pub namespace_selector: Option<Selector>,
    #[serde(rename = "ipBlock")]
    pub ip_block: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct PolicyPort {
    /// A number or the name of a container port; absent: every port.
    pub port: Option<Value>,
    #[serde(rename = "endPort")]
    pub end_port: Option<u16>,
    #[serde(default = "tcp")]
    pub protocol: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Selector {
    #[serde(rename = "matchLabels", default)]
    pub match_labels: Labels,
    #[serde(rename = "matchExpressions", default)]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl Selector {
    /// Whether `labels` are selected (an empty selector selects everything).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => v.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    op => panic!("unknown selector operator {op}"),
                }
            })
    }
}

impl Plan {
    /// Renders [`OVERLAY`] with kustomize and turns it into a plan.
    pub fn render() -> Plan {
        let root = repo_root();
        // kubectl and Python with PyYAML, installed once by deploy-check.
        let out = run(Command::new(root.join("scripts/deploy-check.sh")).arg("--tools-only"));
        let out = String::from_utf8(out).unwrap();
        let tools = PathBuf::from(out.lines().last().expect("the tools' directory"));
        let (kubectl, python) = (tools.join("bin/kubectl"), tools.join("bin/python"));
        let dir = tempfile::tempdir().unwrap();
        let rendered = dir.path().join("rendered.yaml");
        run(Command::new(kubectl)
            .arg("kustomize")
            .arg(root.join(OVERLAY))
            .arg("-o")
            .arg(&rendered));
        let json = run(Command::new(python)
            .arg(root.join("deploy/launch_plan.py"))
            .arg("--dockerfile")
            .arg(root.join("deploy/docker/Dockerfile"))
            .arg(&rendered));
        serde_json::from_slice(&json).expect("launch_plan.py prints a plan")
    }

    /// The workload called `name`.
    pub fn workload(&self, name: &str) -> &Workload {
        self.workloads
            .iter()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("the overlay has no workload {name}"))
    }

    /// The labels of namespace `ns` (kubernetes.io/metadata.name at least).
    pub fn namespace_labels(&self, ns: &str) -> Labels {
        self.namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| Labels::from([("kubernetes.io/metadata.name".into(), ns.into())]))
    }
}

impl Workload {
    /// Whether it runs Forklift's own images (and so Forklift's binaries).
    pub fn is_forklift(&self) -> bool {
        self.containers.iter().any(|c| c.forklift_image.is_some())
    }
}

impl Container {
    /// The image's repository without registry path and tag, e.g. `postgres`.
    pub fn image_name(&self) -> &str {
        let repo = self.image.split('@').next().unwrap_or_default();
        let last = repo.rsplit('/').next().unwrap_or_default();
        last.split(':').next().unwrap_or_default()
    }

    /// The command line as written (command, then args), for images not our own.
    pub fn written_argv(&self) -> Vec<String> {
        let mut v = self.command.clone().unwrap_or_default();
        v.extend(self.args.clone().unwrap_or_default());
        v
    }

    /// The container port called `name`.
    pub fn named_port(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// Runs a command to success and returns its stdout.
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
