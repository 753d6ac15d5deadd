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
    use forklift_rpc::v1::JobParams;
    use serde_json::json;

    /// A client converting with the generic codec from a kind's description gets
    /// exactly what the kind itself reads and writes: the description and the kind's
    /// own proto mapping cannot drift apart.
    #[test]
    fn descriptions_convert_exactly_like_the_kinds() {
        let r = registry(&KindsConfig {
            debug_kinds: true,
            ..Default::default()
        });
        let infos = r.describe();
        let codec = ParamsCodec::new();
        let cases = [
            (
                "image.thumbnail",
                json!({"sizes": [{"width": 256}, {"width": 30, "height": 100}],
                       "fit": "cover", "format": "webp", "quality": 70}),
            ),
            ("image.thumbnail", json!({"sizes": [{"height": 64}]})),
            (
                "data.profile",
                json!({"delimiter": "\t", "header": "absent"}),
            ),
            ("data.profile", json!({})),
            ("video.transcode", json!({"height": 1080})),
            ("video.transcode", json!({"height": 0})),
            ("debug.noop", json!({})),
            ("debug.sleep", json!({"duration_ms": 5, "blocking": true})),
            ("debug.flaky", json!({"failures": 2})),
        ];
        for (name, input) in cases {
            let kind = r.get(name).unwrap();
            let info = infos.iter().find(|i| i.name == name).unwrap();
            let validated = kind.validate(input.clone(), 1).unwrap();
            let proto = JobParams {
                kind: Some(kind.params_to_proto(&validated).unwrap()),
            };
            assert_eq!(codec.to_json(info, &proto), validated, "{name} {input}");
            assert_eq!(
                codec.to_proto(info, &validated).unwrap(),
                proto,
                "{name} {input}"
            );
            assert!(codec.to_proto(info, &input).unwrap().kind.is_some());
            assert_eq!(
                codec.params_field(&proto).as_deref(),
                Some(info.params_field.as_str())
            );
        }
        let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "data.profile",
                "debug.flaky",
                "debug.noop",
                "debug.sleep",
                "image.thumbnail",
                "video.transcode"
            ]
        );
        for i in &infos {
            assert!(
                !i.title.is_empty() && !i.action.is_empty() && !i.queue.is_empty(),
                "{i:?}"
            );
        }
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
