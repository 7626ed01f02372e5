//! The property behind "one tenant cannot freeze every proxy": whatever
//! HTTPRouteGroup the validating webhook accepts, every one of its matches
//! compiles in the proxy. Inputs are generated from the characters and
//! fragments that broke things (spaces and colons in header names, lower
//! case methods, unbalanced groups in regexes, non-ASCII).

use osm_api::{
    compile::wire_match,
    load::parse_object,
    matcher::HttpMatcher,
    resources::Object,
    validate::{rejects, validate},
};
use proptest::prelude::*;
use serde_json::json;

fn header_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 :_\\-é]{0,12}").expect("a valid strategy")
}

fn regex() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a".to_string()),
            Just(".*".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("|".to_string()),
            Just("(?:".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("\\".to_string()),
            Just("/books".to_string()),
            Just("{2}".to_string()),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("get".to_string()),
        Just("*".to_string()),
        Just("PO ST".to_string()),
        Just(String::new()),
        proptest::string::string_regex("[A-Z_\\-]{1,8}").expect("a valid strategy"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accepted_route_groups_compile_in_the_proxy(
        name in header_name(),
        value in regex(),
        path in regex(),
        methods in proptest::collection::vec(method(), 0..3),
    ) {
        let group = json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4",
            "kind": "HTTPRouteGroup",
            "metadata": {"name": "g", "namespace": "shop"},
            "spec": {"matches": [{
                "name": "m",
                "pathRegex": path,
                "methods": methods,
                "headers": {name: value},
            }]},
        });
        let Ok(object) = parse_object(group) else {
            return Ok(());
        };
        if rejects(&validate(&object)) {
            return Ok(());
        }
        let Object::HttpRouteGroup(group) = object else {
            panic!("an HTTPRouteGroup");
        };
        for m in &group.spec.matches {
            // What the compiler sends the proxy for this match.
            let wire = wire_match("shop/g", m);
            prop_assert!(
                HttpMatcher::compile(&wire).is_ok(),
                "validation accepted {wire:?}, the proxy refuses it: {:?}",
                HttpMatcher::compile(&wire).err()
            );
        }
    }
}
