//! What email makes possible (README, Email), when the deployment sends it (`JONO_SMTP_URL`):
//! confirming an account's address, resetting a forgotten password by an emailed link, and a
//! transcript mailed to a customer. Without email each answers 409, saying so, and nothing else
//! changes: no address needs confirming.
//!
//! Every link's secret is kept as a hash (`mail::links`) and the message waits in the outbox
//! (`mail::outbox`) until it is delivered; the log records only what the links did
//! (`EmailConfirmed`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::account::{Account, AccountCommand, AccountError};
use domain::values::{Email, Password};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use store::command::CommandError;
use uuid::Uuid;

use crate::access;
use crate::auth::{self, AgentCaller, Caller};
use crate::client::ClientAddr;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body};
use crate::limits;
use crate::live::CloseOrder;
use crate::mail::links::{self, Purpose};
use crate::mail::{self, Mail, Mailer, CONFIRM_SECONDS};
use crate::openapi::{Route, Routes};
use crate::routes::accounts::find_account;
use crate::secrets;
use crate::state::AppState;
use crate::workflow::context;

/// How long a password reset's link works.
pub const RESET_MINUTES: i64 = 30;

pub fn routes() -> Routes {
    Routes::new("accounts")
        .route(
            Route::post("/v1/me/email-confirmation", resend_confirmation)
                .id("resendEmailConfirmation")
                .summary("Send the address's confirmation link again")
                .describe(
                    "With email set up (`JONO_SMTP_URL`; 409 otherwise): a new link to confirm \
                     the account's address is emailed, and the one before stops working. 409 when \
                     the address is confirmed already; 3 an hour per account (429).",
                )
                .responds(202, "The link is on its way."),
        )
        .route(
            Route::post("/v1/email-confirmation", confirm)
                .id("confirmEmail")
                .summary("Confirm an address")
                .public()
                .describe(
                    "The token of an emailed confirmation link (the console's `/confirm/TOKEN`): \
                     the account's address is confirmed (`EmailConfirmed`). A link works once, \
                     for 48 hours; 404 for an unknown, used or expired one. 409 when the \
                     deployment sends no email.",
                )
                .body::<ConfirmRequest>()
                .no_content("Confirmed."),
        )
        .route(
            Route::post("/v1/password-reset/request", request_reset)
                .id("requestPasswordReset")
                .summary("Ask for a password reset")
                .public()
                .describe(
                    "With email set up (409 otherwise). The same answer whether or not the email \
                     has an account; an account gets a link (the console's `/reset/TOKEN`) that \
                     works once, for 30 minutes, replacing any earlier one. 5 an hour per client \
                     address and per email (429).",
                )
                .body::<ResetRequest>()
                .responds(
                    202,
                    "Taken: if the email has an account, the link is on its way.",
                ),
        )
        .route(
            Route::post("/v1/password-reset", reset)
                .id("resetPassword")
                .summary("Reset the password")
                .public()
                .describe(
                    "The token of an emailed reset link and the new password (at least 10 \
                     characters, 422). Every session of the account ends, and its address counts \
                     as confirmed. 404 for an unknown, used or expired link, which changes \
                     nothing. 409 when the deployment sends no email.",
                )
                .body::<ResetPassword>()
                .no_content("The password is set; log in with it."),
        )
        .route(
            Route::post("/v1/conversations/{c}/transcript/email", email_transcript)
                .id("emailTranscript")
                .summary("Email the transcript to the customer")
                .tag("conversations")
                .describe(
                    "Its customer (403 for an agent), with email set up (409 otherwise): the \
                     transcript as the customer sees it (messages; never notes, tags or metadata) \
                     is sent to `email`. 3 an hour per conversation and 10 an hour per client \
                     address (429).",
                )
                .body::<TranscriptEmailRequest>()
                .responds(202, "The transcript is on its way."),
        )
}

/// The deployment's mailer, or 409 saying there is none.
fn mailer(state: &AppState) -> Result<&std::sync::Arc<Mailer>, ApiError> {
    state.settings.mail.as_ref().ok_or_else(|| {
        ApiError::Conflict("this server sends no email (JONO_SMTP_URL is not set)".into())
    })
}

