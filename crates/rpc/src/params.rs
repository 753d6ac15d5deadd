//! A kind's parameters between their JSON form and `JobParams`, driven by the kind's
//! description ([`KindInfo`], from `Jobs.ListKinds`) and the contract's own
//! descriptors: no code per kind. The jobs service describes its kinds; a client (the
//! web app) converts what users type with this alone.
//!
//! JSON keys are the proto field names; an ENUM's JSON value is its choice's `value`
//! (`"cover"`), the proto its `number`. Conversion checks types and enum choices only
//! (what the proto cannot carry): ranges, list lengths, a string's or an integer's
//! choices and everything else are the jobs service's to check, so that one
//! validation answers every client.

use crate::v1::{JobParams, KindInfo, ParamField, ParamType};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use serde_json::{Map, Value as Json};

/// Most problems named in one answer: enough to fix a request, not a flood.
pub const MAX_ERRORS: usize = 20;

/// One problem with one parameter: `field` is relative to the parameters, e.g.
/// `sizes[0].width` (empty: the parameters as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's path.
    pub field: String,
    /// What is wrong and what is allowed.
    pub description: String,
}

impl ParamError {
    fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Converts parameters; build one and keep it (it decodes the descriptor set).
#[derive(Debug, Clone)]
pub struct ParamsCodec {
    job_params: MessageDescriptor,
}

impl Default for ParamsCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl ParamsCodec {
    /// A codec over this build's contract.
    pub fn new() -> Self {
        let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set built with this crate decodes");
        let job_params = pool
            .get_message_by_name("forklift.v1.JobParams")
            .expect("forklift.v1.JobParams is in the contract");
        Self { job_params }
    }

    /// The name of the `JobParams` field `p` sets (which selects its kind), if any.
    pub fn params_field(&self, p: &JobParams) -> Option<String> {
        let m =
            DynamicMessage::decode(self.job_params.clone(), p.encode_to_vec().as_slice()).ok()?;
        m.fields().next().map(|(f, _)| f.name().to_owned())
    }

    /// The JSON form of `p`, the parameters of `kind`: every described field, an enum
    /// by its choice's value (an UNSPECIFIED zero no choice has as the field's
    /// default).
    pub fn to_json(&self, kind: &KindInfo, p: &JobParams) -> Json {
        let Some(field) = self.job_params.get_field_by_name(&kind.params_field) else {
            return Json::Object(Map::new());
        };
        let outer = DynamicMessage::decode(self.job_params.clone(), p.encode_to_vec().as_slice())
            .unwrap_or_else(|_| DynamicMessage::new(self.job_params.clone()));
        match outer.get_field(&field).as_ref() {
            Value::Message(m) => message_to_json(m, &kind.fields),
            _ => Json::Object(Map::new()),
        }
    }

