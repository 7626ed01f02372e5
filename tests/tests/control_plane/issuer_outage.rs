//! What the Vault and cert-manager tests share: the issuer's report on
//! `/debug/ca`, and an outage ridden out under load.

use std::future::Future;

use super::*;

/// `/debug/ca`'s `issuer`.
pub async fn issuer_report(controller: &TestController) -> serde_json::Value {
    let (status, body) = controller.admin_get("/debug/ca").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["issuer"].clone()
}

/// With the issuer down (the caller took it down), drives 100 requests/s
/// through bookbuyer until a renewal fails and the controller reports
/// `expected_error`; checks a new connection still works; calls `restore`
/// and waits until `renewed`; then no request may have failed.
pub async fn ride_out<F, Fut>(mesh: &Mesh, expected_error: &str, restore: impl FnOnce(), renewed: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<()>>,
{
    let controller = mesh.controller.as_ref().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(steady_get(
        mesh.buyer.outbound(),
        "bookstore.bookstore",
        "/books",
        100,
        2,
        stop_rx,
    ));
    let down = eventually("a renewal the issuer did not sign", || async {
        let report = issuer_report(controller).await;
        (report["consecutiveFailures"].as_u64() > Some(0)).then_some(report)
    })
    .await;
    assert!(
        down["lastError"].as_str().unwrap().contains(expected_error),
        "{down}"
    );
    assert_eq!(
        Mesh::status(&mesh.thief).await,
        403,
        "new connections still work"
    );
    restore();
    eventually("every proxy renewed once the issuer is back", renewed).await;
    let _ = stop_tx.send(true);
    let report = load.await.unwrap();
    assert!(
        report.failures.is_empty(),
        "failed during the outage: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok > 50, "only {} requests", report.ok);
    eventually("the issuer reported healthy again", || async {
        (issuer_report(controller).await["consecutiveFailures"] == 0).then_some(())
    })
    .await;
}
