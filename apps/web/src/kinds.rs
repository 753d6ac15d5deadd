//! The job kinds, as the jobs service describes them (`Jobs.ListKinds`): the web app
//! has no code per kind. Forms, the JSON API's parameters, field hints and the OpenAPI
//! schemas all follow from the descriptions, fetched once and refreshed every
//! [`REFRESH`] (a kind's availability can change, e.g. when ffmpeg's check ends).

use crate::error::FieldError;
use forklift_rpc::params::{ParamError, ParamsCodec};
use forklift_rpc::v1::{self as pb, KindInfo, ParamField, ParamType};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a fetched description is used before it is asked for again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// Longest one fetch may take: a jobs service that accepts the connection but does not
/// answer must not hold every page that needs the kinds.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// After a failed fetch with nothing to fall back on, callers are answered at once for
/// this long instead of each waiting for a fetch of its own.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// Fetches and keeps the descriptions.
pub struct Catalog {
    codec: ParamsCodec,
    cached: Mutex<Cached>,
    refresh: Duration,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::with_refresh(REFRESH)
    }
}

#[derive(Default)]
struct Cached {
    kinds: Option<(Instant, Kinds)>,
    failed: Option<(Instant, tonic::Status)>,
}

impl Catalog {
    /// A catalog that asks again after `refresh`.
    pub fn with_refresh(refresh: Duration) -> Self {
        Self {
            codec: ParamsCodec::new(),
            cached: Mutex::default(),
            refresh,
        }
    }

    /// The current descriptions: the cached ones while fresh, else `fetch`'s (which
    /// one caller runs, within [`FETCH_TIMEOUT`], while the others wait for it). When a
    /// fetch fails, the last descriptions fetched are used until one succeeds.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Kinds, tonic::Status>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<KindInfo>, tonic::Status>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some((at, kinds)) = cached.kinds.as_ref()
            && at.elapsed() < self.refresh
        {
            return Ok(kinds.clone());
        }
        if cached.kinds.is_none()
            && let Some((at, status)) = cached.failed.as_ref()
            && at.elapsed() < RETRY_AFTER_FAILURE
        {
            return Err(status.clone());
        }
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, fetch()).await {
            Ok(r) => r,
            Err(_) => Err(tonic::Status::unavailable(
                "the jobs service did not describe its kinds in time",
            )),
        };
        match fetched {
            Ok(list) => {
                let kinds = Kinds {
                    kinds: Arc::new(list),
                    codec: self.codec.clone(),
                };
                cached.kinds = Some((Instant::now(), kinds.clone()));
                cached.failed = None;
                Ok(kinds)
            }
            Err(status) => match cached.kinds.as_mut() {
                // Stale but known: use it, and ask again after another period.
                Some((at, kinds)) => {
                    *at = Instant::now();
                    Ok(kinds.clone())
                }
                None => {
                    cached.failed = Some((Instant::now(), status.clone()));
                    Err(status)
                }
            },
        }
    }
}

/// A snapshot of the kinds; cheap to clone.
#[derive(Clone, Debug)]
pub struct Kinds {
    kinds: Arc<Vec<KindInfo>>,
    codec: ParamsCodec,
}

impl Kinds {
    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&KindInfo> {
        self.kinds.iter().find(|k| k.name == name)
    }

    /// Every kind.
    pub fn all(&self) -> &[KindInfo] {
        &self.kinds
    }

    /// The kinds a file of this type and name suggests (see `KindInfo.accepts`).
    pub fn for_file(&self, content_type: &str, name: &str) -> Vec<&KindInfo> {
        let name = name.to_ascii_lowercase();
        self.kinds
            .iter()
            .filter(|k| {
                k.accepts.iter().any(|a| {
                    if a.starts_with('.') {
                        name.ends_with(a.as_str())
                    } else if a.ends_with('/') {
                        content_type.starts_with(a.as_str())
                    } else {
                        content_type == a
                    }
                })
            })
            .collect()
    }