/// Whether the account's address is confirmed (`EmailConfirmed` in its stream).
pub async fn email_confirmed(state: &AppState, agent_id: Uuid) -> Result<bool, ApiError> {
    let (account, _) = state
        .commands
        .load::<Account>(&agent_id.to_string())
        .await
        .map_err(ApiError::from)?;
    Ok(account
        .created
        .is_some_and(|account| account.email_confirmed))
}

/// Sends a new account (or one that asks again) the link that confirms its address; its
/// earlier link stops working. Does nothing without email.
pub async fn send_confirmation(
    state: &AppState,
    agent_id: Uuid,
    email: &Email,
    name: &str,
) -> Result<(), ApiError> {
    let Some(mailer) = &state.settings.mail else {
        return Ok(());
    };
    let token = links::issue(
        state.backend(),
        Purpose::ConfirmAddress,
        agent_id,
        CONFIRM_SECONDS,
    )
    .await?;
    let mail = Mail::ConfirmAddress {
        name: name.to_owned(),
        link: mailer.link(&format!("/confirm/{token}")),
    };
    mail::queue(state, mailer, email.as_str(), &mail).await?;
    Ok(())
}

/// `{token}` of a confirmation link.
#[derive(Deserialize, Serialize, JsonSchema)]
pub struct ConfirmRequest {
    pub token: String,
}

