use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    #[error("the organization exists already")]
    AlreadyCreated,
    #[error("no such organization")]
    UnknownOrganization,
    #[error("you are not a member of this organization")]
    NotAMember,
    #[error("your role does not allow this")]
    NotAllowed,
    #[error("no such member")]
    UnknownMember,
    #[error("an organization keeps at least one owner")]
    LastOwner,
    #[error("the invitation exists already")]
    InvitationExists,
    #[error("no such invitation")]
    UnknownInvitation,
    #[error("the invitation has been used")]
    InvitationUsed,
    #[error("the invitation has expired")]
    InvitationExpired,
    #[error("the invitation is for another email address")]
    InvitationOfAnotherEmail,
    #[error("you are a member of this organization already")]
    AlreadyMember,
    #[error(
        "confirm your email address before you join an organization: open the link we sent \
         to it, or ask for a new one (POST /v1/me/email-confirmation)"
    )]
    EmailNotConfirmed,
    #[error(
        "you may not join this organization's queues until {} UTC",
        until.format("%Y-%m-%d %H:%M")
    )]
    VisitorBlocked {
        until: chrono::DateTime<chrono::Utc>,
    },
    #[error("a block runs from 1 minute to 365 days")]
    BlockLength,
    #[error("the block exists already")]
    BlockExists,
    #[error("no such block")]
    UnknownBlock,
    #[error("the block has ended already")]
    BlockEnded,
    #[error(
        "this organization requires two-factor authentication: turn it on for your account \
         (POST /v1/me/two-factor, then confirm it with a code), then try again"
    )]
    TwoFactorRequired,
    #[error("turn on two-factor authentication for your own account before requiring it")]
    TwoFactorFirst,
    #[error(
        "this organization signs its members in through its identity provider: use \
         \"Sign in with SSO\" (GET /v1/sso/{{organization}}/start)"
    )]
    SsoRequired,
    #[error("this organization has no single sign-on")]
    SsoNotConfigured,
    #[error("the issuer is an http(s) URL and the client id is not empty")]
    SsoSettings,
    #[error(
        "a webhook endpoint is an http(s) URL of at most {} characters, for at least one of \
         these event types: {}",
        super::WEBHOOK_URL_MAX,
        super::WEBHOOK_EVENT_TYPES.join(", ")
    )]
    WebhookSettings,
    #[error(
        "an organization has at most {} webhook endpoints",
        super::WEBHOOK_ENDPOINTS_MAX
    )]
    TooManyWebhooks,
    #[error("this URL is registered already")]
    WebhookExists,
    #[error("no such webhook endpoint")]
    UnknownWebhook,
}

impl Refusal for OrganizationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyCreated | Self::InvitationExists | Self::AlreadyMember => {
                ErrorKind::Conflict
            }
            Self::LastOwner | Self::BlockExists | Self::BlockEnded => ErrorKind::Conflict,
            Self::BlockLength => ErrorKind::Invalid,
            // A used or expired invitation is answered as unknown: API.md says 404 for all three.
            Self::UnknownOrganization
            | Self::NotAMember
            | Self::UnknownMember
            | Self::UnknownInvitation
            | Self::InvitationUsed
            | Self::InvitationExpired
            | Self::UnknownBlock => ErrorKind::NotFound,
            Self::NotAllowed
            | Self::InvitationOfAnotherEmail
            | Self::VisitorBlocked { .. }
            | Self::TwoFactorRequired
            | Self::EmailNotConfirmed => ErrorKind::Forbidden,
            Self::TwoFactorFirst => ErrorKind::Conflict,
            Self::SsoRequired => ErrorKind::Forbidden,
            Self::SsoNotConfigured => ErrorKind::NotFound,
            Self::SsoSettings | Self::WebhookSettings => ErrorKind::Invalid,
            Self::TooManyWebhooks | Self::WebhookExists => ErrorKind::Conflict,
            Self::UnknownWebhook => ErrorKind::NotFound,
        }
    }
}