    /// A job's parameters in their JSON form (`null` for a kind this service no
    /// longer describes).
    pub fn params_json(&self, job: &pb::Job) -> Json {
        match (self.get(&job.kind), &job.params) {
            (Some(k), Some(p)) => self.codec.to_json(k, p),
            _ => Json::Null,
        }
    }

    /// A gRPC submit from the JSON form. Types and choices are checked here, with the
    /// fields named as the JSON API names them (`params.sizes[0].width`); the jobs
    /// service checks everything else.
    pub fn submit_request(
        &self,
        kind: &str,
        params: &Json,
        input_file_ids: Vec<String>,
    ) -> Result<pb::SubmitJobRequest, Vec<FieldError>> {
        let k = self.get(kind).ok_or_else(|| {
            vec![FieldError {
                field: "kind".into(),
                description: format!(
                    "unknown job kind {kind:?}; one of: {}",
                    self.kinds
                        .iter()
                        .map(|k| k.name.as_str())
                        .filter(|n| !n.starts_with("debug."))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }]
        })?;
        let params = self
            .codec
            .to_proto(k, params)
            .map_err(|es| es.into_iter().map(param_error).collect::<Vec<_>>())?;
        Ok(pb::SubmitJobRequest {
            params: Some(params),
            input_file_ids,
            ..Default::default()
        })
    }

    /// How the jobs service names a parameter in a violation (`params.image_thumbnail.
    /// sizes[0].width`) turned into the JSON API's name (`params.sizes[0].width`).
    pub fn json_field(&self, kind: &str, field: String) -> String {
        match self.get(kind) {
            Some(k) => match field
                .strip_prefix("params.")
                .and_then(|f| f.strip_prefix(k.params_field.as_str()))
            {
                Some(rest) => format!("params{rest}"),
                None => field,
            },
            None => field,
        }
    }
}

/// A conversion error with the JSON API's field name.
fn param_error(e: ParamError) -> FieldError {
    FieldError {
        field: if e.field.is_empty() {
            "params".into()
        } else {
            format!("params.{}", e.field)
        },
        description: e.description,
    }
}

/// One input of a kind's form.
#[derive(Debug, Clone)]
pub struct FormInput {
    /// The form field's name: the parameter's own name, or `parent.name` where two
    /// parameters share one.
    pub name: String,
    /// A page-unique element id.
    pub id: String,
    /// For people.
    pub label: String,
    /// The hint under it.
    pub hint: String,
    /// `number`, `select` or `checkbox` (else a text input).
    pub control: &'static str,
    /// Bounds of a number.
    pub min: Option<i64>,
    /// Bounds of a number.
    pub max: Option<i64>,
    /// The value it starts with.
    pub value: String,
    /// A select's options: (value, label, selected).
    pub options: Vec<(String, String, bool)>,
    /// Where the value goes: the path of parameter names (a list's entries: its first).
    path: Vec<String>,
    ty: ParamType,
}

/// A kind's form: its inputs, in the description's order. A list of objects (image
/// sizes) shows its first entry.
pub fn form_inputs(kind: &KindInfo) -> Vec<FormInput> {
    let mut leaves = Vec::new();
    collect(&kind.fields, &[], &mut leaves);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (path, _) in &leaves {
        *count
            .entry(path.last().map_or("", String::as_str))
            .or_default() += 1;
    }
    let inputs: Vec<FormInput> = leaves
        .iter()
        .map(|(path, f)| {
            let leaf = path.last().cloned().unwrap_or_default();
            let name = if count.get(leaf.as_str()) == Some(&1) {
                leaf
            } else {
                path.join(".")
            };
            let start = if f.example_json.is_empty() {
                &f.default_json
            } else {
                &f.example_json
            };
            let value = match serde_json::from_str::<Json>(start) {
                Ok(Json::String(s)) => s,
                Ok(Json::Null) | Err(_) => String::new(),
                Ok(v) => v.to_string(),
            };
            let ty = f.r#type();
            let control = match ty {
                _ if !f.choices.is_empty() => "select",
                ParamType::Integer => "number",
                ParamType::Boolean => "checkbox",
                _ => "text",
            };
            let options = f
                .choices
                .iter()
                .map(|c| (c.value.clone(), c.label.clone(), c.value == value))
                .collect();
            FormInput {
                id: format!("{}-{}", kind.params_field, name.replace('.', "-")),
                name,
                label: f.label.clone(),
                hint: f.description.clone(),
                control,
                min: f.minimum,
                max: f.maximum,
                value,
                options,
                path: path.clone(),
                ty,
            }
        })
        .collect();
    inputs
}

fn collect<'a>(
    fields: &'a [ParamField],
    parent: &[String],
    out: &mut Vec<(Vec<String>, &'a ParamField)>,
) {
    for f in fields {
        let mut path = parent.to_vec();
        path.push(f.name.clone());
        if f.r#type() == ParamType::Object {
            collect(&f.fields, &path, out);
        } else {
            out.push((path, f));
        }
    }
}

