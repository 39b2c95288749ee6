//! Single sign-on through an organization's OpenID Connect provider: an owner sets the issuer,
//! the client id and secret (the secret kept by `sso_secrets`, never in the log) and whether
//! members must use it; `GET /v1/sso/{org}/start` sends the browser to the provider with
//! `state`, `nonce` and a PKCE challenge; `GET /v1/sso/callback` checks what comes back
//! (`oidc`) and signs in the member — or, on a first sign-in, the invited email, which joins.

use axum::extract::{Path, State};
use axum::http::header::{HOST, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use domain::organization::{Organization, OrganizationCommand};
use domain::values::{DisplayName, Email, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::client::DeviceOf;
use crate::consistency;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, Params};
use crate::idempotency::IdempotencyKey;
use crate::limits;
use crate::oidc::{self, OidcError};
use crate::openapi::{Route, Routes};
use crate::routes::accounts::{create_sso_account, find_account};
use crate::secrets;
use crate::sso_secrets::{self, SignIn};
use crate::state::AppState;
use crate::workflow::{self, context};

/// A session opened through the provider lasts this long at most: the next sign-in asks the
/// provider again, which refuses a person removed there.
pub const SSO_SESSION_SECONDS: i64 = 12 * 3600;

pub fn routes() -> Routes {
    Routes::new("accounts")
        .route(
            Route::get("/v1/orgs/{org}/sso", settings)
                .id("orgSso")
                .summary("The organization's single sign-on")
                .tag("organizations")
                .describe(
                    "Members. Never the client secret; `issuer` and `client_id` are null while \
                     none is set.",
                )
                .returns::<SsoView>(200, "The provider and whether members must use it."),
        )
        .route(
            Route::put("/v1/orgs/{org}/sso", set_settings)
                .id("setOrgSso")
                .summary("Set the organization's single sign-on")
                .tag("organizations")
                .describe(
                    "Owners (403 otherwise). An OpenID Connect provider: its issuer (whose \
                     discovery document must be readable now, 422 otherwise), the client id, and \
                     the client secret (kept by the server, never in the log nor shown again; \
                     needed the first time). `required`: members sign in only through the \
                     provider, owners keep their password (`SsoConfigured`).",
                )
                .body::<SsoRequest>()
                .returns::<SsoView>(200, "The provider."),
        )
        .route(
            Route::get("/v1/sso/{org}/start", start)
                .id("ssoStart")
                .summary("Sign in through the organization's provider")
                .public()
                .describe(
                    "Sends the browser to the provider (authorization-code flow with PKCE S256, \
                     `state` and `nonce`; 10 minutes). 404 when the organization has no single \
                     sign-on; 502 when its provider cannot be reached.",
                )
                .query(
                    "login_hint",
                    json!({"type": "string"}),
                    "Passed on to the provider.",
                )
                .responds(
                    303,
                    "To the provider's authorization endpoint (`Location`).",
                ),
        )
        .route(
            Route::get("/v1/sso/callback", callback)
                .id("ssoCallback")
                .summary("Where the provider sends the browser back")
                .public()
                .describe(
                    "Takes `state` once (401 for an unknown, used or expired one), trades `code` \
                     (with the PKCE verifier) for the ID token and checks its RS256 signature \
                     against the provider's JWKS, `iss`, `aud`, `exp` and `nonce`, and that \
                     `email_verified` is true (401 otherwise). A member signs in; an invited \
                     email's first sign-in creates its account (without a password) and joins; \
                     anyone else is refused 403.",
                )
                .query(
                    "code",
                    json!({"type": "string"}),
                    "The provider's authorization code.",
                )
                .query(
                    "state",
                    json!({"type": "string"}),
                    "The state the start sent.",
                )
                .query(
                    "error",
                    json!({"type": "string"}),
                    "The provider's refusal, when it refused.",
                )
                .responds(
                    303,
                    "To the console with the session's token in the fragment: `/#sso_token=TOKEN`.",
                ),
        )
}

/// An organization's single sign-on, as members read it (never the secret); `issuer` and
/// `client_id` are `null` while none is set.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SsoView {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Members sign in through the provider only; owners keep their password.
    pub required: bool,
    /// Whether a client secret is kept.
    pub has_client_secret: bool,
}

#[derive(Deserialize, Serialize, JsonSchema)]
pub struct SsoRequest {
    /// The provider's issuer URL (its discovery document is under it).
    pub issuer: String,
    pub client_id: String,
    /// Kept by the server, never shown again; leave it out to keep the one kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub required: bool,
}

