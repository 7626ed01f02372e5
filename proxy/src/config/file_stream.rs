//! A JSON config file read into its resources one at a time: each one is
//! encoded as soon as it is parsed, so the parsed config is never whole in
//! memory (at 10,000 services it was 17.7 MB on top of the file's text, the
//! proxy's peak); the store keeps the encodings.
//!
//! It accepts exactly what `ProxyConfig`'s own deserializer (pbjson's,
//! the proto3 JSON mapping) accepts, with the same messages: the same
//! field names and aliases, an unknown or repeated field refused, `null`
//! for the mesh settings and trust bundle but not for a list. Each
//! resource is read by its type's own deserializer.

use osm_api::{
    protocol::{ResourceId, resource_id},
    v1::{self, resource::Kind},
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::store::{Encoded, FileResources};

/// `ProxyConfig`'s fields as its deserializer names them.
const FIELDS: &[&str] = &[
    "mesh",
    "trust_bundle",
    "trustBundle",
    "inbound",
    "outbound",
    "endpoints",
    "egress",
];

/// A config's resources, encoded: by kind in `into_resources`' order
/// (mesh, trust bundle, inbound, outbound, endpoints, egress), each kind
/// in the file's order, whatever order the file's fields come in.
#[derive(Debug, Default)]
pub struct StreamedResources([Vec<(ResourceId, Encoded)>; 6]);

impl From<StreamedResources> for FileResources {
    fn from(streamed: StreamedResources) -> Self {
        FileResources::from_encoded(streamed.0.into_iter().flatten().collect())
    }
}

impl StreamedResources {
    /// Keeps `kind` encoded, as `into_resources` would have: a resource
    /// without a key (none of the kinds a file holds) is left out.
    fn push(&mut self, kind: Kind) {
        let rank = match kind {
            Kind::Mesh(_) => 0,
            Kind::TrustBundle(_) => 1,
            Kind::Inbound(_) => 2,
            Kind::Outbound(_) => 3,
            Kind::Endpoints(_) => 4,
            Kind::Egress(_) => 5,
        };
        let resource = v1::Resource { kind: Some(kind) };
        if let Some(id) = resource_id(&resource) {
            self.0[rank].push((id, Encoded::of(&resource)));
        }
    }
}

impl<'de> de::Deserialize<'de> for StreamedResources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("osm.v1.ProxyConfig", FIELDS, ConfigVisitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Mesh,
    TrustBundle,
    Inbound,
    Outbound,
    Endpoints,
    Egress,
}

impl Field {
    /// The name a duplicate is reported under (pbjson's).
    fn name(self) -> &'static str {
        match self {
            Self::Mesh => "mesh",
            Self::TrustBundle => "trustBundle",
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Endpoints => "endpoints",
            Self::Egress => "egress",
        }
    }
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "expected one of: {FIELDS:?}")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Field, E> {
                Ok(match value {
                    "mesh" => Field::Mesh,
                    "trustBundle" | "trust_bundle" => Field::TrustBundle,
                    "inbound" => Field::Inbound,
                    "outbound" => Field::Outbound,
                    "endpoints" => Field::Endpoints,
                    "egress" => Field::Egress,
                    _ => return Err(de::Error::unknown_field(value, FIELDS)),
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = StreamedResources;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct osm.v1.ProxyConfig")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<StreamedResources, M::Error> {
        let mut out = StreamedResources::default();
        let mut seen = Vec::with_capacity(FIELDS.len());
        while let Some(field) = map.next_key::<Field>()? {
            if seen.contains(&field) {
                return Err(de::Error::duplicate_field(field.name()));
            }
            // As pbjson: a `null` mesh or bundle reads as absent (a second
            // one after it is no duplicate); a list is present once read,
            // even empty.
            let present = match field {
                Field::Mesh => map
                    .next_value::<Option<v1::MeshSettings>>()?
                    .map(|mesh| out.push(Kind::Mesh(mesh)))
                    .is_some(),
                Field::TrustBundle => map
                    .next_value::<Option<v1::TrustBundle>>()?
                    .map(|bundle| out.push(Kind::TrustBundle(bundle)))
                    .is_some(),
                Field::Inbound => map.next_value_seed(EachEncoded(&mut out, Kind::Inbound))?,
                Field::Outbound => map.next_value_seed(EachEncoded(&mut out, Kind::Outbound))?,
                Field::Endpoints => map.next_value_seed(EachEncoded(&mut out, Kind::Endpoints))?,
                Field::Egress => map.next_value_seed(EachEncoded(&mut out, Kind::Egress))?,
            };
            if present {
                seen.push(field);
            }
        }
        Ok(out)
    }
}

/// A list of resources of one kind, each encoded as soon as it is read.
struct EachEncoded<'a, T>(&'a mut StreamedResources, fn(T) -> Kind);