/// The parameters' JSON form from a submitted form: empty inputs are left out (the
/// kind's default); a list of objects gets the one entry the form shows.
pub fn form_params(
    kind: &KindInfo,
    form: &HashMap<String, String>,
) -> Result<Json, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut root = Map::new();
    for input in form_inputs(kind) {
        // A choice is sent as it is (the Tab delimiter is whitespace); typed text is
        // trimmed.
        let raw = form.get(&input.name).map_or("", |v| {
            if input.control == "select" {
                v.as_str()
            } else {
                v.trim()
            }
        });
        let value = match input.ty {
            ParamType::Boolean => Json::Bool(matches!(raw, "on" | "true" | "1")),
            _ if raw.is_empty() => continue,
            ParamType::Integer => match raw.parse::<i64>() {
                Ok(n) => Json::from(n),
                Err(_) => {
                    errors.push(FieldError {
                        field: input.name.clone(),
                        description: format!("{raw:?} is not a whole number"),
                    });
                    continue;
                }
            },
            _ => Json::String(raw.to_owned()),
        };
        insert(kind, &mut root, &input.path, value);
    }
    // A list of objects always gets its entry, so that "nothing set" is the jobs
    // service's to explain.
    for f in &kind.fields {
        if f.repeated && f.r#type() == ParamType::Object && !root.contains_key(&f.name) {
            root.insert(f.name.clone(), Json::Array(vec![Json::Object(Map::new())]));
        }
    }
    if errors.is_empty() {
        Ok(Json::Object(root))
    } else {
        Err(errors)
    }
}

/// Puts `value` at `path`, a list's first entry standing for the list.
fn insert(kind: &KindInfo, root: &mut Map<String, Json>, path: &[String], value: Json) {
    let mut fields = &kind.fields;
    let mut here = root;
    for (i, name) in path.iter().enumerate() {
        let Some(f) = fields.iter().find(|f| f.name == *name) else {
            return;
        };
        if i + 1 == path.len() {
            here.insert(
                name.clone(),
                if f.repeated {
                    Json::Array(vec![value])
                } else {
                    value
                },
            );
            return;
        }
        let slot = here.entry(name.clone()).or_insert_with(|| {
            if f.repeated {
                Json::Array(vec![Json::Object(Map::new())])
            } else {
                Json::Object(Map::new())
            }
        });
        let obj = match slot {
            Json::Array(items) => items.first_mut().and_then(Json::as_object_mut),
            Json::Object(o) => Some(o),
            _ => None,
        };
        let Some(obj) = obj else {
            return;
        };
        here = obj;
        fields = &f.fields;
    }
}

/// Adds each kind's parameters to the OpenAPI document (a schema per kind, e.g.
/// `ImageThumbnailParams`) and makes `NewJob.params` one of them.
pub fn document_params(kinds: &Kinds, doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut one_of =
        OneOfBuilder::new().description(Some("The parameters of the kind named in `kind`."));
    for k in kinds.all() {
        let name = format!("{}Params", pascal(&k.params_field));
        let mut obj = object_schema(&k.fields).title(Some(k.name.clone()));
        obj = obj.description(Some(k.description.clone()));
        components
            .schemas
            .insert(name.clone(), RefOr::T(Schema::Object(obj.build())));
        one_of = one_of.item(Ref::from_schema_name(name));
    }
    if let Some(RefOr::T(Schema::Object(new_job))) = components.schemas.get_mut("NewJob") {
        new_job
            .properties
            .insert("params".into(), RefOr::T(Schema::OneOf(one_of.build())));
    }
}

