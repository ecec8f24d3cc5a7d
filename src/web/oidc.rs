//! The staff identity provider, found by OpenID Connect discovery.
//!
//! Discovery happens on first use and is cached, so the dashboard starts
//! (and signed-in staff keep working) while the provider is unreachable;
//! sign-in then fails with a clear page after a bounded timeout.

use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::Config;

/// Claims beyond the standard ones that admission needs: Google's hosted domain.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
    /// Microsoft Entra ID: the address' domain is verified by its owner.
    /// Entra sends it as a boolean or as the string "1"/"true".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "loose_bool"
    )]
    pub xms_edov: Option<bool>,
}

fn loose_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => Some(b),
        Some(serde_json::Value::String(s)) => match s.as_str() {
            "1" | "true" | "True" => Some(true),
            "0" | "false" | "False" => Some(false),
            _ => None,
        },
        Some(serde_json::Value::Number(n)) => n.as_i64().map(|n| n == 1),
        _ => None,
    })
}
impl AdditionalClaims for ExtraClaims {}

pub type TokenFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub type TokenResponse = StandardTokenResponse<TokenFields, CoreTokenType>;
pub type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovered metadata (and the provider's keys) are reused.
const METADATA_TTL: Duration = Duration::from_secs(3600);

pub struct OidcProvider {
    pub http: reqwest::Client,
    issuer: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_url: String,
    /// Bound on every call to the provider (`SSO_OIDC_TIMEOUT_SECONDS`).
    timeout: Duration,
    cached: RwLock<Option<(OidcClient, Instant)>>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("sign-in is not configured: {0}")]
    NotConfigured(String),
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Discovery(String),
    /// The token endpoint did not answer (refused, reset or timed out).
    #[error("the identity provider's token endpoint could not be reached: {0}")]
    Unreachable(String),
}

impl OidcProvider {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(config.oidc.timeout_secs);
        let http = reqwest::ClientBuilder::new()
            // Following redirects from the token endpoint would be an SSRF vector.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // A provider closes idle keep-alive connections (Node's servers
            // after 5 s); a code sent on one it is closing fails ("connection
            // closed before message completed") and may not be sent again
            // (a code is good once). Reused only within 2 s, none is caught
            // closing.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()?;
        Ok(OidcProvider {
            http,
            issuer: config.oidc.issuer.clone(),
            client_id: config.oidc.client_id.clone(),
            client_secret: config
                .oidc
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_string()),
            redirect_url: config.redirect_url(),
            timeout,
            cached: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client for the provider, discovering it when the cache is cold.
    pub async fn client(&self) -> Result<OidcClient, ProviderError> {
        if let Some((client, at)) = self.cached.read().await.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(client.clone());
            }
        }
        let mut slot = self.cached.write().await;
        if let Some((client, at)) = slot.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(client.clone());
            }
        }
        let client = self.discover().await?;
        *slot = Some((client.clone(), Instant::now()));
        Ok(client)
    }

    /// Drop cached metadata, e.g. after the provider rejected our keys view
    /// (it may have rotated its signing keys).
    pub async fn forget(&self) {
        *self.cached.write().await = None;
    }

    async fn discover(&self) -> Result<OidcClient, ProviderError> {
        let client_id = self
            .client_id
            .clone()
            .ok_or_else(|| ProviderError::NotConfigured("SSO_OIDC_CLIENT_ID is not set".into()))?;
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| ProviderError::NotConfigured(e.to_string()))?;
        let redirect = RedirectUrl::new(self.redirect_url.clone())
            .map_err(|e| ProviderError::NotConfigured(e.to_string()))?;
        let metadata = tokio::time::timeout(
            self.timeout,
            CoreProviderMetadata::discover_async(issuer, &self.http),
        )
        .await
        .map_err(|_| ProviderError::Discovery("timed out".into()))?
        .map_err(|e| ProviderError::Discovery(error_chain(&e)))?;
        Ok(OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }
}

/// An error with its causes, on one line, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
