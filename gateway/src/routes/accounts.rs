//! Accounts: sign-up, login, logout, the caller's own profile and password.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use domain::account::{Account, AccountCommand, AccountError};
use domain::ids;
use domain::organization::{Organization, OrganizationCommand};
use domain::values::{DisplayName, Email, Name, Password, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use store::command::CommandError;
use uuid::Uuid;

use crate::auth::{self, AgentCaller, Caller};
use crate::client::{ClientAddr, DeviceOf};
use crate::error::{invalid, ApiError};
use crate::extract::Body;
use crate::limits;
use crate::live::CloseOrder;
use crate::openapi::{Route, Routes};
use crate::second_factor;
use crate::secrets;
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("accounts")
        .route(
            Route::post("/v1/signup", signup)
                .id("signup")
                .summary("Sign up: a new organization and its owner")
                .public()
                .describe(
                    "When sign-up is open. 409 if the email has an account; 422 for a password \
                     under 10 characters.",
                )
                .body::<SignUp>()
                .returns::<SignUpResponse>(
                    201,
                    "The organization, its owner, and the owner's token.",
                ),
        )
        .route(
            Route::post("/v1/login", login)
                .id("login")
                .summary("Log in")
                .public()
                .describe(
                    "401 on a wrong pair; rate limited per email and per address; 403 for a \
                     member of an organization that requires single sign-on (not its owners). An \
                     account with two-factor authentication gets a challenge instead of a token: \
                     `POST /v1/login/two-factor` answers it with a code.",
                )
                .body::<Login>()
                .returns::<LoginAnswer>(200, "A token, or a challenge for the second step."),
        )
        .route(
            Route::post("/v1/logout", logout)
                .id("logout")
                .summary("Log out")
                .no_content("The token stops working at once, on open WebSockets too."),
        )
        .route(
            Route::get("/v1/me", me)
                .id("me")
                .summary("The caller's account")
                .returns::<Me>(200, "The account and its organizations."),
        )
        .route(
            Route::put("/v1/me/password", change_password)
                .id("changePassword")
                .summary("Change the password")
                .body::<ChangePassword>()
                .no_content("Changed; every other token of the account ends."),
        )
        .route(
            Route::put("/v1/me/status", set_status)
                .id("setStatus")
                .summary("Set presence")
                .body::<SetStatus>()
                .no_content("Shown to teammates."),
        )
}

// `POST /v1/signup`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "SignUpRequest")]
pub struct SignUp {
    /// The new organization's name.
    pub organization: String,
    /// The person's display name.
    pub name: String,
    #[schemars(email)]
    pub email: String,
    #[schemars(length(min = 10))]
    pub password: String,
}

#[derive(Serialize, JsonSchema)]
pub struct SignUpResponse {
    pub organization_id: Uuid,
    pub agent_id: Uuid,
    /// An agent token.
    pub token: String,
}

/// Creates the account and the organization with the account as its owner. Everything cheap
/// (the limit, the fields, the claim of the email) is decided before the password is hashed,
/// so the losers of a race are answered 409 at once and hold no memory.
async fn signup(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    DeviceOf(device): DeviceOf,
    Body(body): Body<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    if !state.settings.signup_open {
        return Err(ApiError::Forbidden(
            "sign-up is closed here; ask for an invitation".into(),
        ));
    }
    limits::enforce(&state, limits::SIGNUPS, &format!("address:{address}")).await?;
    let organization = Name::parse(&body.organization).map_err(invalid)?;
    let name = DisplayName::parse(&body.name).map_err(invalid)?;
    let email = Email::parse(&body.email).map_err(invalid)?;
    let password = Password::parse(body.password).map_err(invalid)?;
    let name_text = name.as_str().to_owned();
    let agent_id = create_account(&state, &email, name, password).await?;
    let organization_id = Uuid::new_v4();
    let ctx = context(None, None);
    let create = OrganizationCommand::CreateOrganization {
        organization_id,
        name: organization,
        owner_id: Some(agent_id),
    };
    workflow::run::<Organization>(&state, organization_id, create, &ctx).await?;
    let token = secrets::issue_agent_token(state.backend(), agent_id, &device, None).await?;
    // With email set up, the address is to be confirmed before the account joins anyone's
    // organization by invitation (its own it owns already).
    crate::routes::email::send_confirmation(&state, agent_id, &email, &name_text).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignUpResponse {
            organization_id,
            agent_id,
            token,
        }),
    ))
}

