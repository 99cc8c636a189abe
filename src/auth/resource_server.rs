//! MCP authorization for callers (OAuth 2.1 resource server): access tokens are JWTs from the
//! configured issuer, checked against its JWKS for signature, issuer, audience (this server's
//! resource identifier, RFC 8707), expiry and scope; the user comes from a configured claim.
//! Clients find the authorization server through RFC 9728 metadata. Tokens are only checked
//! here: they are never passed on to upstream APIs.
//!
//! Checking stays synchronous (it runs while a request is routed), so the key set is fetched
//! at start and then kept fresh in the background: every [`REFRESH_EVERY`] (every
//! [`MIN_REFETCH`] while no key is known yet), and soon after a token names a key that is not
//! known — at most once per [`MIN_REFETCH`], so forged tokens cannot make us hammer the issuer.
//!
//! Only asymmetric signatures are accepted — RS256, ES256 (P-256) and EdDSA (Ed25519) — and a
//! token's `alg` must be the one its key is for (the JWK's `alg`, or its `kty`/`crv`): a key set
//! is public, so a shared-secret (HMAC) key in it would let anyone mint tokens.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::config::OAuthAccessSettings;
use crate::ids;
use crate::upstream::{read_capped, ReadError};

/// How often the key set is fetched again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);
/// The least time between fetches asked for by unknown key ids; also the retry period while
/// no key is known.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// The longest a fetch of the key set may take (it also delays `serve`'s start, once).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A key set larger than this is refused (a few keys take a few kilobytes). Its own bound,
/// far under `servers.max_response_bytes`: the issuer's key set never needs more.
const MAX_KEY_SET_BYTES: usize = 1 << 20;
/// The signature algorithms accepted.
const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a token was refused; the text is safe to send back (it never holds the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted (RS256, ES256 or EdDSA)")]
    Algorithm(Algorithm),
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token's algorithm is not the one of its key")]
    KeyMismatch,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this server (audience)")]
    Audience,
    #[error("the token comes from another issuer")]
    Issuer,
    #[error("the token has no {0:?} claim")]
    MissingClaim(String),
    #[error("the token's {0:?} claim is missing or not a valid user id")]
    User(String),
    #[error("the token is not valid")]
    Invalid,
    /// Valid, but without every scope this server requires (403); holds them all, space
    /// separated, as the challenge's `scope`.
    #[error("the token lacks a scope this server requires (needed: {0})")]
    InsufficientScope(String),
}

/// The caller a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub user_id: String,
}

/// Why the key set could not be fetched (logged, never sent to callers).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Network(String),
    #[error("no answer within {} s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error("HTTP {0}")]
    Status(u16),
    #[error("the key set is over {MAX_KEY_SET_BYTES} bytes")]
    TooLarge,
    #[error("not a key set: {0}")]
    NotAKeySet(String),
}

/// One of the issuer's signing keys, ready to verify with.
#[derive(Clone)]
struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The `oauth` access mode: checks callers' tokens, answers the metadata and the challenges.
pub struct ResourceServer {
    settings: OAuthAccessSettings,
    client: reqwest::Client,
    /// The issuer's usable keys; replaced whole by each successful fetch.
    keys: RwLock<Arc<[SigningKey]>>,
    /// When a token with an unknown key last caused a fetch.
    last_demand: Mutex<Option<Instant>>,
    /// The RFC 9728 well-known URL of `settings.resource` (sent in every challenge).
    metadata_url: String,
    /// `scheme://host[:port]` of `settings.resource`.
    origin: String,
}

impl ResourceServer {
    /// A resource server for `settings` (already validated by the config loader); no key is
    /// known until [`ResourceServer::refresh`] has run.
    pub fn new(settings: OAuthAccessSettings, client: reqwest::Client) -> Arc<ResourceServer> {
        let (origin, path) = match reqwest::Url::parse(&settings.resource) {
            Ok(url) => (
                url.origin().ascii_serialization(),
                url.path().trim_end_matches('/').to_owned(),
            ),
            Err(_) => (
                settings.resource.trim_end_matches('/').to_owned(),
                String::new(),
            ),
        };
        // RFC 9728 §3.1: the well-known segment goes between the host and the path.
        let metadata_url = format!("{origin}/.well-known/oauth-protected-resource{path}");
        Arc::new(ResourceServer {
            settings,
            client,
            keys: RwLock::new(Arc::from(Vec::new())),
            last_demand: Mutex::new(None),
            metadata_url,
            origin,
        })
    }

