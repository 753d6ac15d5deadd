//! The cluster network, as far as the manifests decide it: Service names resolve to the
//! pods their selector picks, a Service port leads through its targetPort to a container
//! port, and that port to the local port of whatever stands in for the pod here. And the
//! connections each workload's settings make, for the NetworkPolicy check.

use crate::plan::{Container, Labels, Plan, Workload};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a connection to a Service lands.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub workload: String,
    /// The pod's port (after the Service's targetPort).
    pub container_port: u16,
    /// The local port the stand-in for that pod listens on.
    pub local: u16,
}

/// A connection some workload's settings make.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The workload making it (None: from outside the overlay, e.g. the ingress controller).
    pub from: Option<String>,
    /// What makes it, e.g. `FORKLIFT_DATABASE_URL` or `Ingress forklift-web`.
    pub what: String,
    pub to: Dest,
    /// The destination pod's port (what NetworkPolicies see), or the external port.
    pub port: u16,
    pub protocol: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Dest {
    Workload(String),
    /// The cluster DNS (pods labelled k8s-app=kube-dns in kube-system).
    Dns,
    External(String),
}

/// Service resolution over the plan, with the local ports things are served on.
pub struct Network<'p> {
    pub plan: &'p Plan,
    /// (workload, container port) → the local port its stand-in listens on.
    served: BTreeMap<(String, u16), u16>,
}

impl<'p> Network<'p> {
    pub fn new(plan: &'p Plan) -> Self {
        Self {
            plan,
            served: BTreeMap::new(),
        }
    }

    /// Records that `workload`'s `container_port` is served on local port `local`.
    pub fn serve(&mut self, workload: &str, container_port: u16, local: u16) {
        self.served
            .insert((workload.to_owned(), container_port), local);
    }

    /// What `host:port` means to a pod in namespace `ns`: Ok(None) if `host` is not a
    /// Service name; an error if it is one but leads nowhere.
    pub fn resolve(&self, ns: &str, host: &str, port: u16) -> Result<Option<Endpoint>, String> {
        let Some(svc) = self.plan.services.iter().find(|s| {
            let short = s.namespace == ns && host == s.name;
            let long = [
                format!("{}.{}", s.name, s.namespace),
                format!("{}.{}.svc", s.name, s.namespace),
                format!("{}.{}.svc.cluster.local", s.name, s.namespace),
            ];
            short || long.iter().any(|l| l == host)
        }) else {
            return Ok(None);
        };
        let sp = svc
            .ports
            .iter()
            .find(|p| p.port == port && p.protocol == "TCP")
            .ok_or_else(|| {
                let have: Vec<u16> = svc.ports.iter().map(|p| p.port).collect();
                format!("Service {} has no port {port} (it has {have:?})", svc.name)
            })?;
        let selected: Vec<&Workload> = self
            .plan
            .workloads
            .iter()
            .filter(|w| {
                w.namespace == svc.namespace
                    && !svc.selector.is_empty()
                    && svc
                        .selector
                        .iter()
                        .all(|(k, v)| w.pod_labels.get(k) == Some(v))
            })
            .collect();
        let w = match selected.as_slice() {
            [w] => *w,
            [] => {
                return Err(format!(
                    "Service {} selects no pods (selector {:?})",
                    svc.name, svc.selector
                ));
            }
            many => {
                let names: Vec<&str> = many.iter().map(|w| w.name.as_str()).collect();
                return Err(format!(
                    "Service {} selects pods of several workloads: {names:?}",
                    svc.name
                ));
            }
        };
        let container_port = match &sp.target_port {
            serde_json::Value::Number(n) => n.as_u64().unwrap() as u16,
            serde_json::Value::String(name) => w
                .containers
                .iter()
                .find_map(|c| c.named_port(name))
                .ok_or_else(|| {
                    format!(
                        "Service {} port {port} targets port {name:?}, which no container of {} declares",
                        svc.name, w.name
                    )
                })?,
            other => return Err(format!("Service {}: targetPort {other}", svc.name)),
        };
        let local = *self
            .served
            .get(&(w.name.clone(), container_port))
            .ok_or_else(|| {
                format!(
                    "Service {} port {port} leads to port {container_port} of {}, where nothing listens",
                    svc.name, w.name
                )
            })?;
        Ok(Some(Endpoint {
            workload: w.name.clone(),
            container_port,
            local,
        }))
    }