/// The ids an email's account may have, in the order they are tried: the one derived under the
/// deployment's secret (every account created now), then the legacy UUIDv5 of the email (an
/// account of a store written before; its id is in the log and cannot change). Trying both is
/// two lookups by primary key and needs no migration; an index from emails to ids would need
/// one, and the read model that has emails may lag a creation.
fn ids_of(state: &AppState, email: &Email) -> [Uuid; 2] {
    [
        ids::account_id(state.account_ids, email),
        ids::legacy_account_id(email),
    ]
}

/// The account of `email`, if it has one: its id, and its password hash if one is kept.
pub async fn find_account(
    state: &AppState,
    email: &Email,
) -> Result<Option<(Uuid, Option<String>)>, ApiError> {
    for agent_id in ids_of(state, email) {
        if let Some(hash) = account_at(state, agent_id).await? {
            return Ok(Some((agent_id, hash)));
        }
    }
    Ok(None)
}

/// Whether there is an account under `agent_id` (its password kept, or the read model shows
/// it), and its password hash if one is kept.
async fn account_at(state: &AppState, agent_id: Uuid) -> Result<Option<Option<String>>, ApiError> {
    let hash = secrets::password_hash(state.backend(), agent_id).await?;
    if hash.is_some() {
        return Ok(Some(hash));
    }
    let account = projections::directory::read::account(state.backend(), agent_id).await?;
    Ok(account.map(|_| None))
}

/// Creates an account with its password (sign-up, or accepting an invitation without an
/// account). One email has one account however many creations race: the email's id is
/// claimed first (`secrets::claim_account`, one winner on both backends) and every other
/// creation is refused 409 before it hashes anything; the password is then kept only if the
/// account has none (`secrets::insert_password_hash`), so no path replaces the password of an
/// account that exists.
pub async fn create_account(
    state: &AppState,
    email: &Email,
    name: DisplayName,
    password: Password,
) -> Result<Uuid, ApiError> {
    let [agent_id, legacy_id] = ids_of(state, email);
    let taken = || ApiError::from(AccountError::EmailTaken);
    // An account of a store written before has the legacy id, under which none is created any
    // more: looking is enough there. Under the deployment's id the claim decides.
    if account_at(state, legacy_id).await?.is_some()
        || !secrets::claim_account(state.backend(), agent_id).await?
    {
        return Err(taken());
    }
    let hash = match auth::hash_password(password.expose().to_owned()).await {
        Ok(hash) => hash,
        Err(error) => {
            secrets::release_claim(state.backend(), agent_id).await?;
            return Err(error);
        }
    };
    let create = AccountCommand::CreateAccount {
        agent_id,
        email: email.clone(),
        name,
        email_confirmed: false,
    };
    match workflow::refusable::<Account>(state, agent_id, create, &context(None, None)).await? {
        Ok(_) => {}
        // The log has the account but, as the claim says, no password was ever kept for it: a
        // creation cut short by a crash, which nobody ever signed in to. The claim's holder
        // finishes it; keeping the password below is what decides.
        Err(AccountError::EmailTaken) => {}
        Err(refusal) => return Err(refusal.into()),
    }
    if !secrets::insert_password_hash(state.backend(), agent_id, &hash).await? {
        return Err(taken());
    }
    Ok(agent_id)
}

/// What an account made by single sign-on keeps in place of a password hash: no PHC string, so
/// no password ever verifies against it, and no creation ever sets one (the row exists).
pub const NO_PASSWORD: &str = "!sso";