    /// `JobParams` for `kind` from the JSON form (`null` is `{}`). A parameter left out
    /// keeps its proto default, which the jobs service reads as "not given".
    pub fn to_proto(&self, kind: &KindInfo, json: &Json) -> Result<JobParams, Vec<ParamError>> {
        let Some(field) = self.job_params.get_field_by_name(&kind.params_field) else {
            return Err(vec![ParamError::new(
                "params",
                format!(
                    "{} cannot be sent: this build's contract lacks it",
                    kind.name
                ),
            )]);
        };
        let Kind::Message(desc) = field.kind() else {
            return Err(vec![ParamError::new("params", "the contract is malformed")]);
        };
        let empty = Json::Object(Map::new());
        let json = if json.is_null() { &empty } else { json };
        let mut errors = Vec::new();
        let inner = json_to_message(&desc, &kind.fields, json, "", &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut outer = DynamicMessage::new(self.job_params.clone());
        outer.set_field(&field, Value::Message(inner));
        JobParams::decode(outer.encode_to_vec().as_slice())
            .map_err(|e| vec![ParamError::new("params", format!("cannot be encoded: {e}"))])
    }
}

fn message_to_json(m: &DynamicMessage, fields: &[ParamField]) -> Json {
    let mut out = Map::new();
    for f in fields {
        let Some(v) = m.get_field_by_name(&f.name) else {
            continue;
        };
        let json = match v.as_ref() {
            Value::List(items) => Json::Array(items.iter().map(|i| value_to_json(i, f)).collect()),
            v => value_to_json(v, f),
        };
        out.insert(f.name.clone(), json);
    }
    Json::Object(out)
}

fn value_to_json(v: &Value, f: &ParamField) -> Json {
    match v {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => Json::from(*n),
        Value::F64(n) => Json::from(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::EnumNumber(n) => match f.choices.iter().find(|c| c.number == *n) {
            Some(c) => Json::String(c.value.clone()),
            // UNSPECIFIED: the kind's default; any other unknown number stays a number,
            // for the kind to refuse.
            None if *n == 0 => serde_json::from_str(&f.default_json).unwrap_or(Json::from(0)),
            None => Json::from(*n),
        },
        Value::Message(m) => message_to_json(m, &f.fields),
        Value::Bytes(_) | Value::List(_) | Value::Map(_) => Json::Null,
    }
}

fn json_to_message(
    desc: &MessageDescriptor,
    fields: &[ParamField],
    json: &Json,
    prefix: &str,
    errors: &mut Vec<ParamError>,
) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    let here = |name: &str| format!("{prefix}{name}");
    let Some(obj) = json.as_object() else {
        let at = prefix.strip_suffix('.').unwrap_or("");
        errors.push(ParamError::new(at, "must be an object"));
        return m;
    };
    for (key, value) in obj {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let Some(f) = fields.iter().find(|f| f.name == *key) else {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            errors.push(ParamError::new(
                here(key),
                format!(
                    "unknown parameter; the parameters are: {}",
                    known.join(", ")
                ),
            ));
            continue;
        };
        let Some(fd) = desc.get_field_by_name(key) else {
            errors.push(ParamError::new(here(key), "not in this build's contract"));
            continue;
        };
        if value.is_null() {
            continue;
        }
        let v = if f.repeated {
            let Some(items) = value.as_array() else {
                errors.push(ParamError::new(here(key), "must be a list"));
                continue;
            };
            // A list longer than the kind allows is refused whole, before its items
            // are converted (or named one by one).
            if f.max_items > 0 && items.len() > f.max_items as usize {
                errors.push(ParamError::new(
                    here(key),
                    format!("at most {} entries, not {}", f.max_items, items.len()),
                ));
                continue;
            }
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if errors.len() >= MAX_ERRORS {
                    break;
                }
                list.extend(json_to_value(
                    &fd,
                    f,
                    item,
                    &format!("{}[{i}]", here(key)),
                    errors,
                ));
            }
            Some(Value::List(list))
        } else {
            json_to_value(&fd, f, value, &here(key), errors)
        };
        if let Some(v) = v {
            m.set_field(&fd, v);
        }
    }
    m
}

fn json_to_value(
    fd: &FieldDescriptor,
    f: &ParamField,
    json: &Json,
    path: &str,
    errors: &mut Vec<ParamError>,
) -> Option<Value> {
    let mut fail = |d: String| {
        errors.push(ParamError::new(path, d));
        None
    };
    match (f.r#type(), fd.kind()) {
        (ParamType::Integer, kind) => {
            let (lo, hi): (i128, i128) = match kind {
                Kind::Uint32 | Kind::Fixed32 => (0, u32::MAX.into()),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => (i32::MIN.into(), i32::MAX.into()),
                Kind::Uint64 | Kind::Fixed64 => (0, u64::MAX.into()),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => (i64::MIN.into(), i64::MAX.into()),
                _ => return fail("not an integer in this build's contract".into()),
            };
            let n = json
                .as_i64()
                .map(i128::from)
                .or_else(|| json.as_u64().map(i128::from));
            let Some(n) = n.filter(|n| (lo..=hi).contains(n)) else {
                return fail(format!("must be a whole number from {lo} to {hi}"));
            };
            Some(match kind {
                Kind::Uint32 | Kind::Fixed32 => Value::U32(n as u32),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(n as i32),
                Kind::Uint64 | Kind::Fixed64 => Value::U64(n as u64),
                _ => Value::I64(n as i64),
            })
        }
        (ParamType::Boolean, Kind::Bool) => match json.as_bool() {
            Some(b) => Some(Value::Bool(b)),
            None => fail("must be true or false".into()),
        },
        (ParamType::String, Kind::String) => match json.as_str() {
            Some(s) => Some(Value::String(s.to_owned())),
            None => fail("must be a string".into()),
        },
        (ParamType::Enum, Kind::Enum(_)) => {
            match json
                .as_str()
                .and_then(|s| f.choices.iter().find(|c| c.value == s))
            {
                Some(c) => Some(Value::EnumNumber(c.number)),
                None => fail(one_of(f)),
            }
        }
        (ParamType::Object, Kind::Message(desc)) => {
            let before = errors.len();
            let m = json_to_message(&desc, &f.fields, json, &format!("{path}."), errors);
            (errors.len() == before).then_some(Value::Message(m))
        }
        _ => fail("this parameter's description does not match the contract".into()),
    }
}

fn one_of(f: &ParamField) -> String {
    let values: Vec<String> = f
        .choices
        .iter()
        .map(|c| serde_json::to_string(&c.value).unwrap_or_default())
        .collect();
    format!("must be one of {}", values.join(", "))
}
