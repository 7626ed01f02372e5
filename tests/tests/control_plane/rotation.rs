//! A root rotation with traffic flowing: `POST /ca/rotate`, the controller
//! restarted while the rotation is in its first phase, and every phase
//! passed with no failed request; at the end every proxy's certificate
//! chains to the new root and the bundle holds it alone.

use std::time::Instant;

use osm_controller::ca::Issuer as _;
use rustls::pki_types::CertificateDer;

use super::*;

async fn ca_report(controller: &TestController) -> serde_json::Value {
    let (status, body) = controller.admin_get("/debug/ca").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn der(pem: &str) -> CertificateDer<'static> {
    osm_proxy::identity::parse_certificates(pem.as_bytes()).unwrap()[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_rotates_under_load_without_a_failed_request_across_a_controller_restart() {
    let mut mesh = Mesh::start_on(ControlPlane::rotating(), &[], None).await;
    let old_root = der(&mesh.cp.ca.trust_bundle());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(steady_get(
        mesh.buyer.outbound(),
        "bookstore.bookstore",
        "/books",
        200,
        4,
        stop_rx,
    ));
    mesh.wait_status(&mesh.buyer, 200, "bookbuyer buys").await;

    let started = Instant::now();
    let controller = mesh.controller.take().unwrap();
    let (status, body) = controller.admin_post("/ca/rotate").await;
    assert_eq!(status, 202, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["phase"], "distributing", "{answer}");
    let new_fingerprint = answer["newRoot"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let (again, body) = controller.admin_post("/ca/rotate").await;
    assert_eq!(again, 409, "one rotation at a time: {body}");

    // The controller goes away before the phase can move on (that takes
    // at least one of its 1 s checks) and comes back from what it stored.
    controller.stop().await;
    let controller = mesh.cp.start(mesh.grpc).await;
    controller.ready().await;
    // Resumed, not started over: both roots, the new one among them (on a
    // loaded machine the proxies may already have moved it on by the time
    // this reads it: distributing or retiring, never steady).
    let resumed = ca_report(&controller).await;
    let phase = resumed["phase"].as_str().unwrap_or_default();
    assert!(matches!(phase, "distributing" | "retiring"), "{resumed}");
    let roots = resumed["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 2, "{resumed}");
    assert!(
        roots
            .iter()
            .any(|r| r["fingerprint"] == new_fingerprint.as_str()),
        "{resumed}"
    );

    let mut timeline = vec![(phase.to_string(), started.elapsed())];
    let mut seen = vec![resumed.clone()];
    let deadline = tokio::time::Instant::now() + osm_tests::patience();
    loop {
        let report = ca_report(&controller).await;
        let phase = report["phase"].as_str().unwrap().to_string();
        if timeline.last().is_none_or(|(last, _)| *last != phase) {
            timeline.push((phase.clone(), started.elapsed()));
            seen.push(report.clone());
        }
        if phase == "steady" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotation is stuck: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let retiring = seen
        .iter()
        .find(|r| r["phase"] == "retiring")
        .expect("the retiring phase was seen");
    let roots = retiring["roots"].as_array().unwrap();
    assert_eq!(
        roots[0]["fingerprint"],
        new_fingerprint.as_str(),
        "{retiring}"
    );
    assert_eq!(roots[0]["issuing"], true);

    // Traffic goes on after the old root left the bundles.
    mesh.wait_status(&mesh.buyer, 200, "bookbuyer buys after the rotation")
        .await;
    let _ = stop_tx.send(true);
    let report = load.await.unwrap();
    eprintln!(
        "osm ca status, resumed after the restart:\n{}\nosm ca status, retiring:\n{}",
        osm_cli::cluster::ca::table(&resumed),
        osm_cli::cluster::ca::table(retiring)
    );
    eprintln!(
        "rotation: {} requests, {} failed; phases (from the start): {timeline:?}\nretiring: {retiring}",
        report.ok + report.failures.len(),
        report.failures.len()
    );
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok >= 200, "only {} requests", report.ok);

    // One root, the new one, and nothing live from the old one.
    let done = ca_report(&controller).await;
    let roots = done["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{done}");
    assert_eq!(roots[0]["fingerprint"], new_fingerprint.as_str());
    assert_eq!(roots[0]["liveCertificates"], 3, "{done}");
    for proxy in [&mesh.store, &mesh.buyer, &mesh.thief] {
        let bundle = proxy.shared.config().trust_bundle.clone();
        assert_eq!(bundle.len(), 1, "the proxy trusts the new root alone");
        assert_ne!(bundle[0], old_root);
        let chain = proxy.shared.credentials().unwrap().chain.clone();
        assert!(osm_api::pki::chains_to(&chain, &bundle[0]));
        assert!(!osm_api::pki::chains_to(&chain, &old_root));
    }
    // The new certificates are real: policy still decides.
    assert_eq!(Mesh::status(&mesh.thief).await, 403);
    let (_, metrics) = controller.admin_get("/metrics").await;
    assert_eq!(
        osm_tests::metric_value(
            &metrics,
            "osm_controller_ca_rotation_phase",
            &[("phase", "steady")]
        ),
        1.0
    );
    mesh.controller = Some(controller);
}