/// Creates the account of someone who signed in through an organization's identity provider
/// (a first sign-in of an invited email): no password, so it signs in only through the
/// provider. Claimed like any creation, so it races sign-ups and acceptances safely.
pub async fn create_sso_account(
    state: &AppState,
    email: &Email,
    name: DisplayName,
) -> Result<Uuid, ApiError> {
    let [agent_id, legacy_id] = ids_of(state, email);
    let taken = || ApiError::from(AccountError::EmailTaken);
    if account_at(state, legacy_id).await?.is_some()
        || !secrets::claim_account(state.backend(), agent_id).await?
    {
        return Err(taken());
    }
    // The provider gave the email only as verified (`email_verified`): it is confirmed.
    let create = AccountCommand::CreateAccount {
        agent_id,
        email: email.clone(),
        name,
        email_confirmed: true,
    };
    match workflow::refusable::<Account>(state, agent_id, create, &context(None, None)).await? {
        Ok(_) | Err(AccountError::EmailTaken) => {}
        Err(refusal) => return Err(refusal.into()),
    }
    if !secrets::insert_password_hash(state.backend(), agent_id, NO_PASSWORD).await? {
        return Err(taken());
    }
    Ok(agent_id)
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        ApiError::from(CommandError::Rejected(error))
    }
}

// `POST /v1/login`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "LoginRequest")]
pub struct Login {
    #[schemars(email)]
    pub email: String,
    pub password: String,
}

#[derive(Serialize, JsonSchema)]
pub struct LoginResponse {
    /// An agent token.
    pub token: String,
    pub agent_id: Uuid,
}

/// The password was right and the account has a second factor: `POST /v1/login/two-factor`
/// answers the challenge with a code.
#[derive(Serialize, JsonSchema)]
pub struct LoginChallenge {
    /// Always `true`.
    pub two_factor_required: bool,
    /// What the second step sends back; it lasts `expires_in` seconds and 5 wrong codes.
    pub challenge: String,
    pub expires_in: i64,
}

/// A session, or the challenge of a second step.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Session(LoginResponse),
    SecondFactor(LoginChallenge),
}

/// The password, then (for an account with a second factor) a challenge that
/// `POST /v1/login/two-factor` answers with a code.
async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    DeviceOf(device): DeviceOf,
    Body(body): Body<Login>,
) -> Result<Json<LoginAnswer>, ApiError> {
    let email = body.email.trim().to_lowercase();
    for key in [format!("address:{address}"), format!("email:{email}")] {
        limits::enforce(&state, limits::LOGINS, &key).await?;
    }
    let wrong = || ApiError::WrongCredentials;
    let Ok(email) = Email::parse(&email) else {
        auth::verify_password(body.password, None).await?;
        return Err(wrong());
    };
    let Some((agent_id, hash)) = find_account(&state, &email).await? else {
        auth::verify_password(body.password, None).await?;
        return Err(wrong());
    };
    if !auth::verify_password(body.password, hash).await? {
        return Err(wrong());
    }
    admit_password_login(&state, agent_id).await?;
    if second_factor::enabled(state.backend(), agent_id).await? {
        let challenge = second_factor::new_challenge(state.backend(), agent_id).await?;
        return Ok(Json(LoginAnswer::SecondFactor(LoginChallenge {
            two_factor_required: true,
            challenge,
            expires_in: second_factor::CHALLENGE_SECONDS,
        })));
    }
    let token = secrets::issue_agent_token(state.backend(), agent_id, &device, None).await?;
    Ok(Json(LoginAnswer::Session(LoginResponse {
        token,
        agent_id,
    })))
}

/// A member of an organization that requires single sign-on signs in through its provider,
/// not with a password (owners excepted: the organization decides, `AdmitPasswordLogin`).
async fn admit_password_login(state: &AppState, agent_id: Uuid) -> Result<(), ApiError> {
    for membership in
        projections::directory::read::memberships_of(state.backend(), agent_id).await?
    {
        let sso =
            projections::directory::read::sso_settings(state.backend(), membership.id).await?;
        if sso.is_some_and(|sso| sso.required) {
            let admit = OrganizationCommand::AdmitPasswordLogin { agent_id };
            workflow::run::<Organization>(state, membership.id, admit, &context(None, None))
                .await?;
        }
    }
    Ok(())
}