/// Its value: the list is present (always, once read).
impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for EachEncoded<'_, T> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for EachEncoded<'_, T> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<bool, S::Error> {
        let EachEncoded(out, kind) = self;
        while let Some(item) = seq.next_element::<T>()? {
            out.push(kind(item));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_config, parse_file, store::FileResources};

    /// What reading the parsed config whole gives (the reference).
    fn whole(text: &str) -> Result<FileResources, String> {
        parse_config("c.json", text)
            .map(FileResources::from_config)
            .map_err(|e| e.to_string())
    }

    fn streamed(text: &str) -> Result<FileResources, String> {
        parse_file("c.json", text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_json_file_reads_as_the_whole_config_would() {
        let cases = [
            ("empty", "{}"),
            (
                "every kind, interleaved",
                r#"{"endpoints": [{"key": "ns/a:80", "endpoints": [{"address": "10.0.0.1:80"}]},
                    {"key": "ns/b:80"}],
                  "mesh": {"permissive": true},
                  "outbound": [{"key": "ns/a:80", "port": 80, "endpoints": "ns/a:80"}],
                  "inbound": [{"port": 8080, "protocol": "PROTOCOL_HTTP1"}],
                  "trustBundle": {"pem": "x"},
                  "egress": [{"name": "out", "hosts": ["example.com"], "ports": [{"number": 443, "protocol": "https"}]}]}"#,
            ),
            ("the snake_case alias", r#"{"trust_bundle": {"pem": "y"}}"#),
            (
                "null mesh and bundle",
                r#"{"mesh": null, "trustBundle": null}"#,
            ),
            (
                "a null then a value is no duplicate",
                r#"{"mesh": null, "mesh": {"egress": true}}"#,
            ),
            (
                "empty lists",
                r#"{"inbound": [], "outbound": [], "endpoints": []}"#,
            ),
            (
                "a repeated key within a list is kept (the build refuses it)",
                r#"{"endpoints": [{"key": "ns/a:80"}, {"key": "ns/a:80"}]}"#,
            ),
        ];
        for (name, text) in cases {
            let expected = whole(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(streamed(text), Ok(expected), "{name}");
        }
    }

    #[test]
    fn a_bad_json_file_is_refused_with_the_same_message() {
        let cases = [
            ("an unknown field", r#"{"mesh": {}, "outbond": []}"#),
            (
                "a nested unknown field",
                r#"{"inbound": [{"port": 80, "protocl": "x"}]}"#,
            ),
            (
                "a bad value in the second item",
                r#"{"outbound": [{"key": "a", "port": 80}, {"key": "b", "port": "http"}]}"#,
            ),
            ("a repeated field", r#"{"mesh": {}, "mesh": {}}"#),
            ("a value then null", r#"{"mesh": {}, "mesh": null}"#),
            ("a repeated list", r#"{"egress": [], "egress": []}"#),
            ("a null list", r#"{"endpoints": null}"#),
            ("a list that is not one", r#"{"inbound": {"port": 80}}"#),
            ("trailing data", r#"{"mesh": {}} {}"#),
            ("cut short", r#"{"endpoints": [{"key": "a"}"#),
            ("not an object", r#"{"#),
        ];
        for (name, text) in cases {
            let expected = whole(text).expect_err(name);
            assert_eq!(streamed(text), Err(expected), "{name}");
        }
    }
}