    /// Fetches the issuer's key set now; a failure is logged and the old set kept.
    pub async fn refresh(&self) {
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.download())
            .await
            .unwrap_or(Err(FetchError::Timeout));
        match fetched {
            Ok(keys) => {
                if keys.is_empty() {
                    tracing::warn!(
                        jwks = %self.settings.jwks_url,
                        "the token issuer's key set has no usable signing key (RS256, ES256 \
                         or EdDSA); every token is refused"
                    );
                } else {
                    tracing::debug!(count = keys.len(), "fetched the token issuer's keys");
                }
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::from(keys);
            }
            Err(reason) => {
                let known = self.key_count();
                tracing::warn!(
                    jwks = %self.settings.jwks_url,
                    %reason,
                    known_keys = known,
                    "cannot fetch the token issuer's keys (access.oauth.jwks_url); {}",
                    if known == 0 {
                        format!(
                            "every token is refused until a fetch succeeds (retried every {} s)",
                            MIN_REFETCH.as_secs()
                        )
                    } else {
                        "tokens are checked against the keys fetched before".to_owned()
                    }
                );
            }
        }
    }

    /// Keeps the key set fresh for as long as the service runs: every [`REFRESH_EVERY`], or
    /// every [`MIN_REFETCH`] while no key is known.
    pub fn keep_fresh(self: &Arc<Self>) {
        let server = self.clone();
        actix_rt::spawn(async move {
            loop {
                let wait = if server.key_count() == 0 {
                    MIN_REFETCH
                } else {
                    REFRESH_EVERY
                };
                tokio::time::sleep(wait).await;
                server.refresh().await;
            }
        });
    }

    /// How many usable keys are known.
    pub fn key_count(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn download(&self) -> Result<Vec<SigningKey>, FetchError> {
        let response = self
            .client
            .get(&self.settings.jwks_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(network)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let body = read_capped(response, MAX_KEY_SET_BYTES)
            .await
            .map_err(|err| match err {
                ReadError::TooLarge { .. } => FetchError::TooLarge,
                ReadError::Cut(err) => network(err),
            })?;
        // Each key on its own: one key of a kind we do not know must not hide the others.
        #[derive(serde::Deserialize)]
        struct RawSet {
            keys: Vec<Value>,
        }
        let set: RawSet =
            serde_json::from_slice(&body).map_err(|err| FetchError::NotAKeySet(err.to_string()))?;
        Ok(set.keys.into_iter().filter_map(signing_key).collect())
    }

    /// Claims the right to fetch the key set for an unknown key: false if one such fetch
    /// started within [`MIN_REFETCH`]. Claiming and recording happen under one lock, so
    /// concurrent requests with unknown keys start one fetch between them. (The start-up and
    /// periodic fetches do not count: a key published just after them is found at once.)
    fn claim_fetch(&self) -> bool {
        let mut last = self
            .last_demand
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Fetches the key set again in the background, unless that was done very recently.
    fn refetch_soon(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.claim_fetch() {
            let server = self.clone();
            runtime.spawn(async move { server.refresh().await });
        }
    }

    /// Checks a bearer token sent to `endpoint` (the request's path) and names its user.
    ///
    /// The audience must be the configured resource, or the resource of this very endpoint
    /// (what a client gets from the endpoint's per-path metadata).
    pub fn check(
        self: &Arc<Self>,
        token: &str,
        endpoint: &str,
    ) -> Result<TokenUser, TokenRejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejected::Malformed)?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(TokenRejected::Algorithm(header.alg));
        }
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let found = match &header.kid {
            Some(kid) => keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
            // Without a key id, only an unambiguous key will do.
            None => {
                let mut fitting = keys.iter().filter(|key| key.alg == header.alg);
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Some(key),
                    _ => None,
                }
            }
        };
        let Some(key) = found else {
            self.refetch_soon();
            return Err(TokenRejected::UnknownKey);
        };
        if key.alg != header.alg {
            return Err(TokenRejected::KeyMismatch);
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[
            self.settings.resource.clone(),
            self.endpoint_resource(endpoint),
        ]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenRejected::Expired,
                ErrorKind::ImmatureSignature => TokenRejected::NotYetValid,
                ErrorKind::InvalidAudience => TokenRejected::Audience,
                ErrorKind::InvalidIssuer => TokenRejected::Issuer,
                ErrorKind::InvalidSignature => TokenRejected::Signature,
                ErrorKind::InvalidAlgorithm => TokenRejected::KeyMismatch,
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenRejected::MissingClaim(claim.clone())
                }
                _ => TokenRejected::Invalid,
            })?
            .claims;
        let user_id = claims
            .get(&self.settings.user_claim)
            .and_then(Value::as_str)
            .filter(|user| ids::validate_user_id(user).is_ok())
            .ok_or_else(|| TokenRejected::User(self.settings.user_claim.clone()))?;
        let granted = scopes(&claims);
        let required = &self.settings.required_scopes;
        if !required
            .iter()
            .all(|scope| granted.contains(scope.as_str()))
        {
            return Err(TokenRejected::InsufficientScope(required.join(" ")));
        }
        Ok(TokenUser {
            user_id: user_id.to_owned(),
        })
    }

    /// The resource identifier of one endpoint: the configured resource followed by its path.
    fn endpoint_resource(&self, endpoint: &str) -> String {
        format!(
            "{}/{}",
            self.settings.resource.trim_end_matches('/'),
            endpoint.trim_start_matches('/')
        )
    }

    /// The RFC 9728 metadata document: for the configured resource (`path` absent), or for
    /// the resource at `path` on the same origin (the per-path well-known form).
    pub fn metadata(&self, path: Option<&str>) -> Value {
        let resource = match path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
            Some(path) => format!("{}/{path}", self.origin),
            None => self.settings.resource.clone(),
        };
        json!({
            "resource": resource,
            "authorization_servers": [self.settings.issuer],
            "scopes_supported": self.settings.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }

    /// The `WWW-Authenticate` value for a refusal: `None` when no token was sent.
    pub fn challenge(&self, rejected: Option<&TokenRejected>) -> String {
        let mut parts = Vec::with_capacity(3);
        match rejected {
            None => {}
            Some(TokenRejected::InsufficientScope(_)) => {
                parts.push("error=\"insufficient_scope\"".to_owned())
            }
            Some(_) => parts.push("error=\"invalid_token\"".to_owned()),
        }
        if !self.settings.required_scopes.is_empty() {
            parts.push(format!(
                "scope=\"{}\"",
                self.settings.required_scopes.join(" ")
            ));
        }
        parts.push(format!("resource_metadata=\"{}\"", self.metadata_url));
        format!("Bearer {}", parts.join(", "))
    }
}