    /// Where an Ingress backend (Service and port number or name) leads.
    pub fn backend(
        &self,
        ns: &str,
        service: &str,
        port: &serde_json::Value,
    ) -> Result<Endpoint, String> {
        let svc = self
            .plan
            .services
            .iter()
            .find(|s| s.namespace == ns && s.name == service)
            .ok_or_else(|| format!("no Service {service}"))?;
        let number = match port {
            serde_json::Value::String(name) => svc
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.port)
                .ok_or_else(|| format!("Service {service} has no port named {name:?}"))?,
            n => n.as_u64().ok_or_else(|| format!("port {n}"))? as u16,
        };
        self.resolve(ns, service, number)?
            .ok_or_else(|| format!("no Service {service}"))
    }

    /// The connections the ingress controller makes: one per Ingress backend.
    pub fn ingress_connections(&self) -> Result<Vec<Connection>, Vec<String>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for ing in &self.plan.ingresses {
            for b in &ing.backends {
                match self.backend(&ing.namespace, &b.service, &b.port) {
                    Ok(e) => out.push(Connection {
                        from: None,
                        what: format!("Ingress {}", ing.name),
                        to: Dest::Workload(e.workload),
                        port: e.container_port,
                        protocol: "TCP",
                    }),
                    Err(e) => errors.push(format!("Ingress {}: {e}", ing.name)),
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// A host and port inside a setting's value, and where they sit in it.
struct Address {
    start: usize,
    end: usize,
    host: String,
    port: u16,
}

/// Network schemes whose authority is a host (s3://bucket, file://, sqlite:// are not).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" | "postgresql" => Some(5432),
        "redis" | "rediss" => Some(6379),
        _ => None,
    }
}

/// The address a value names: the host of a URL with a network scheme, or `host:port`.
fn address(value: &str) -> Option<Address> {
    if let Some(i) = value.find("://") {
        let scheme = &value[..i];
        let default = default_port(&scheme.to_ascii_lowercase())?;
        let rest = i + 3;
        let end = value[rest..]
            .find(['/', '?', '#'])
            .map_or(value.len(), |e| rest + e);
        let start = value[rest..end].rfind('@').map_or(rest, |a| rest + a + 1);
        let hostport = &value[start..end];
        return Some(match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => Address {
                start,
                end,
                host: h.to_owned(),
                port: p.parse().ok()?,
            },
            _ => Address {
                start,
                end,
                host: hostport.to_owned(),
                port: default,
            },
        });
    }
    let (h, p) = value.rsplit_once(':')?;
    let host_like = !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '[' || c == ']');
    let port = p.parse().ok()?;
    host_like.then(|| Address {
        start: 0,
        end: value.len(),
        host: h.to_owned(),
        port,
    })
}

/// Whether a host is a name only the cluster's DNS could answer (one label, or *.svc...).
fn cluster_name(host: &str) -> bool {
    let one_label = !host.contains(['.', ':', '[']);
    one_label || host.ends_with(".svc") || host.ends_with(".cluster.local")
}

/// A Forklift container's settings as they must be for its process here: volumes
/// mapped to local directories, listen addresses to local ports, Service addresses to
/// the local ports of what serves them.
pub struct Localized {
    pub env: BTreeMap<String, String>,
    pub connections: Vec<Connection>,
}

/// Where a pod's volumes and listening ports are here.
pub struct PodLayout {
    /// Mount path → local directory, longest first.
    pub volumes: Vec<(String, PathBuf)>,
    /// Container port → local port, for every `0.0.0.0:<port>` the settings listen on.
    pub listen: BTreeMap<u16, u16>,
}

/// The container port of a listen address on every interface (`0.0.0.0:P`, `[::]:P`).
pub fn listen_port(value: &str) -> Option<u16> {
    let p = value
        .strip_prefix("0.0.0.0:")
        .or_else(|| value.strip_prefix("[::]:"))?;
    p.parse().ok()
}