async fn view(state: &AppState, organization_id: Uuid) -> Result<SsoView, ApiError> {
    let sso = projections::directory::read::sso_settings(state.backend(), organization_id).await?;
    let has_client_secret = sso_secrets::client_secret(state.backend(), organization_id)
        .await?
        .is_some();
    Ok(SsoView {
        required: sso.as_ref().is_some_and(|sso| sso.required),
        issuer: sso.as_ref().map(|sso| sso.issuer.clone()),
        client_id: sso.map(|sso| sso.client_id),
        has_client_secret,
    })
}

/// Members.
async fn settings(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
) -> Result<Json<SsoView>, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    Ok(Json(view(&state, organization_id).await?))
}

/// Owners: the organization decides; the secret goes to its table, not the log.
async fn set_settings(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<SsoRequest>,
) -> Result<Json<SsoView>, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Owner).await?;
    let secret = body.client_secret.filter(|secret| !secret.is_empty());
    if secret.is_none()
        && sso_secrets::client_secret(state.backend(), organization_id)
            .await?
            .is_none()
    {
        return Err(ApiError::Invalid(
            "client_secret is needed the first time".into(),
        ));
    }
    // A provider whose discovery document cannot be read (or names another issuer) is refused
    // now, not at its members' first sign-in.
    let issuer = body.issuer.trim().trim_end_matches('/').to_owned();
    if issuer.starts_with("http://") || issuer.starts_with("https://") {
        oidc::discover(&oidc::client(state.settings.sso_private_networks), &issuer)
            .await
            .map_err(|error| ApiError::Invalid(format!("issuer: {error}")))?;
    }
    let configure = OrganizationCommand::ConfigureSso {
        issuer,
        client_id: body.client_id,
        required: body.required,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let executed = workflow::run::<Organization>(&state, organization_id, configure, &ctx).await?;
    if let Some(secret) = secret {
        sso_secrets::set_client_secret(state.backend(), organization_id, &secret).await?;
    }
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    Ok(Json(view(&state, organization_id).await?))
}

fn upstream(error: OidcError) -> ApiError {
    match error {
        OidcError::Provider(detail) => {
            ApiError::Upstream(format!("the identity provider: {detail}"))
        }
        OidcError::Refused(detail) => {
            ApiError::SignInRefused(format!("single sign-on refused: {detail}"))
        }
    }
}

/// Where the provider sends the browser back: this server's own callback, as the browser
/// reached it (the provider must have it registered exactly).
fn redirect_uri(headers: &HeaderMap) -> Result<String, ApiError> {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("a Host header is needed".into()))?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}/v1/sso/callback"))
}

#[derive(Deserialize)]
struct StartQuery {
    login_hint: Option<String>,
}

