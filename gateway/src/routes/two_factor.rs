//! Two-factor authentication (TOTP, RFC 6238) of password accounts: enrolment with a QR code,
//! its confirmation by a first code (which hands out one-time recovery codes), turning it off,
//! a login's second step, and an owner's rule that requires it of an organization's members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use domain::organization::{Organization, OrganizationCommand};
use domain::values::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::client::{ClientAddr, DeviceOf};
use crate::error::ApiError;
use crate::extract::{path_id, Body};
use crate::idempotency::IdempotencyKey;
use crate::limits;
use crate::live::CloseOrder;
use crate::openapi::{Route, Routes};
use crate::second_factor;
use crate::secrets;
use crate::state::AppState;
use crate::totp;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("accounts")
        .route(
            Route::post("/v1/login/two-factor", second_step)
                .id("loginSecondStep")
                .summary("Log in: the second step")
                .public()
                .describe(
                    "The challenge of `POST /v1/login` with `code` (the authenticator app's 6 \
                     digits; each is taken once) or `recovery_code` (each works once). 401 for a \
                     wrong code (5 per challenge) or an expired challenge (5 minutes); rate \
                     limited per account and per address (429).",
                )
                .body::<SecondStep>()
                .returns::<SignedIn>(200, "A token."),
        )
        .route(
            Route::post("/v1/me/two-factor", enrol)
                .id("enrolTwoFactor")
                .summary("Begin two-factor authentication")
                .describe(
                    "A new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s), its `otpauth://` URI \
                     and that URI's QR code. It works once `POST /v1/me/two-factor/confirm` \
                     confirms it; enrolling again before replaces it. 409 when two-factor \
                     authentication is on.",
                )
                .returns::<Enrolment>(201, "The secret, its URI and QR code."),
        )
        .route(
            Route::post("/v1/me/two-factor/confirm", confirm)
                .id("confirmTwoFactor")
                .summary("Confirm two-factor authentication")
                .describe(
                    "A first code from the authenticator app turns two-factor authentication on. \
                     403 for a wrong code, 409 with no enrolment begun; rate limited (429).",
                )
                .body::<TwoFactorCode>()
                .returns::<RecoveryCodes>(200, "Ten one-time recovery codes, shown only now."),
        )
        .route(
            Route::post("/v1/me/two-factor/disable", disable)
                .id("disableTwoFactor")
                .summary("Turn two-factor authentication off")
                .describe(
                    "With a code or a recovery code. 403 for a wrong one, 409 when it is not on; \
                     rate limited (429).",
                )
                .body::<TwoFactorProof>()
                .no_content("Off: the secret and the recovery codes are forgotten."),
        )
        .route(
            Route::get("/v1/orgs/{org}/security", org_security)
                .id("orgSecurity")
                .summary("The organization's sign-in rules")
                .tag("organizations")
                .returns::<OrgSecurity>(200, "Whether members need two-factor authentication."),
        )
        .route(
            Route::put("/v1/orgs/{org}/security", set_org_security)
                .id("setOrgSecurity")
                .summary("Set the organization's sign-in rules")
                .tag("organizations")
                .describe(
                    "Owners (403 otherwise); an owner turns on its own two-factor authentication \
                     before requiring it (409). While it is required, a member without it is \
                     refused 403 in the organization, with a detail saying what to do \
                     (`TwoFactorRequirementSet`).",
                )
                .body::<OrgSecurity>()
                .returns::<OrgSecurity>(200, "The rules."),
        )
}

/// `POST /v1/me/two-factor`: what an authenticator app needs. The secret works only once a
/// code made from it confirms it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Enrolment {
    /// The secret in base 32, for typing by hand.
    pub secret: String,
    /// `otpauth://totp/…`, what the QR code holds.
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an SVG document.
    pub qr_svg: String,
}

async fn enrol(
    State(state): State<AppState>,
    agent: AgentCaller,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let secret = totp::new_secret();
    if !second_factor::begin(state.backend(), agent.agent_id, &secret).await? {
        return Err(ApiError::Conflict(
            "two-factor authentication is on already; turn it off first to enrol again".into(),
        ));
    }
    let otpauth_uri = totp::otpauth_uri(&account.email, &secret);
    let qr_svg = totp::qr_svg(&otpauth_uri)
        .ok_or_else(|| ApiError::Internal("a QR code that cannot be drawn".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(Enrolment {
            secret: totp::base32(&secret),
            otpauth_uri,
            qr_svg,
        }),
    ))
}

#[derive(Deserialize, JsonSchema)]
pub struct TwoFactorCode {
    /// The 6 digits the authenticator app shows.
    pub code: String,
}

/// The recovery codes, shown once: each opens one login in place of a code.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

fn wrong_code() -> ApiError {
    ApiError::Forbidden(
        "the code is not right; use the one your authenticator app shows now".into(),
    )
}

