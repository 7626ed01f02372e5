//! The bookstore demo manifests (`demo/manifests/`) compile to the configs in
//! `demo/golden/`, one file per proxy. The goldens were read and checked by
//! hand once; `OSM_UPDATE_GOLDEN=1 cargo test -p osm-api --test
//! bookstore_golden` rewrites them after an intended change (review the diff).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use osm_api::{
    compile::{Index, MeshOptions, ProxyId, compile},
    load::load_str,
    resources::Object,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every object of the demo's manifests, with each Deployment replaced by
/// the Pods a ReplicaSet would create (addresses from 10.244.0.0/16).
fn demo_objects(files: &[&str]) -> Vec<Object> {
    let mut objects = Vec::new();
    let mut next_ip = 10;
    for file in files {
        let path = repo().join("demo/manifests").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let out = load_str(file, &text);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        for loaded in out.objects {
            match loaded.object {
                Object::Deployment(d) => {
                    let name = d.metadata.name.clone().unwrap();
                    let ns = d.metadata.namespace.clone().unwrap();
                    let spec = d.spec.clone().unwrap();
                    for i in 0..spec.replicas.unwrap_or(1) {
                        let mut meta = spec.template.metadata.clone().unwrap_or_default();
                        meta.name = Some(format!("{name}-5d8f9-{i}"));
                        meta.namespace = Some(ns.clone());
                        meta.labels
                            .get_or_insert_default()
                            .insert("pod-template-hash".into(), "5d8f9".into());
                        meta.owner_references = Some(vec![
                            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                                api_version: "apps/v1".into(),
                                kind: "ReplicaSet".into(),
                                name: format!("{name}-5d8f9"),
                                uid: "uid".into(),
                                ..Default::default()
                            },
                        ]);
                        let pod = k8s_openapi::api::core::v1::Pod {
                            metadata: meta,
                            spec: spec.template.spec.clone(),
                            status: Some(k8s_openapi::api::core::v1::PodStatus {
                                pod_ip: Some(format!("10.244.0.{next_ip}")),
                                ..Default::default()
                            }),
                        };
                        next_ip += 1;
                        objects.push(Object::Pod(std::sync::Arc::new(pod.into())));
                    }
                }
                other => objects.push(other),
            }
        }
    }
    objects
}

fn check_golden(name: &str, actual: &str) {
    let path = repo().join("demo/golden").join(name);
    if std::env::var_os("OSM_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (OSM_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        expected,
        actual,
        "{} differs from the compiled config",
        path.display()
    );
}

#[test]
fn the_bookstore_demo_compiles_to_the_golden_configs() {
    let files = [
        "apps/namespaces.yaml",
        "apps/bookbuyer.yaml",
        "apps/bookthief.yaml",
        "apps/bookstore.yaml",
        "apps/bookstore-v2.yaml",
        "apps/bookwarehouse.yaml",
        "access/traffic-access-v1.yaml",
        "split/traffic-split-v1.yaml",
    ];
    let mut index = Index::new(MeshOptions::default());
    let mut pods = Vec::new();
    for object in demo_objects(&files) {
        if let Object::Pod(p) = &object {
            pods.push(ProxyId {
                namespace: p.metadata.namespace.clone().unwrap(),
                pod: p.metadata.name.clone().unwrap(),
            });
        }
        let problems = index.apply(object);
        assert!(problems.is_empty(), "{problems:?}");
    }
    assert_eq!(pods.len(), 6);
    for id in pods {
        let compiled = compile(&index, &id).unwrap();
        assert!(
            compiled.warnings.is_empty(),
            "{id:?}: {:?}",
            compiled.warnings
        );
        let json = serde_json::to_string_pretty(&compiled.config).unwrap() + "\n";
        check_golden(&format!("{}_{}.json", id.namespace, id.pod), &json);
    }
}