/// A network failure with its causes ("error sending request: … Connection refused"), and
/// without the URL (already logged beside it).
fn network(err: reqwest::Error) -> FetchError {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchError::Network(text)
}

/// A usable signing key from one JWK, or `None` (wrong use, unsupported kind, bad numbers).
fn signing_key(jwk: Value) -> Option<SigningKey> {
    let jwk: Jwk = serde_json::from_value(jwk).ok()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|usage| *usage != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = algorithm_of(&jwk)?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(SigningKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// The algorithm a key is for, from its type and curve, checked against its `alg` if it names
/// one; `None` for anything but RS256, ES256 (P-256) and EdDSA (Ed25519).
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let by_kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => return Some(by_kind),
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    (declared == by_kind).then_some(by_kind)
}

/// The scopes a token grants: `scope` (space separated) or `scp` (a list).
fn scopes(claims: &Value) -> HashSet<&str> {
    let mut granted: HashSet<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|text| text.split_whitespace().collect())
        .unwrap_or_default();
    if let Some(list) = claims.get("scp").and_then(Value::as_array) {
        granted.extend(list.iter().filter_map(Value::as_str));
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(resource: &str, required: &[&str]) -> OAuthAccessSettings {
        OAuthAccessSettings {
            issuer: "https://auth.example.com".into(),
            jwks_url: "https://auth.example.com/jwks".into(),
            resource: resource.into(),
            user_claim: "sub".into(),
            required_scopes: required.iter().map(|s| s.to_string()).collect(),
            scopes_supported: vec!["mcp".into()],
            leeway_secs: 30,
        }
    }

    fn server(resource: &str, required: &[&str]) -> Arc<ResourceServer> {
        ResourceServer::new(settings(resource, required), reqwest::Client::new())
    }

    #[test]
    fn challenges_point_at_the_well_known_metadata_and_name_the_scopes() {
        let origin = server("https://mcp.example.com", &[]);
        assert_eq!(
            origin.challenge(None),
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\""
        );
        let pathed = server("https://mcp.example.com/gumcp/", &["mcp", "files:read"]);
        assert_eq!(
            pathed.challenge(Some(&TokenRejected::Expired)),
            "Bearer error=\"invalid_token\", scope=\"mcp files:read\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/gumcp\""
        );
        assert!(pathed
            .challenge(Some(&TokenRejected::InsufficientScope("mcp".into())))
            .starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp files:read\""));
    }

    #[test]
    fn metadata_describes_the_resource_or_the_path_asked_for() {
        let rs = server("https://mcp.example.com/gumcp", &[]);
        let root = rs.metadata(None);
        assert_eq!(root["resource"], "https://mcp.example.com/gumcp");
        assert_eq!(
            root["authorization_servers"],
            json!(["https://auth.example.com"])
        );
        assert_eq!(root["bearer_methods_supported"], json!(["header"]));
        assert_eq!(root["scopes_supported"], json!(["mcp"]));
        assert_eq!(
            rs.metadata(Some("gumcp"))["resource"],
            "https://mcp.example.com/gumcp"
        );
        assert_eq!(
            rs.metadata(Some("gumcp/linear/mcp"))["resource"],
            "https://mcp.example.com/gumcp/linear/mcp"
        );
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = json!({ "scope": "a  b", "scp": ["c", 1] });
        let granted = scopes(&claims);
        assert_eq!(granted, HashSet::from(["a", "b", "c"]));
        assert!(scopes(&json!({})).is_empty());
    }

    #[test]
    fn only_asymmetric_signing_keys_of_the_accepted_kinds_are_used() {
        let ed = json!({ "kty": "OKP", "crv": "Ed25519", "kid": "e",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" });
        assert_eq!(signing_key(ed.clone()).unwrap().alg, Algorithm::EdDSA);
        let mut declared_other = ed.clone();
        declared_other["alg"] = json!("ES256");
        assert!(
            signing_key(declared_other).is_none(),
            "alg must fit the key"
        );
        let mut encryption = ed;
        encryption["use"] = json!("enc");
        assert!(
            signing_key(encryption).is_none(),
            "encryption keys are skipped"
        );
        let secret = json!({ "kty": "oct", "k": "c2VjcmV0", "alg": "HS256" });
        assert!(
            signing_key(secret).is_none(),
            "shared secrets are never used"
        );
        let p384 = json!({ "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA" });
        assert!(signing_key(p384).is_none());
        assert!(signing_key(json!({ "kty": "weird" })).is_none());
    }

    #[test]
    fn a_token_is_refused_without_leaking_it_and_unknown_keys_are_named() {
        let rs = server("https://mcp.example.com", &[]);
        assert_eq!(rs.check("nope", "/x/mcp"), Err(TokenRejected::Malformed));
        // A well-formed HS256 token: refused for its algorithm before any key is looked up.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &json!({ "sub": "a" }),
            &jsonwebtoken::EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(
            rs.check(&hs, "/x/mcp"),
            Err(TokenRejected::Algorithm(Algorithm::HS256))
        );
        assert!(!TokenRejected::Algorithm(Algorithm::HS256)
            .to_string()
            .contains(&hs));
    }

    #[test]
    fn unknown_keys_ask_for_one_refetch_at_a_time() {
        let rs = server("https://mcp.example.com", &[]);
        assert!(rs.claim_fetch());
        assert!(!rs.claim_fetch(), "a second fetch waits for MIN_REFETCH");
    }
}
