//! Builders for a kind's description (`KindInfo`, served by `Jobs.ListKinds`), so each
//! kind states its parameters in a few lines next to the code that checks them.

use forklift_rpc::v1::{KindInfo, ParamChoice, ParamField, ParamType};
use serde_json::Value;

/// The parts of a kind's description that only the kind knows; the registry adds
/// the rest.
pub fn kind(title: &str, description: &str, action: &str) -> KindInfo {
    KindInfo {
        title: title.to_owned(),
        description: description.to_owned(),
        action: action.to_owned(),
        min_inputs: 1,
        max_inputs: 1,
        ..Default::default()
    }
}

/// One parameter, built up.
#[derive(Debug, Clone)]
pub struct Param(ParamField);

impl Param {
    fn new(name: &str, label: &str, ty: ParamType) -> Self {
        Self(ParamField {
            name: name.to_owned(),
            label: label.to_owned(),
            r#type: ty as i32,
            ..Default::default()
        })
    }

    /// A whole number.
    pub fn integer(name: &str, label: &str) -> Self {
        Self::new(name, label, ParamType::Integer)
    }

    /// true or false.
    pub fn boolean(name: &str, label: &str) -> Self {
        Self::new(name, label, ParamType::Boolean)
    }

    /// A string.
    pub fn string(name: &str, label: &str) -> Self {
        Self::new(name, label, ParamType::String)
    }

    /// One of `choices`: (JSON value, label, proto enum number).
    pub fn enumeration(name: &str, label: &str, choices: &[(&str, &str, i32)]) -> Self {
        let mut p = Self::new(name, label, ParamType::Enum);
        p.0.choices = choices
            .iter()
            .map(|(value, label, number)| ParamChoice {
                value: (*value).to_owned(),
                label: (*label).to_owned(),
                number: *number,
            })
            .collect();
        p
    }

    /// An object of `fields`.
    pub fn object(name: &str, label: &str, fields: Vec<Param>) -> Self {
        let mut p = Self::new(name, label, ParamType::Object);
        p.0.fields = fields.into_iter().map(Param::build).collect();
        p
    }

    /// What it does and what is allowed.
    pub fn help(mut self, description: &str) -> Self {
        self.0.description = description.to_owned();
        self
    }

    /// Inclusive bounds of an integer.
    pub fn range(mut self, minimum: i64, maximum: i64) -> Self {
        self.0.minimum = Some(minimum);
        self.0.maximum = Some(maximum);
        self
    }

    /// A list of `min` to `max` of these.
    pub fn list(mut self, min: u32, max: u32) -> Self {
        self.0.repeated = true;
        self.0.min_items = min;
        self.0.max_items = max;
        self
    }

    /// The value used when the parameter is left out.
    pub fn default(mut self, value: Value) -> Self {
        self.0.default_json = value.to_string();
        self
    }

    /// A value to suggest in forms and examples.
    pub fn example(mut self, value: Value) -> Self {
        self.0.example_json = value.to_string();
        self
    }

    /// The allowed values of a string or integer: (JSON value, label).
    pub fn choices(mut self, choices: &[(&str, &str)]) -> Self {
        self.0.choices = choices
            .iter()
            .map(|(value, label)| ParamChoice {
                value: (*value).to_owned(),
                label: (*label).to_owned(),
                number: 0,
            })
            .collect();
        self
    }

    /// The finished field.
    pub fn build(self) -> ParamField {
        self.0
    }
}

/// The finished fields.
pub fn fields(params: Vec<Param>) -> Vec<ParamField> {
    params.into_iter().map(Param::build).collect()
}

#[cfg(test)]
mod tests {
    use crate::{KindsConfig, registry};
    use forklift_rpc::params::ParamsCodec;
    use forklift_rpc::v1::{JobParams, KindInfo, ParamField, ParamType};
    use forklift_runner::Registry;
    use serde_json::{Map, Value, json};

    fn all_kinds() -> Registry {
        registry(&KindsConfig {
            debug_kinds: true,
            ..Default::default()
        })
    }

