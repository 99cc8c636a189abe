//! MCP authorization for callers (OAuth 2.1 resource server): access tokens are JWTs from the
//! configured issuer, checked against its JWKS for signature, issuer, audience (this server's
//! resource identifier, RFC 8707), expiry and scope; the user comes from a configured claim.
//! Clients find the authorization server through RFC 9728 metadata. Tokens are only checked
//! here: they are never passed on to upstream APIs.
//!
//! Checking stays synchronous (it runs while a request is routed), so the key set is fetched
//! at start and then kept fresh in the background — periodically, and soon after a token names
//! a key that is not known yet.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::config::OAuthAccessSettings;
use crate::ids;

/// How often the key set is fetched again, and the least time between fetches caused by
/// unknown key ids (so forged tokens cannot make us hammer the issuer).
const REFRESH_EVERY: Duration = Duration::from_secs(600);
const MIN_REFETCH: Duration = Duration::from_secs(30);

/// Why a token was refused; the text is safe to send back (it never holds the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    #[error("{0}")]
    Invalid(String),
    #[error("the token lacks the scope {0:?}")]
    InsufficientScope(String),
}

/// The caller a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub user_id: String,
}

pub struct ResourceServer {
    settings: OAuthAccessSettings,
    client: reqwest::Client,
    keys: RwLock<JwkSet>,
    last_fetch: RwLock<Option<Instant>>,
}

impl ResourceServer {
    pub fn new(settings: OAuthAccessSettings, client: reqwest::Client) -> Arc<ResourceServer> {
        Arc::new(ResourceServer {
            settings,
            client,
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
            last_fetch: RwLock::new(None),
        })
    }

    /// Fetches the issuer's key set now; a failure is logged and the old set kept.
    pub async fn refresh(&self) {
        if let Ok(mut last) = self.last_fetch.write() {
            *last = Some(Instant::now());
        }
        let fetched = async {
            let response = self
                .client
                .get(&self.settings.jwks_url)
                .send()
                .await
                .map_err(|err| err.without_url().to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status().as_u16()));
            }
            response
                .json::<JwkSet>()
                .await
                .map_err(|err| format!("not a key set: {}", err.without_url()))
        }
        .await;
        match fetched {
            Ok(keys) => {
                if let Ok(mut current) = self.keys.write() {
                    *current = keys;
                }
            }
            Err(reason) => tracing::warn!(
                jwks = %self.settings.jwks_url,
                %reason,
                "cannot fetch the token issuer's keys; tokens are checked against the last keys known"
            ),
        }
    }

    /// Keeps the key set fresh for as long as the service runs.
    pub fn keep_fresh(self: &Arc<Self>) {
        let server = self.clone();
        actix_rt::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                server.refresh().await;
            }
        });
    }

    /// Fetches the key set again soon, unless that was done very recently.
    fn refetch_soon(self: &Arc<Self>) {
        let recent = self
            .last_fetch
            .read()
            .ok()
            .and_then(|last| *last)
            .is_some_and(|at| at.elapsed() < MIN_REFETCH);
        if !recent {
            let server = self.clone();
            actix_rt::spawn(async move { server.refresh().await });
        }
    }

    /// Checks a bearer token and names its user.
    pub fn check(self: &Arc<Self>, token: &str) -> Result<TokenUser, TokenRejected> {
        let invalid = |why: &str| TokenRejected::Invalid(why.to_owned());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is not a JWT"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(invalid("the token's algorithm is not accepted"));
        }
        let key = {
            let keys = self
                .keys
                .read()
                .map_err(|_| invalid("the issuer's keys are unavailable"))?;
            let jwk = match &header.kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            };
            match jwk {
                Some(jwk) if asymmetric(&jwk.algorithm) => DecodingKey::from_jwk(jwk)
                    .map_err(|_| invalid("the issuer's key cannot be used"))?,
                Some(_) => return Err(invalid("the issuer's key is not an asymmetric key")),
                None => {
                    self.refetch_soon();
                    return Err(invalid("the token was signed with an unknown key"));
                }
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                invalid(match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::InvalidAudience => {
                        "the token is not meant for this server (audience)"
                    }
                    ErrorKind::InvalidIssuer => "the token comes from another issuer",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    _ => "the token is not valid",
                })
            })?
            .claims;
        let granted = scopes(&claims);
        if let Some(missing) = self
            .settings
            .required_scopes
            .iter()
            .find(|scope| !granted.contains(scope.as_str()))
        {
            return Err(TokenRejected::InsufficientScope(missing.clone()));
        }
        let user_id = claims
            .get(&self.settings.user_claim)
            .and_then(Value::as_str)
            .filter(|user| ids::validate_user_id(user).is_ok())
            .ok_or_else(|| {
                invalid(&format!(
                    "the token's {:?} claim is missing or not a valid user id",
                    self.settings.user_claim
                ))
            })?;
        Ok(TokenUser {
            user_id: user_id.to_owned(),
        })
    }

    /// The RFC 9728 metadata document, for the resource itself or a path under it.
    pub fn metadata(&self, path: Option<&str>) -> Value {
        let resource = match path.filter(|p| !p.is_empty()) {
            Some(path) => format!(
                "{}/{}",
                self.settings.resource.trim_end_matches('/'),
                path.trim_start_matches('/')
            ),
            None => self.settings.resource.clone(),
        };
        json!({
            "resource": resource,
            "authorization_servers": [self.settings.issuer],
            "scopes_supported": self.settings.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }

    /// The `WWW-Authenticate` value for a refusal.
    pub fn challenge(&self, rejected: Option<&TokenRejected>) -> String {
        let metadata = format!(
            "{}/.well-known/oauth-protected-resource",
            self.settings.resource.trim_end_matches('/')
        );
        match rejected {
            None => format!("Bearer resource_metadata=\"{metadata}\""),
            Some(TokenRejected::Invalid(_)) => {
                format!("Bearer error=\"invalid_token\", resource_metadata=\"{metadata}\"")
            }
            Some(TokenRejected::InsufficientScope(scope)) => format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{metadata}\""
            ),
        }
    }
}

/// Only signature keys whose private half the issuer alone holds; a shared secret would let
/// anyone who can read the key set mint tokens.
fn asymmetric(parameters: &AlgorithmParameters) -> bool {
    matches!(
        parameters,
        AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_)
    )
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