fn object_schema(fields: &[ParamField]) -> utoipa::openapi::schema::ObjectBuilder {
    let mut obj = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
    for f in fields {
        obj = obj.property(f.name.clone(), field_schema(f));
    }
    obj
}

fn field_schema(f: &ParamField) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
    let ty = f.r#type();
    let about = if f.description.is_empty() {
        f.label.clone()
    } else {
        format!("{}. {}", f.label, f.description)
    };
    let mut one = match ty {
        ParamType::Object => object_schema(&f.fields),
        ParamType::Integer => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(f.minimum)
            .maximum(f.maximum),
        ParamType::Boolean => ObjectBuilder::new().schema_type(Type::Boolean),
        _ => ObjectBuilder::new().schema_type(Type::String),
    };
    if !f.choices.is_empty() {
        one = one.enum_values(Some(f.choices.iter().map(|c| match ty {
            ParamType::Integer => c.value.parse::<i64>().map_or(Json::Null, Json::from),
            _ => Json::String(c.value.clone()),
        })));
    }
    let default = serde_json::from_str::<Json>(&f.default_json).ok();
    let example = serde_json::from_str::<Json>(&f.example_json).ok();
    if f.repeated {
        let items = utoipa::openapi::RefOr::T(Schema::Object(one.build()));
        return ArrayBuilder::new()
            .items(items)
            .min_items(Some(f.min_items as usize))
            .max_items((f.max_items > 0).then_some(f.max_items as usize))
            .description(Some(about))
            .into();
    }
    one.description(Some(about))
        .default(default)
        .examples(example)
        .into()
}

/// `image_thumbnail` as `ImageThumbnail`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use forklift_rpc::v1::ParamChoice;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn profile() -> KindInfo {
        KindInfo {
            name: "data.profile".into(),
            params_field: "data_profile".into(),
            fields: vec![ParamField {
                name: "delimiter".into(),
                r#type: ParamType::String as i32,
                choices: [("", "Detect"), ("\t", "Tab"), (",", "Comma")]
                    .map(|(value, label)| ParamChoice {
                        value: value.into(),
                        label: label.into(),
                        number: 0,
                    })
                    .to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// A chosen Tab is whitespace, and must arrive as itself.
    #[test]
    fn a_chosen_tab_is_not_trimmed_away() {
        let form = HashMap::from([("delimiter".to_owned(), "\t".to_owned())]);
        let params = form_params(&profile(), &form).unwrap();
        assert_eq!(params["delimiter"], "\t");
    }

    /// A failed fetch falls back on the last descriptions; with none, callers are
    /// answered at once for a moment instead of each waiting for a fetch.
    #[tokio::test]
    async fn a_failed_fetch_uses_the_last_descriptions_or_answers_at_once() {
        let fetches = AtomicUsize::new(0);
        let ok = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(vec![profile()])
        };
        let down = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Err(tonic::Status::unavailable("down"))
        };
        let stale = Catalog::with_refresh(Duration::ZERO);
        stale.get(ok).await.unwrap();
        let kinds = stale.get(down).await.unwrap();
        assert!(kinds.get("data.profile").is_some());
        assert_eq!(fetches.swap(0, Ordering::SeqCst), 2);

        let empty = Catalog::with_refresh(Duration::ZERO);
        assert_eq!(
            empty.get(down).await.unwrap_err().code(),
            tonic::Code::Unavailable
        );
        assert_eq!(
            empty.get(ok).await.unwrap_err().code(),
            tonic::Code::Unavailable
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "the second caller did not fetch"
        );
    }
}