/// Anyone holding the link: the account's address is confirmed (`EmailConfirmed`). 404 for an
/// unknown, used or expired link.
async fn confirm(
    State(state): State<AppState>,
    Body(body): Body<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    mailer(&state)?;
    let agent_id = links::take(state.backend(), Purpose::ConfirmAddress, &body.token)
        .await?
        .ok_or(ApiError::NotFound)?;
    confirm_account(&state, agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records that the account's address is its person's; already confirmed is fine.
async fn confirm_account(state: &AppState, agent_id: Uuid) -> Result<(), ApiError> {
    let command = AccountCommand::ConfirmEmail { agent_id };
    let ctx = context(None, None);
    match state
        .commands
        .execute::<Account>(&agent_id.to_string(), command, &(), &ctx)
        .await
    {
        Ok(_) | Err(CommandError::Rejected(AccountError::EmailConfirmedAlready)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The caller asks for its confirmation link again: 202, the link is on its way (the earlier
/// one stops working). 409 when confirmed already; 3 an hour per account.
async fn resend_confirmation(
    State(state): State<AppState>,
    agent: AgentCaller,
) -> Result<StatusCode, ApiError> {
    mailer(&state)?;
    limits::enforce(
        &state,
        limits::CONFIRMATION_LINKS,
        &format!("account:{}", agent.agent_id),
    )
    .await?;
    if email_confirmed(&state, agent.agent_id).await? {
        return Err(ApiError::Conflict(
            "the email address is confirmed already".into(),
        ));
    }
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let email = Email::parse(&account.email).map_err(|e| ApiError::Internal(e.to_string()))?;
    send_confirmation(&state, agent.agent_id, &email, &account.name).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `{email}` of a forgotten password.
#[derive(Deserialize, Serialize, JsonSchema)]
pub struct ResetRequest {
    #[schemars(email)]
    pub email: String,
}

/// Anyone: 202 whether or not the email has an account, and in the same time either way (the
/// look-up and the message are made after the answer). An account gets a link that works once,
/// for 30 minutes. Limited per address and per email (5 an hour each).
async fn request_reset(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Body(body): Body<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    let mailer = mailer(&state)?.clone();
    let email = body.email.trim().to_lowercase();
    for key in [format!("address:{address}"), format!("email:{email}")] {
        limits::enforce(&state, limits::PASSWORD_RESETS, &key).await?;
    }
    let email = Email::parse(&email).map_err(invalid)?;
    tokio::spawn(async move {
        if let Err(error) = send_reset(&state, &mailer, &email).await {
            tracing::warn!(%error, "cannot send a password reset's link");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

async fn send_reset(state: &AppState, mailer: &Mailer, email: &Email) -> Result<(), ApiError> {
    let Some((agent_id, _)) = find_account(state, email).await? else {
        return Ok(());
    };
    let token = links::issue(
        state.backend(),
        Purpose::ResetPassword,
        agent_id,
        RESET_MINUTES * 60,
    )
    .await?;
    let mail = Mail::PasswordReset {
        link: mailer.link(&format!("/reset/{token}")),
        minutes: RESET_MINUTES,
    };
    mail::queue(state, mailer, email.as_str(), &mail).await?;
    Ok(())
}

/// `{token, new_password}`: the link's token and the password to set.
#[derive(Deserialize, Serialize, JsonSchema)]
pub struct ResetPassword {
    pub token: String,
    #[schemars(length(min = 10))]
    pub new_password: String,
}

/// Anyone holding the link: the password is set (the rules of sign-up), every session of the
/// account ends, and the address counts as confirmed (the link came to it). 404 for an
/// unknown, used or expired link, which changes nothing; the link works once.
async fn reset(
    State(state): State<AppState>,
    Body(body): Body<ResetPassword>,
) -> Result<StatusCode, ApiError> {
    mailer(&state)?;
    let password = Password::parse(body.new_password).map_err(invalid)?;
    // Only a live link gets a password hashed (memory-hungry work); it is used up below,
    // after the hashing, so a refused hashing (503) leaves it working.
    links::peek(state.backend(), Purpose::ResetPassword, &body.token)
        .await?
        .ok_or(ApiError::NotFound)?;
    let hash = auth::hash_password(password.expose().to_owned()).await?;
    let agent_id = links::take(state.backend(), Purpose::ResetPassword, &body.token)
        .await?
        .ok_or(ApiError::NotFound)?;
    secrets::set_password_hash(state.backend(), agent_id, &hash).await?;
    secrets::revoke_agent_tokens(state.backend(), agent_id, None).await?;
    state.live.close(CloseOrder::Agent {
        agent_id,
        keep: None,
    });
    confirm_account(&state, agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{email}`: where a customer wants its transcript.
#[derive(Deserialize, Serialize, JsonSchema)]
pub struct TranscriptEmailRequest {
    #[schemars(email)]
    pub email: String,
}

/// Its customer: the conversation's transcript as the customer may see it (messages, never a
/// note, a tag or metadata) goes to `email`. 202; 3 an hour per conversation and 10 an hour
/// per client address.
async fn email_transcript(
    State(state): State<AppState>,
    Path(c): Path<String>,
    ClientAddr(address): ClientAddr,
    caller: Caller,
    Body(body): Body<TranscriptEmailRequest>,
) -> Result<StatusCode, ApiError> {
    let conversation_id = path_id(&c)?;
    // A conversation the caller may not see is 404 (another organization's agent included);
    // only then is an agent told that this is the customer's to ask.
    let conversation = access::conversation(&state, &caller, conversation_id).await?;
    let Caller::Customer(customer) = &caller else {
        return Err(ApiError::Forbidden(
            "the customer asks for its transcript by email; agents download it".into(),
        ));
    };
    let mailer = mailer(&state)?;
    let email = Email::parse(&body.email).map_err(invalid)?;
    limits::enforce(
        &state,
        limits::TRANSCRIPT_EMAILS,
        &format!("conversation:{}", customer.conversation_id),
    )
    .await?;
    limits::enforce(
        &state,
        limits::TRANSCRIPT_EMAILS_PER_ADDRESS,
        &format!("address:{address}"),
    )
    .await?;
    // Every message answered before this request is in the transcript.
    crate::consistency::catch_up(&state).await?;
    let transcript =
        crate::routes::conversations::customer_transcript(&state, &conversation).await?;
    let organization =
        projections::directory::read::organization(state.backend(), conversation.organization_id)
            .await?
            .map_or_else(String::new, |organization| organization.name);
    let mail = Mail::Transcript {
        organization,
        transcript,
    };
    mail::queue(&state, mailer, email.as_str(), &mail).await?;
    Ok(StatusCode::ACCEPTED)
}