impl Network<'_> {
    /// Rewrites a Forklift container's environment for a local run, and lists the
    /// connections it makes. Errors name the variable.
    pub fn localize(
        &self,
        w: &Workload,
        c: &Container,
        layout: &PodLayout,
    ) -> Result<Localized, Vec<String>> {
        let mut env = BTreeMap::new();
        let mut connections = Vec::new();
        let mut errors = Vec::new();
        for (k, v) in &c.env {
            let mut value = v.clone();
            if let Some((mount, local)) = layout
                .volumes
                .iter()
                .find(|(m, _)| v == m || v.starts_with(&format!("{m}/")))
            {
                value = format!("{}{}", local.display(), &v[mount.len()..]);
            } else if v.starts_with('/') {
                if !std::path::Path::new(v).is_file() {
                    errors.push(format!(
                        "{k}={v}: outside the container's volumes (its root filesystem is read-only)"
                    ));
                }
            } else if let Some(p) = listen_port(v) {
                value = format!("127.0.0.1:{}", layout.listen[&p]);
            } else if let Some(a) = address(v) {
                match self.resolve(&w.namespace, &a.host, a.port) {
                    Ok(Some(e)) => {
                        value = format!("{}127.0.0.1:{}{}", &v[..a.start], e.local, &v[a.end..]);
                        connections.push(Connection {
                            from: Some(w.name.clone()),
                            what: k.clone(),
                            to: Dest::Workload(e.workload),
                            port: e.container_port,
                            protocol: "TCP",
                        });
                    }
                    // The pod itself: no other pod listens there.
                    Ok(None) if ["127.0.0.1", "localhost", "[::1]"].contains(&a.host.as_str()) => {
                        errors.push(format!(
                            "{k}={v}: the loopback interface, unreachable from other pods"
                        ))
                    }
                    Ok(None) if cluster_name(&a.host) => errors.push(format!(
                        "{k}={v}: {} is no Service of the overlay, and a pod cannot resolve it",
                        a.host
                    )),
                    Ok(None) => connections.push(Connection {
                        from: Some(w.name.clone()),
                        what: k.clone(),
                        to: Dest::External(a.host.clone()),
                        port: a.port,
                        protocol: "TCP",
                    }),
                    Err(e) => errors.push(format!("{k}={v}: {e}")),
                }
            }
            env.insert(k.clone(), value);
        }
        if connections
            .iter()
            .any(|c| matches!(c.to, Dest::Workload(_)))
        {
            connections.push(dns(&w.name));
        }
        if errors.is_empty() {
            Ok(Localized { env, connections })
        } else {
            Err(errors
                .into_iter()
                .map(|e| format!("{} container {}: {e}", w.name, c.name))
                .collect())
        }
    }

    /// Connections a container not of Forklift's makes, from the URLs in its settings
    /// and command line (e.g. the bucket Job's `mc alias set local http://...`).
    pub fn written_connections(&self, w: &Workload, c: &Container) -> Vec<Connection> {
        let argv = c.written_argv();
        let words = c
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(argv.iter().flat_map(|a| {
                a.split_whitespace()
                    .filter(|t| t.contains("://"))
                    .map(|t| ("command line".to_owned(), t.trim_matches('"').to_owned()))
                    .collect::<Vec<_>>()
            }));
        let mut out: Vec<Connection> = words
            .filter_map(|(what, v)| {
                let a = address(&v)?;
                let e = self.resolve(&w.namespace, &a.host, a.port).ok()??;
                Some(Connection {
                    from: Some(w.name.clone()),
                    what,
                    to: Dest::Workload(e.workload),
                    port: e.container_port,
                    protocol: "TCP",
                })
            })
            .collect();
        if !out.is_empty() {
            out.push(dns(&w.name));
        }
        out
    }
}

fn dns(from: &str) -> Connection {
    Connection {
        from: Some(from.to_owned()),
        what: "Service names".into(),
        to: Dest::Dns,
        port: 53,
        protocol: "UDP",
    }
}

/// A pod as NetworkPolicies see it.
struct PodView {
    ns: String,
    ns_labels: Labels,
    labels: Labels,
    /// (name, port, protocol) of its container ports.
    named_ports: Vec<(String, u16, String)>,
}

impl PodView {
    fn of(plan: &Plan, w: &Workload) -> Self {
        PodView {
            ns: w.namespace.clone(),
            ns_labels: plan.namespace_labels(&w.namespace),
            labels: w.pod_labels.clone(),
            named_ports: w
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .filter_map(|p| Some((p.name.clone()?, p.container_port, p.protocol.clone())))
                .collect(),
        }
    }

    fn kube_dns() -> Self {
        let l = |k: &str, v: &str| Labels::from([(k.to_owned(), v.to_owned())]);
        PodView {
            ns: "kube-system".into(),
            ns_labels: l("kubernetes.io/metadata.name", "kube-system"),
            labels: l("k8s-app", "kube-dns"),
            named_ports: vec![
                ("dns".into(), 53, "UDP".into()),
                ("dns-tcp".into(), 53, "TCP".into()),
            ],
        }
    }

    /// ingress-nginx's controller, where the Ingresses' traffic comes from.
    fn ingress_controller() -> Self {
        let l = |k: &str, v: &str| Labels::from([(k.to_owned(), v.to_owned())]);
        PodView {
            ns: "ingress-nginx".into(),
            ns_labels: l("kubernetes.io/metadata.name", "ingress-nginx"),
            labels: l("app.kubernetes.io/name", "ingress-nginx"),
            named_ports: vec![],
        }
    }
}

