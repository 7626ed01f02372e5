//! Proof of identity on Kubernetes: the pod's projected ServiceAccount
//! token, checked by the API server (TokenReview) for the audience
//! `osm-controller`, bound to a pod that runs as that ServiceAccount.

use std::{future::Future, pin::Pin};

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus},
    core::v1::Pod,
};
use kube::{Api, Client, api::PostParams};

use crate::token::{AUDIENCE, PodIdentity, TokenError, TokenReviewer};

const POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const POD_UID: &str = "authentication.kubernetes.io/pod-uid";
const SA_PREFIX: &str = "system:serviceaccount:";

/// Checks tokens with the API server.
#[derive(Clone)]
pub struct KubeTokens {
    client: Client,
}

impl std::fmt::Debug for KubeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTokens").finish_non_exhaustive()
    }
}

/// What a TokenReview's status proves: namespace, ServiceAccount, pod name
/// and (when the token carries it) pod UID. Pure, for table tests.
pub fn identity_of(
    status: &TokenReviewStatus,
) -> Result<(PodIdentity, Option<String>), TokenError> {
    if status.authenticated != Some(true) {
        let why = status
            .error
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "the API server did not authenticate it".into());
        return Err(TokenError::Review(why));
    }
    let audiences = status.audiences.clone().unwrap_or_default();
    if !audiences.iter().any(|a| a == AUDIENCE) {
        return Err(TokenError::WrongAudience(audiences.join(",")));
    }
    let user = status
        .user
        .as_ref()
        .ok_or_else(|| TokenError::Review("the review names no user".into()))?;
    let username = user.username.clone().unwrap_or_default();
    let (namespace, service_account) = username
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(|| TokenError::Review(format!("{username:?} is not a ServiceAccount")))?;
    let extra = user.extra.clone().unwrap_or_default();
    let first = |key: &str| extra.get(key).and_then(|v| v.first()).cloned();
    let pod = first(POD_NAME).ok_or_else(|| {
        TokenError::Review(
            "the token is not bound to a pod: mount a projected ServiceAccount token".into(),
        )
    })?;
    Ok((
        PodIdentity {
            namespace: namespace.into(),
            pod,
            service_account: service_account.into(),
        },
        first(POD_UID),
    ))
}

impl KubeTokens {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn check(&self, token: &str) -> Result<PodIdentity, TokenError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![AUDIENCE.into()]),
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| TokenError::Review(format!("TokenReview failed: {e}")))?;
        let status = reviewed
            .status
            .ok_or_else(|| TokenError::Review("TokenReview returned no status".into()))?;
        let (identity, uid) = identity_of(&status)?;
        // The pod must still exist and run as that ServiceAccount.
        let pod = Api::<Pod>::namespaced(self.client.clone(), &identity.namespace)
            .get_opt(&identity.pod)
            .await
            .map_err(|e| TokenError::Review(format!("reading the pod: {e}")))?
            .ok_or_else(|| {
                TokenError::Review(format!(
                    "pod {}/{} does not exist",
                    identity.namespace, identity.pod
                ))
            })?;
        let runs_as = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        if runs_as != identity.service_account {
            return Err(TokenError::Review(format!(
                "pod {}/{} runs as {runs_as}, not {}",
                identity.namespace, identity.pod, identity.service_account
            )));
        }
        if let Some(uid) = uid
            && pod.metadata.uid.as_deref() != Some(uid.as_str())
        {
            return Err(TokenError::Review(format!(
                "the token was issued to an earlier pod named {}/{}",
                identity.namespace, identity.pod
            )));
        }
        Ok(identity)
    }
}

impl TokenReviewer for KubeTokens {
    fn review<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PodIdentity, TokenError>> + Send + 'a>> {
        Box::pin(self.check(token))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::kubernetes::fake::FakeApi;

    fn reviewer() -> (FakeApi, KubeTokens) {
        let fake = FakeApi::new();
        fake.put(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "buyer-0", "namespace": "shop", "uid": "uid-1"},
            "spec": {"serviceAccountName": "buyer", "containers": [{"name": "app", "image": "x"}]},
        }));
        fake.on_token_review(|spec: &Value| {
            if spec["audiences"] != json!([AUDIENCE]) {
                return json!({"authenticated": false, "error": "audience not requested"});
            }
            let user = |sa: &str, pod: &str, uid: &str| {
                json!({
                    "authenticated": true,
                    "audiences": [AUDIENCE],
                    "user": {
                        "username": format!("system:serviceaccount:shop:{sa}"),
                        "extra": {POD_NAME: [pod], POD_UID: [uid]},
                    },
                })
            };
            match spec["token"].as_str().unwrap_or("") {
                "good" => user("buyer", "buyer-0", "uid-1"),
                "stale" => user("buyer", "buyer-0", "uid-0"),
                "other-sa" => user("store", "buyer-0", "uid-1"),
                "gone" => user("buyer", "buyer-1", "uid-9"),
                "legacy" => json!({
                    "authenticated": true, "audiences": [AUDIENCE],
                    "user": {"username": "system:serviceaccount:shop:buyer"},
                }),
                "human" => json!({
                    "authenticated": true, "audiences": [AUDIENCE],
                    "user": {"username": "alice"},
                }),
                "wrong-audience" => json!({
                    "authenticated": true, "audiences": ["kubernetes"],
                    "user": {"username": "system:serviceaccount:shop:buyer"},
                }),
                _ => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        });
        let client = fake.client();
        (fake, KubeTokens::new(client))
    }

    #[tokio::test]
    async fn a_bound_token_proves_its_pod_and_nothing_else() {
        let (fake, tokens) = reviewer();
        assert_eq!(
            tokens.review("good").await,
            Ok(PodIdentity {
                namespace: "shop".into(),
                pod: "buyer-0".into(),
                service_account: "buyer".into(),
            })
        );
        assert!(
            fake.requests()
                .iter()
                .any(|r| r == "POST /apis/authentication.k8s.io/v1/tokenreviews?"
                    || r == "POST /apis/authentication.k8s.io/v1/tokenreviews"),
            "{:?}",
            fake.requests()
        );
        let refused = |token: &'static str| {
            let tokens = tokens.clone();
            async move { tokens.review(token).await.unwrap_err().to_string() }
        };
        assert!(refused("forged").await.contains("invalid bearer token"));
        assert!(refused("stale").await.contains("earlier pod"));
        assert!(
            refused("other-sa")
                .await
                .contains("runs as buyer, not store")
        );
        assert!(
            refused("gone")
                .await
                .contains("pod shop/buyer-1 does not exist")
        );
        assert!(refused("legacy").await.contains("not bound to a pod"));
        assert!(
            refused("human")
                .await
                .contains("\"alice\" is not a ServiceAccount")
        );
        assert_eq!(
            tokens.review("wrong-audience").await,
            Err(TokenError::WrongAudience("kubernetes".into()))
        );
    }

    #[tokio::test]
    async fn the_ca_is_made_once_and_kept_in_its_secret() {
        let fake = FakeApi::new();
        let first = crate::kubernetes::ca_secret::SecretStore::new(fake.client(), "osm-system")
            .load_or_create("osm", std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(
            fake.requests()
                .iter()
                .any(|r| r.starts_with("POST /api/v1/namespaces/osm-system/secrets")),
            "{:?}",
            fake.requests()
        );
        let second = crate::kubernetes::ca_secret::SecretStore::new(fake.client(), "osm-system")
            .load_or_create("osm", std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(first, second, "the stored CA is reused");
    }
}
