//! Proof of identity: the token a proxy sends with its CSR.
//!
//! On Kubernetes the token is the pod's projected ServiceAccount token
//! (audience `osm-controller`), checked with the TokenReview API. In local
//! mode the runtime mints tokens with [`LocalTokens`], an HMAC-SHA256 key
//! it shares with the controller; they are checked the same way and say the
//! same things: namespace, pod, ServiceAccount, audience, expiry.

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::hmac;

/// The audience proxies' tokens are minted for.
pub use osm_api::compat::TOKEN_AUDIENCE as AUDIENCE;
const PREFIX: &str = "osm-local";

/// What a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    pub namespace: String,
    pub pod: String,
    pub service_account: String,
}

/// Why a token proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token expired at {0} (Unix time)")]
    Expired(u64),
    #[error("the token is for audience {0:?}, not {AUDIENCE:?}")]
    WrongAudience(String),
    #[error("token review failed: {0}")]
    Review(String),
    #[error("the token is {0} bytes, more than any ServiceAccount token ({MAX_TOKEN_BYTES})")]
    TooLong(usize),
}

/// Longer tokens are refused before any review (a projected ServiceAccount
/// token is about 1 KiB; the API server is not asked to parse megabytes).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Checks tokens; the Kubernetes implementation calls TokenReview.
pub trait TokenReviewer: Send + Sync {
    fn review<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PodIdentity, TokenError>> + Send + 'a>>;
}

/// Local-mode tokens, signed with a key shared by runtime and controller.
pub struct LocalTokens {
    key: hmac::Key,
}

impl std::fmt::Debug for LocalTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTokens").finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl LocalTokens {
    pub fn from_key(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The key kept in `dir/token.key` (32 random bytes, owner-only), made
    /// on first use.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("token.key");
        if let Ok(secret) = std::fs::read(&path) {
            return Ok(Self::from_key(&secret));
        }
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| std::io::Error::other("no randomness available"))?;
        std::fs::create_dir_all(dir)?;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::io::Write::write_all(&mut f, &secret)?;
        Ok(Self::from_key(&secret))
    }

    /// A token for a pod, valid for `ttl`.
    pub fn mint(&self, id: &PodIdentity, audience: &str, ttl: Duration) -> String {
        let expiry = now() + ttl.as_secs();
        let payload = [
            audience,
            &id.namespace,
            &id.pod,
            &id.service_account,
            &expiry.to_string(),
        ]
        .join("\n");
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{PREFIX}.{}.{}",
            B64.encode(payload),
            B64.encode(tag.as_ref())
        )
    }

    /// Checks a token now.
    pub fn check(&self, token: &str) -> Result<PodIdentity, TokenError> {
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| TokenError::BadSignature)?;
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let fields: Vec<&str> = payload.split('\n').collect();
        let [audience, namespace, pod, service_account, expiry] = fields.as_slice() else {
            return Err(TokenError::Malformed);
        };
        if *audience != AUDIENCE {
            return Err(TokenError::WrongAudience(audience.to_string()));
        }
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        if expiry <= now() {
            return Err(TokenError::Expired(expiry));
        }
        Ok(PodIdentity {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            service_account: service_account.to_string(),
        })
    }
}

impl TokenReviewer for LocalTokens {
    fn review<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PodIdentity, TokenError>> + Send + 'a>> {
        Box::pin(std::future::ready(self.check(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> PodIdentity {
        PodIdentity {
            namespace: "bookstore".into(),
            pod: "bookstore-v1-abc".into(),
            service_account: "bookstore".into(),
        }
    }

    #[test]
    fn a_minted_token_proves_its_pod() {
        let tokens = LocalTokens::from_key(b"k");
        let token = tokens.mint(&me(), AUDIENCE, Duration::from_secs(60));
        assert_eq!(tokens.check(&token), Ok(me()));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let tokens = LocalTokens::from_key(b"k");
        let other = LocalTokens::from_key(b"another key");
        assert_eq!(
            tokens.check(&other.mint(&me(), AUDIENCE, Duration::from_secs(60))),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            tokens.check(&tokens.mint(&me(), AUDIENCE, Duration::ZERO)),
            Err(TokenError::Expired(_))
        ));
        assert_eq!(
            tokens.check(&tokens.mint(&me(), "kubernetes", Duration::from_secs(60))),
            Err(TokenError::WrongAudience("kubernetes".into()))
        );
        // Changing the claims breaks the signature.
        let token = tokens.mint(&me(), AUDIENCE, Duration::from_secs(60));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(format!(
            "{AUDIENCE}\nbookstore\nbookstore-v1-abc\nadmin\n99999999999"
        ));
        parts[1] = &forged;
        assert_eq!(
            tokens.check(&parts.join(".")),
            Err(TokenError::BadSignature)
        );
        for junk in [
            "",
            "osm-local",
            "osm-local.a.b.c",
            "jwt.eyJ.x",
            "osm-local.!!.!!",
        ] {
            assert_eq!(tokens.check(junk), Err(TokenError::Malformed), "{junk:?}");
        }
    }

    #[test]
    fn the_key_is_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = LocalTokens::load_or_create(dir.path()).expect("creates");
        let token = first.mint(&me(), AUDIENCE, Duration::from_secs(60));
        let second = LocalTokens::load_or_create(dir.path()).expect("loads");
        assert_eq!(second.check(&token), Ok(me()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("token.key"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