    /// Parameters that use every described field: its example, else its default, else
    /// the first of its choices or its least value.
    fn sample(fields: &[ParamField]) -> Map<String, Value> {
        let given = |s: &str| (!s.is_empty()).then(|| serde_json::from_str::<Value>(s).unwrap());
        fields
            .iter()
            .map(|f| {
                let first = f.choices.first().map(|c| c.value.clone());
                let one = given(&f.example_json)
                    .or_else(|| given(&f.default_json))
                    .unwrap_or_else(|| match f.r#type() {
                        ParamType::Integer => match &first {
                            Some(v) => json!(v.parse::<i64>().unwrap()),
                            None => json!(f.minimum.unwrap_or(0)),
                        },
                        ParamType::Boolean => json!(false),
                        ParamType::Object => Value::Object(sample(&f.fields)),
                        _ => json!(first.unwrap_or_default()),
                    });
                let v = match one {
                    Value::Array(_) => one,
                    one if f.repeated => json!(vec![one; f.min_items.max(1) as usize]),
                    one => one,
                };
                (f.name.clone(), v)
            })
            .collect()
    }

    /// Every value a field's description offers (its default, its example, each of its
    /// choices) in place of `sample`'s, one at a time.
    fn offered(f: &ParamField) -> Vec<Value> {
        let mut values: Vec<Value> = [&f.default_json, &f.example_json]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| serde_json::from_str(s).unwrap())
            .collect();
        for c in &f.choices {
            values.push(match f.r#type() {
                ParamType::Integer => json!(c.value.parse::<i64>().unwrap()),
                _ => json!(c.value),
            });
        }
        if f.repeated {
            values = values.into_iter().map(|v| json!([v])).collect();
        }
        values
    }

    fn validate(r: &Registry, info: &KindInfo, params: Value) -> Value {
        let kind = r.get(&info.name).unwrap();
        let inputs = info.min_inputs.max(1) as usize;
        kind.validate(params.clone(), inputs)
            .unwrap_or_else(|e| panic!("{} refuses {params}: {e:?}", info.name))
    }

    /// A kind's description, its `Params` and its proto message say the same
    /// parameters: what the description offers validates, what validation returns
    /// converts to `JobParams` (so no `Params` field is left undescribed or missing
    /// from the message) and back to the same JSON (so no described field is missing
    /// from `Params`), and the kind is found again from its `JobParams`.
    #[test]
    fn descriptions_params_and_messages_agree() {
        let r = all_kinds();
        let infos = r.describe();
        let codec = ParamsCodec::new();
        for info in &infos {
            let name = info.name.as_str();
            assert!(
                !info.title.is_empty() && !info.action.is_empty() && !info.queue.is_empty(),
                "{info:?}"
            );
            assert_eq!(info.params_field, name.replace('.', "_"), "{name}");
            let base = sample(&info.fields);
            let mut tried = vec![Value::Object(base.clone())];
            for f in &info.fields {
                for v in offered(f) {
                    let mut p = base.clone();
                    p.insert(f.name.clone(), v);
                    tried.push(Value::Object(p));
                }
            }
            for params in tried {
                let validated = validate(&r, info, params.clone());
                let proto = r
                    .params_to_proto(name, &validated)
                    .unwrap_or_else(|| panic!("{name}: {validated} has no proto form"));
                assert_eq!(
                    codec.params_field(&proto).as_deref(),
                    Some(info.params_field.as_str())
                );
                let (kind, json) = r.params_from_proto(&proto).unwrap();
                assert_eq!(kind.name(), name);
                assert_eq!(json, validated, "{name}: {params}");
                // What a client sends is read as the kind reads it.
                let sent = codec.to_proto(info, &params).unwrap();
                let (_, json) = r.params_from_proto(&sent).unwrap();
                assert_eq!(validate(&r, info, json), validated, "{name}: {params}");
            }
        }
        let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
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
    }

    /// Over gRPC, values the proto carries but the kind does not allow reach the kind's
    /// validation and are refused there by name; an UNSPECIFIED enum is the default.
    #[test]
    fn proto_values_reach_validation() {
        use forklift_rpc::v1::{ImageThumbnailParams, ThumbnailSize, job_params};
        let r = all_kinds();
        let thumbnail = |fit, quality| JobParams {
            kind: Some(job_params::Kind::ImageThumbnail(ImageThumbnailParams {
                sizes: vec![ThumbnailSize {
                    width: 9000,
                    height: 0,
                }],
                fit,
                format: 0,
                quality,
            })),
        };
        let refused = |p: JobParams| -> Vec<String> {
            let (kind, json) = r.params_from_proto(&p).unwrap();
            let vs = kind.validate(json, 1).unwrap_err();
            vs.into_iter().map(|v| v.field).collect()
        };
        assert_eq!(refused(thumbnail(0, 1000)), ["sizes[0].width", "quality"]);
        assert_eq!(refused(thumbnail(99, 0)), ["fit"]);
        let (_, json) = r.params_from_proto(&thumbnail(0, 0)).unwrap();
        assert_eq!(
            (&json["fit"], &json["format"]),
            (&json!("contain"), &json!("jpeg"))
        );
        assert!(r.params_from_proto(&JobParams::default()).is_none());
    }

    /// What the codec refuses, it names by the JSON path, and what it allows it leaves
    /// to the kind's validation.
    #[test]
    fn the_codec_names_what_it_refuses() {
        let r = registry(&KindsConfig::default());
        let infos = r.describe();
        let codec = ParamsCodec::new();
        let thumb = infos.iter().find(|i| i.name == "image.thumbnail").unwrap();
        let mut errors = codec
            .to_proto(
                thumb,
                &json!({"sizes": [{"width": -1}, {"width": "wide"}], "fit": "squash",
                        "quality": 1.5, "colour": "red"}),
            )
            .unwrap_err();
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "colour",
                "fit",
                "quality",
                "sizes[0].width",
                "sizes[1].width"
            ]
        );
        assert!(
            errors[1]
                .description
                .contains(r#""contain", "cover", "fill""#),
            "{errors:?}"
        );
        assert!(
            errors[0]
                .description
                .contains("sizes, fit, format, quality"),
            "{errors:?}"
        );
        let errors = codec.to_proto(thumb, &json!([1])).unwrap_err();
        assert_eq!(errors[0].field, "");
        // A list longer than the kind allows is refused whole; a flood of mistakes is
        // named only so far.
        let nine: Vec<_> = (0..9).map(|_| json!({"width": "wide"})).collect();
        let errors = codec
            .to_proto(thumb, &json!({ "sizes": nine }))
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].field.as_str(), errors[0].description.as_str()),
            ("sizes", "at most 8 entries, not 9")
        );
        let junk: serde_json::Map<String, serde_json::Value> =
            (0..100).map(|i| (format!("k{i}"), json!(1))).collect();
        let errors = codec
            .to_proto(thumb, &serde_json::Value::Object(junk))
            .unwrap_err();
        assert_eq!(errors.len(), forklift_rpc::params::MAX_ERRORS);
        // In range for the proto type, out of range for the kind: the kind says so.
        let p = codec
            .to_proto(thumb, &json!({"sizes": [{"width": 9000}]}))
            .unwrap();
        let kind = r.get("image.thumbnail").unwrap();
        let json = codec.to_json(thumb, &p);
        let refused = kind.validate(json, 1).unwrap_err();
        assert_eq!(refused[0].field, "sizes[0].width");
        // A choice of an integer is the kind's to check, too (0 is its default).
        let video = infos.iter().find(|i| i.name == "video.transcode").unwrap();
        let p = codec.to_proto(video, &json!({"height": 480})).unwrap();
        let refused = r
            .get("video.transcode")
            .unwrap()
            .validate(codec.to_json(video, &p), 1);
        assert_eq!(refused.unwrap_err()[0].field, "height");
    }
}