/// The first code confirms the enrolment: from then on every login asks for a code.
async fn confirm(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    agent: AgentCaller,
    Body(body): Body<TwoFactorCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    code_attempt(&state, agent.agent_id, &address.to_string()).await?;
    let enrolment = second_factor::enrolment(state.backend(), agent.agent_id).await?;
    let enrolment = match enrolment {
        Some(enrolment) if !enrolment.confirmed => enrolment,
        Some(_) => {
            return Err(ApiError::Conflict(
                "two-factor authentication is on already".into(),
            ))
        }
        None => {
            return Err(ApiError::Conflict(
                "no enrolment to confirm: start one with POST /v1/me/two-factor".into(),
            ))
        }
    };
    let now = Utc::now().timestamp();
    let step = totp::verify(&enrolment.secret, &body.code, now, enrolment.last_step)
        .ok_or_else(wrong_code)?;
    if !second_factor::take_step(state.backend(), agent.agent_id, step, true).await? {
        return Err(wrong_code());
    }
    let recovery_codes = second_factor::new_recovery_codes(state.backend(), agent.agent_id).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// A code or a recovery code, as the second step of a login or to turn the second factor off.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TwoFactorProof {
    /// The authenticator app's 6 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// One of the recovery codes, instead of `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// Takes one code attempt under the limits: per account and per address.
async fn code_attempt(state: &AppState, agent_id: Uuid, address: &str) -> Result<(), ApiError> {
    for key in [format!("account:{agent_id}"), format!("address:{address}")] {
        limits::enforce(state, limits::TWO_FACTOR_CODES, &key).await?;
    }
    Ok(())
}

/// Whether `given` is a good code of the account's confirmed second factor (taking it) or one
/// of its recovery codes (using it up). `None` when the account has no second factor.
async fn check(
    state: &AppState,
    agent_id: Uuid,
    given: &TwoFactorProof,
) -> Result<Option<bool>, ApiError> {
    let Some(enrolment) = second_factor::enrolment(state.backend(), agent_id).await? else {
        return Ok(None);
    };
    if !enrolment.confirmed {
        return Ok(None);
    }
    match (&given.code, &given.recovery_code) {
        (Some(code), None) => {
            let now = Utc::now().timestamp();
            let Some(step) = totp::verify(&enrolment.secret, code, now, enrolment.last_step) else {
                return Ok(Some(false));
            };
            Ok(Some(
                second_factor::take_step(state.backend(), agent_id, step, false).await?,
            ))
        }
        (None, Some(recovery)) => Ok(Some(
            second_factor::use_recovery_code(state.backend(), agent_id, recovery).await?,
        )),
        _ => Err(ApiError::BadRequest(
            "send either code or recovery_code".into(),
        )),
    }
}

/// Turns the second factor off, proven by a code or a recovery code.
async fn disable(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    agent: AgentCaller,
    Body(body): Body<TwoFactorProof>,
) -> Result<StatusCode, ApiError> {
    code_attempt(&state, agent.agent_id, &address.to_string()).await?;
    match check(&state, agent.agent_id, &body).await? {
        None => Err(ApiError::Conflict(
            "two-factor authentication is not on".into(),
        )),
        Some(false) => Err(wrong_code()),
        Some(true) => {
            second_factor::remove(state.backend(), agent.agent_id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct SecondStep {
    /// The challenge `POST /v1/login` answered with.
    pub challenge: String,
    /// The authenticator app's 6 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// One of the recovery codes, instead of `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// A login's second step: the challenge of its first and a code (or a recovery code) give
/// the session.
async fn second_step(
    State(state): State<AppState>,
    DeviceOf(device): DeviceOf,
    Body(body): Body<SecondStep>,
) -> Result<Json<SignedIn>, ApiError> {
    let address = device.address.clone().unwrap_or_default();
    limits::enforce(
        &state,
        limits::TWO_FACTOR_CODES,
        &format!("address:{address}"),
    )
    .await?;
    let expired = || {
        ApiError::SignInRefused(
            "this sign-in has expired or had too many wrong codes; sign in again with your password"
                .into(),
        )
    };
    let agent_id = second_factor::challenge(state.backend(), &body.challenge)
        .await?
        .ok_or_else(expired)?;
    limits::enforce(
        &state,
        limits::TWO_FACTOR_CODES,
        &format!("account:{agent_id}"),
    )
    .await?;
    let given = TwoFactorProof {
        code: body.code,
        recovery_code: body.recovery_code,
    };
    match check(&state, agent_id, &given).await? {
        Some(true) => {}
        Some(false) => {
            second_factor::challenge_failed(state.backend(), &body.challenge).await?;
            return Err(ApiError::SignInRefused("the code is not right".into()));
        }
        // Turned off between the two steps: the password was right.
        None => {}
    }
    if !second_factor::end_challenge(state.backend(), &body.challenge).await? {
        return Err(expired());
    }
    let token = secrets::issue_agent_token(state.backend(), agent_id, &device, None).await?;
    let recovery_codes_left = second_factor::recovery_codes_left(state.backend(), agent_id).await?;
    Ok(Json(SignedIn {
        token,
        agent_id,
        recovery_codes_left,
    }))
}

/// A login's second step was right: the session.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SignedIn {
    /// An agent token.
    pub token: String,
    pub agent_id: Uuid,
    /// Recovery codes not yet used.
    pub recovery_codes_left: i64,
}

/// An organization's sign-in rules.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OrgSecurity {
    /// Members need two-factor authentication to act in the organization.
    pub require_two_factor: bool,
}

async fn org_security(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
) -> Result<Json<OrgSecurity>, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    let require_two_factor =
        projections::directory::read::two_factor_required(state.backend(), organization_id).await?;
    Ok(Json(OrgSecurity { require_two_factor }))
}

/// Owners: the organization decides (an owner needs its own second factor to require one).
async fn set_org_security(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<OrgSecurity>,
) -> Result<Json<OrgSecurity>, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Owner).await?;
    let own_two_factor = second_factor::enabled(state.backend(), agent.agent_id).await?;
    let set = OrganizationCommand::SetTwoFactorRequirement {
        required: body.require_two_factor,
        by: Some(agent.agent_id),
        own_two_factor,
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let executed = workflow::run::<Organization>(&state, organization_id, set, &ctx).await?;
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    if body.require_two_factor {
        // Members without a second factor stop following the organization's topics at once.
        for member in
            projections::directory::read::members(state.backend(), organization_id).await?
        {
            state.live.closer.close(CloseOrder::Recheck {
                agent_id: member.agent_id,
            });
        }
    }
    Ok(Json(body))
}