/// Anyone: 303 to the provider's sign-in, with a fresh `state`, `nonce` and PKCE verifier kept
/// for the callback (10 minutes, once).
async fn start(
    State(state): State<AppState>,
    Path(org): Path<String>,
    DeviceOf(device): DeviceOf,
    headers: HeaderMap,
    Params(query): Params<StartQuery>,
) -> Result<Response, ApiError> {
    let address = device.address.unwrap_or_default();
    limits::enforce(&state, limits::LOGINS, &format!("address:{address}")).await?;
    let organization_id = path_id(&org)?;
    workflow::run::<Organization>(
        &state,
        organization_id,
        OrganizationCommand::AdmitSso,
        &context(None, None),
    )
    .await?;
    consistency::wait_for_stream(&state, "organization", &organization_id.to_string()).await?;
    let sso = projections::directory::read::sso_settings(state.backend(), organization_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let provider = oidc::discover(
        &oidc::client(state.settings.sso_private_networks),
        &sso.issuer,
    )
    .await
    .map_err(upstream)?;
    let sign_in = SignIn {
        organization_id,
        nonce: secrets::new_token(),
        verifier: secrets::new_token(),
        redirect_uri: redirect_uri(&headers)?,
    };
    let state_token = secrets::new_token();
    sso_secrets::begin(state.backend(), &state_token, &sign_in).await?;
    let url = oidc::authorization_url(
        &provider,
        &oidc::Authorization {
            client_id: &sso.client_id,
            redirect_uri: &sign_in.redirect_uri,
            state: &state_token,
            nonce: &sign_in.nonce,
            verifier: &sign_in.verifier,
            login_hint: query.login_hint.as_deref(),
        },
    );
    Ok((StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider's answer: 303 to the console with the session's token in the fragment
/// (`/#sso_token=…`), or a problem saying why not.
async fn callback(
    State(state): State<AppState>,
    DeviceOf(device): DeviceOf,
    Params(query): Params<CallbackQuery>,
) -> Result<Response, ApiError> {
    let address = device.address.clone().unwrap_or_default();
    limits::enforce(&state, limits::LOGINS, &format!("address:{address}")).await?;
    let sign_in = match &query.state {
        Some(state_token) => sso_secrets::take(state.backend(), state_token).await?,
        None => None,
    }
    .ok_or_else(|| {
        ApiError::SignInRefused(
            "this sign-in is unknown, expired or used already: start it again".into(),
        )
    })?;
    if let Some(error) = query.error {
        return Err(ApiError::SignInRefused(format!(
            "the identity provider did not sign you in ({error})"
        )));
    }
    let code = query
        .code
        .ok_or_else(|| ApiError::BadRequest("the provider sent no code".into()))?;
    let organization_id = sign_in.organization_id;
    let sso = projections::directory::read::sso_settings(state.backend(), organization_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let secret = sso_secrets::client_secret(state.backend(), organization_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let http = oidc::client(state.settings.sso_private_networks);
    let provider = oidc::discover(&http, &sso.issuer).await.map_err(upstream)?;
    let id_token = oidc::exchange(
        &http,
        &provider,
        &sso.client_id,
        &secret,
        &code,
        &sign_in.redirect_uri,
        &sign_in.verifier,
    )
    .await
    .map_err(upstream)?;
    let jwks = oidc::jwks(&http, &provider).await.map_err(upstream)?;
    let identity = oidc::check_id_token(
        &id_token,
        &jwks,
        &provider.issuer,
        &sso.client_id,
        &sign_in.nonce,
        Utc::now().timestamp(),
    )
    .map_err(upstream)?;
    let agent_id = member_for(&state, organization_id, &identity).await?;
    // It ends within hours however it is used: whoever is removed at the provider is out then.
    let ends_at = Utc::now().timestamp() + SSO_SESSION_SECONDS;
    let token =
        secrets::issue_agent_token(state.backend(), agent_id, &device, Some(ends_at)).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/#sso_token={token}"))],
    )
        .into_response())
}

/// The member the provider's verified email is: a member already, or an invited email (its
/// first sign-in creates its account, without a password, and accepts the invitation).
async fn member_for(
    state: &AppState,
    organization_id: Uuid,
    identity: &oidc::Identity,
) -> Result<Uuid, ApiError> {
    let email = Email::parse(&identity.email).map_err(invalid)?;
    consistency::catch_up(state).await?;
    let account = find_account(state, &email).await?;
    if let Some((agent_id, _)) = &account {
        if projections::directory::read::role_of(state.backend(), organization_id, *agent_id)
            .await?
            .is_some()
        {
            return Ok(*agent_id);
        }
    }
    let now = Utc::now();
    let invitation =
        projections::directory::read::pending_invitations(state.backend(), organization_id, now)
            .await?
            .into_iter()
            .find(|invitation| invitation.email == email.as_str())
            .ok_or_else(|| {
                ApiError::Forbidden(format!(
                    "{} is neither a member of this organization nor invited to it",
                    email.as_str()
                ))
            })?;
    let agent_id = match account {
        Some((agent_id, _)) => agent_id,
        None => {
            let fallback = email
                .as_str()
                .split('@')
                .next()
                .unwrap_or("member")
                .to_owned();
            let name = identity
                .name
                .clone()
                .and_then(|name| DisplayName::parse(name).ok())
                .or_else(|| DisplayName::parse(fallback).ok())
                .ok_or_else(|| ApiError::Invalid("the provider gave no usable name".into()))?;
            create_sso_account(state, &email, name).await?
        }
    };
    // The provider vouched for the address (`email_verified`), whichever account it is.
    let accept = OrganizationCommand::AcceptInvitation {
        invitation_id: invitation.id,
        agent_id,
        email,
        now,
        account: domain::organization::AcceptingAccount::Confirmed,
        confirmation_required: state.settings.mail.is_some(),
    };
    workflow::run::<Organization>(state, organization_id, accept, &context(None, None)).await?;
    secrets::delete_invitation_tokens(state.backend(), invitation.id).await?;
    Ok(agent_id)
}