async fn logout(State(state): State<AppState>, agent: AgentCaller) -> Result<StatusCode, ApiError> {
    secrets::revoke_token_hash(state.backend(), &agent.token_hash).await?;
    state
        .live
        .close(CloseOrder::Token(agent.token_hash.clone()));
    Ok(StatusCode::NO_CONTENT)
}

/// An organization the caller is a member of, with its role there.
#[derive(Serialize, JsonSchema)]
pub struct MyOrganization {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

impl TryFrom<projections::directory::read::Membership> for MyOrganization {
    type Error = ApiError;

    fn try_from(row: projections::directory::read::Membership) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            name: row.name,
            role: row.role,
        })
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Me {
    pub agent_id: Uuid,
    pub name: String,
    pub email: String,
    pub organizations: Vec<MyOrganization>,
    /// Whether the account has a confirmed second factor (every login asks for a code).
    pub two_factor: bool,
    /// Whether the account showed that its address is its own (an emailed link, a password
    /// reset, or an identity provider that vouched for it).
    pub email_confirmed: bool,
    /// The deployment sends email and the address is not confirmed yet: until it is, the
    /// account accepts no invitation (`POST /v1/me/email-confirmation` sends the link again).
    pub email_confirmation_required: bool,
}

async fn me(State(state): State<AppState>, agent: AgentCaller) -> Result<Json<Me>, ApiError> {
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let organizations =
        projections::directory::read::memberships_of(state.backend(), agent.agent_id).await?;
    let two_factor = second_factor::enabled(state.backend(), agent.agent_id).await?;
    let email_confirmed = crate::routes::email::email_confirmed(&state, agent.agent_id).await?;
    let organizations = organizations
        .into_iter()
        .map(MyOrganization::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(Me {
        agent_id: account.agent_id,
        name: account.name,
        email: account.email,
        organizations,
        two_factor,
        email_confirmed,
        email_confirmation_required: state.settings.mail.is_some() && !email_confirmed,
    }))
}

// `PUT /v1/me/password`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "ChangePasswordRequest")]
pub struct ChangePassword {
    pub current_password: String,
    #[schemars(length(min = 10))]
    pub new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let Caller::Agent(agent) = caller else {
        return Err(ApiError::Forbidden("this needs an agent's token".into()));
    };
    let new_password = Password::parse(body.new_password).map_err(invalid)?;
    limits::enforce(
        &state,
        limits::PASSWORD_CHANGES,
        &format!("account:{}", agent.agent_id),
    )
    .await?;
    let hash = secrets::password_hash(state.backend(), agent.agent_id).await?;
    if !auth::verify_password(body.current_password, hash).await? {
        return Err(ApiError::Forbidden(
            "the current password is not right".into(),
        ));
    }
    let hash = auth::hash_password(new_password.expose().to_owned()).await?;
    secrets::set_password_hash(state.backend(), agent.agent_id, &hash).await?;
    secrets::revoke_agent_tokens(state.backend(), agent.agent_id, Some(&agent.token_hash)).await?;
    let keep = Some(agent.token_hash.clone());
    state.live.close(CloseOrder::Agent {
        agent_id: agent.agent_id,
        keep,
    });
    Ok(StatusCode::NO_CONTENT)
}

/// What an agent sets by hand; `offline` is having no socket open.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManualStatus {
    Online,
    Away,
}

// `PUT /v1/me/status`. The handler reads the status as text so that anything else is its own
// 422 ("status is online or away"), not a body that does not parse.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "SetStatusRequest")]
pub struct SetStatus {
    #[schemars(with = "ManualStatus")]
    pub status: String,
}

/// `online` or `away`, shown to teammates while the agent has a socket open.
async fn set_status(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(body): Body<SetStatus>,
) -> Result<StatusCode, ApiError> {
    let away = match body.status.as_str() {
        "online" => false,
        "away" => true,
        _ => return Err(ApiError::Invalid("status is online or away".into())),
    };
    crate::presence::declare(&state, agent.agent_id, away).await?;
    Ok(StatusCode::NO_CONTENT)
}