fn types(p: &crate::plan::NetworkPolicy) -> Vec<&str> {
    if p.spec.policy_types.is_empty() {
        let mut t = vec!["Ingress"];
        if !p.spec.egress.is_empty() {
            t.push("Egress");
        }
        t
    } else {
        p.spec.policy_types.iter().map(String::as_str).collect()
    }
}

/// Whether a rule's peers include `other` (None: the destination is outside the cluster).
fn peers_match(
    peers: &Option<Vec<crate::plan::Peer>>,
    policy_ns: &str,
    other: Option<&PodView>,
) -> bool {
    let Some(peers) = peers.as_ref().filter(|p| !p.is_empty()) else {
        return true;
    };
    peers.iter().any(|peer| {
        if peer.ip_block.is_some() {
            // CIDRs are for addresses outside the cluster; pod addresses are not known here.
            return other.is_none();
        }
        let Some(o) = other else { return false };
        let ns_ok = match &peer.namespace_selector {
            Some(sel) => sel.matches(&o.ns_labels),
            None => o.ns == policy_ns,
        };
        ns_ok
            && peer
                .pod_selector
                .as_ref()
                .is_none_or(|s| s.matches(&o.labels))
    })
}

fn ports_match(
    ports: &Option<Vec<crate::plan::PolicyPort>>,
    port: u16,
    protocol: &str,
    dest: Option<&PodView>,
) -> bool {
    let Some(ports) = ports.as_ref().filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|pp| {
        pp.protocol == protocol
            && match &pp.port {
                None => true,
                Some(serde_json::Value::Number(n)) => {
                    let n = n.as_u64().unwrap() as u16;
                    pp.end_port.map_or(port == n, |e| (n..=e).contains(&port))
                }
                Some(serde_json::Value::String(name)) => dest.is_some_and(|d| {
                    d.named_ports
                        .iter()
                        .any(|(nm, p, pr)| nm == name && *p == port && pr == protocol)
                }),
                Some(_) => false,
            }
    })
}

/// The connections the NetworkPolicies would drop, each explained.
pub fn denied(plan: &Plan, connections: &[Connection]) -> Vec<String> {
    let mut out = Vec::new();
    for c in connections {
        let src = c.from.as_ref().map(|n| PodView::of(plan, plan.workload(n)));
        let src_view = src.unwrap_or_else(PodView::ingress_controller);
        let dst = match &c.to {
            Dest::Workload(n) => Some(PodView::of(plan, plan.workload(n))),
            Dest::Dns => Some(PodView::kube_dns()),
            Dest::External(_) => None,
        };
        let from = c.from.as_deref().unwrap_or("the ingress controller");
        let to = match &c.to {
            Dest::Workload(n) => n.clone(),
            Dest::Dns => "kube-dns".into(),
            Dest::External(h) => h.clone(),
        };
        let what = format!("{from} → {to} port {}/{} ({})", c.port, c.protocol, c.what);
        // Egress: the policies of the source's namespace that select it (ours only).
        if c.from.is_some() {
            let selecting: Vec<_> = plan
                .network_policies
                .iter()
                .filter(|p| {
                    p.namespace == src_view.ns
                        && types(p).contains(&"Egress")
                        && p.spec.pod_selector.matches(&src_view.labels)
                })
                .collect();
            let ok = selecting.is_empty()
                || selecting.iter().any(|p| {
                    p.spec.egress.iter().any(|r| {
                        peers_match(&r.to, &p.namespace, dst.as_ref())
                            && ports_match(&r.ports, c.port, c.protocol, dst.as_ref())
                    })
                });
            if !ok {
                let names: Vec<&str> = selecting.iter().map(|p| p.name.as_str()).collect();
                out.push(format!("{what}: no egress rule of {names:?} allows it"));
            }
        }
        // Ingress: the policies of the destination's namespace that select it.
        if let Some(d) = &dst {
            let selecting: Vec<_> = plan
                .network_policies
                .iter()
                .filter(|p| {
                    p.namespace == d.ns
                        && types(p).contains(&"Ingress")
                        && p.spec.pod_selector.matches(&d.labels)
                })
                .collect();
            let ok = selecting.is_empty()
                || selecting.iter().any(|p| {
                    p.spec.ingress.iter().any(|r| {
                        peers_match(&r.from, &p.namespace, Some(&src_view))
                            && ports_match(&r.ports, c.port, c.protocol, Some(d))
                    })
                });
            if !ok {
                let names: Vec<&str> = selecting.iter().map(|p| p.name.as_str()).collect();
                out.push(format!("{what}: no ingress rule of {names:?} admits it"));
            }
        }
    }
    out
}
