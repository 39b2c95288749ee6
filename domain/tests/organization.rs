//! `Organization`: members, roles (owner ⊇ operator ⊇ agent) and invitations.

mod common;

use common::{at, fold, id, name, AGENT, ORG, OTHER_AGENT, THIRD_AGENT};
use cqrs_es::test::TestFramework;
use domain::organization::{
    AcceptingAccount, Organization, OrganizationCommand as C, OrganizationError,
    OrganizationEvent as E, RECENT_USED_INVITATIONS,
};
use domain::values::{Email, Role, VisitorKey};
use uuid::Uuid;

const OWNER: Uuid = AGENT;
const OPERATOR: Uuid = OTHER_AGENT;
const MEMBER: Uuid = THIRD_AGENT;
const STRANGER: Uuid = Uuid::from_u128(0x0_3f);
const INVITATION: Uuid = Uuid::from_u128(0x0_4a);

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("a valid test value")
}

fn test() -> TestFramework<Organization> {
    TestFramework::<Organization>::with(())
}

fn created(owner_id: Option<Uuid>) -> E {
    E::OrganizationCreated {
        organization_id: ORG,
        name: name("Acme"),
        owner_id,
    }
}

fn member_added(agent_id: Uuid, role: Role) -> E {
    E::MemberAdded {
        organization_id: ORG,
        agent_id,
        role,
    }
}

/// An organization with an owner, an operator and an agent.
fn team() -> Vec<E> {
    vec![
        created(Some(OWNER)),
        member_added(OWNER, Role::Owner),
        member_added(OPERATOR, Role::Operator),
        member_added(MEMBER, Role::Agent),
    ]
}

fn invited(role: Role, by: Option<Uuid>) -> E {
    E::InvitationCreated {
        organization_id: ORG,
        invitation_id: INVITATION,
        email: email("new@example.com"),
        role,
        expires_at: at(8, 12),
        invited_by: by,
        created_at: Some(at(1, 12)),
    }
}

fn invite(role: Role, by: Option<Uuid>) -> C {
    C::CreateInvitation {
        invitation_id: INVITATION,
        email: email("new@example.com"),
        role,
        expires_at: at(8, 12),
        now: at(1, 12),
        by,
    }
}

fn accept(agent_id: Uuid, raw_email: &str, now_day: u32) -> C {
    C::AcceptInvitation {
        invitation_id: INVITATION,
        agent_id,
        email: email(raw_email),
        now: at(now_day, 12),
        account: AcceptingAccount::New,
        confirmation_required: false,
    }
}

fn with(mut events: Vec<E>, more: impl IntoIterator<Item = E>) -> Vec<E> {
    events.extend(more);
    events
}

// ---- CreateOrganization ----

#[test]
fn sign_up_creates_an_organization_with_its_owner() {
    test()
        .given_no_previous_events()
        .when(C::CreateOrganization {
            organization_id: ORG,
            name: name("Acme"),
            owner_id: Some(OWNER),
        })
        .then_expect_events(vec![created(Some(OWNER)), member_added(OWNER, Role::Owner)]);
}

#[test]
fn the_admin_command_line_creates_an_organization_without_members() {
    test()
        .given_no_previous_events()
        .when(C::CreateOrganization {
            organization_id: ORG,
            name: name("Acme"),
            owner_id: None,
        })
        .then_expect_events(vec![created(None)]);
}

#[test]
fn an_organization_is_created_once() {
    test()
        .given(team())
        .when(C::CreateOrganization {
            organization_id: ORG,
            name: name("Acme again"),
            owner_id: Some(STRANGER),
        })
        .then_expect_error(OrganizationError::AlreadyCreated);
}

// ---- CreateInvitation ----

#[test]
fn an_operator_invites_an_agent() {
    test()
        .given(team())
        .when(invite(Role::Agent, Some(OPERATOR)))
        .then_expect_events(vec![invited(Role::Agent, Some(OPERATOR))]);
}

#[test]
fn an_owner_invites_an_owner() {
    test()
        .given(team())
        .when(invite(Role::Owner, Some(OWNER)))
        .then_expect_events(vec![invited(Role::Owner, Some(OWNER))]);
}

#[test]
fn the_admin_command_line_invites_the_first_owner() {
    test()
        .given(vec![created(None)])
        .when(invite(Role::Owner, None))
        .then_expect_events(vec![invited(Role::Owner, None)]);
}

#[test]
fn only_owners_grant_operator() {
    test()
        .given(team())
        .when(invite(Role::Operator, Some(OPERATOR)))
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(team())
        .when(invite(Role::Operator, Some(OWNER)))
        .then_expect_events(vec![invited(Role::Operator, Some(OWNER))]);
}

#[test]
fn an_agent_cannot_invite() {
    test()
        .given(team())
        .when(invite(Role::Agent, Some(MEMBER)))
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn a_stranger_cannot_invite() {
    test()
        .given(team())
        .when(invite(Role::Agent, Some(STRANGER)))
        .then_expect_error(OrganizationError::NotAMember);
}

#[test]
fn nobody_invites_to_an_unknown_organization() {
    test()
        .given_no_previous_events()
        .when(invite(Role::Agent, None))
        .then_expect_error(OrganizationError::UnknownOrganization);
}

#[test]
fn an_invitation_id_is_used_once() {
    test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(invite(Role::Agent, Some(OWNER)))
        .then_expect_error(OrganizationError::InvitationExists);
}

// ---- AcceptInvitation ----

#[test]
fn accepting_an_invitation_adds_a_member_with_its_role() {
    test()
        .given(with(team(), [invited(Role::Operator, Some(OWNER))]))
        .when(accept(STRANGER, "new@example.com", 2))
        .then_expect_events(vec![
            E::InvitationAccepted {
                organization_id: ORG,
                invitation_id: INVITATION,
                agent_id: STRANGER,
            },
            member_added(STRANGER, Role::Operator),
        ]);
}

/// An acceptance by an account that exists, on a deployment that asks for confirmed addresses
/// (`required`) or not.
fn accept_as(account: AcceptingAccount, required: bool) -> C {
    match accept(STRANGER, "new@example.com", 2) {
        C::AcceptInvitation {
            invitation_id,
            agent_id,
            email,
            now,
            ..
        } => C::AcceptInvitation {
            invitation_id,
            agent_id,
            email,
            now,
            account,
            confirmation_required: required,
        },
        other => other,
    }
}

#[test]
fn with_email_set_up_an_account_that_never_confirmed_its_address_cannot_join() {
    test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(accept_as(AcceptingAccount::Unconfirmed, true))
        .then_expect_error(OrganizationError::EmailNotConfirmed);
}

#[test]
fn a_confirmed_or_new_account_joins_and_without_email_anyone_does_as_before() {
    for (account, required) in [
        (AcceptingAccount::Confirmed, true),
        (AcceptingAccount::New, true),
        (AcceptingAccount::Unconfirmed, false),
    ] {
        let events = test()
            .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
            .when(accept_as(account, required))
            .inspect_result()
            .unwrap();
        assert_eq!(events.len(), 2, "{account:?}, required {required}");
    }
}

#[test]
fn an_invitation_matches_its_email_case_insensitively() {
    let events = test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(accept(STRANGER, "NEW@Example.COM", 2))
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 2);
}

#[test]
fn an_invitation_is_accepted_once() {
    test()
        .given(with(
            team(),
            [
                invited(Role::Agent, Some(OWNER)),
                E::InvitationAccepted {
                    organization_id: ORG,
                    invitation_id: INVITATION,
                    agent_id: STRANGER,
                },
                member_added(STRANGER, Role::Agent),
            ],
        ))
        .when(accept(id(0x99), "new@example.com", 2))
        .then_expect_error(OrganizationError::InvitationUsed);
}

#[test]
fn an_expired_invitation_is_refused() {
    test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(accept(STRANGER, "new@example.com", 9))
        .then_expect_error(OrganizationError::InvitationExpired);
}

#[test]
fn an_invitation_expires_at_its_very_instant() {
    test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(accept(STRANGER, "new@example.com", 8))
        .then_expect_error(OrganizationError::InvitationExpired);
}

#[test]
fn an_invitation_is_for_its_own_email() {
    test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(accept(STRANGER, "other@example.com", 2))
        .then_expect_error(OrganizationError::InvitationOfAnotherEmail);
}

#[test]
fn an_unknown_invitation_is_refused() {
    test()
        .given(team())
        .when(accept(STRANGER, "new@example.com", 2))
        .then_expect_error(OrganizationError::UnknownInvitation);
}

#[test]
fn a_member_cannot_accept_an_invitation_again() {
    test()
        .given(with(team(), [invited(Role::Operator, Some(OWNER))]))
        .when(accept(MEMBER, "new@example.com", 2))
        .then_expect_error(OrganizationError::AlreadyMember);
}

#[test]
fn nobody_accepts_into_an_unknown_organization() {
    test()
        .given_no_previous_events()
        .when(accept(STRANGER, "new@example.com", 2))
        .then_expect_error(OrganizationError::UnknownOrganization);
}

// ---- ChangeMemberRole ----

fn change(agent_id: Uuid, role: Role, by: Option<Uuid>) -> C {
    C::ChangeMemberRole { agent_id, role, by }
}

#[test]
fn an_owner_promotes_an_agent_to_operator() {
    test()
        .given(team())
        .when(change(MEMBER, Role::Operator, Some(OWNER)))
        .then_expect_events(vec![E::MemberRoleChanged {
            organization_id: ORG,
            agent_id: MEMBER,
            role: Role::Operator,
            previous: Role::Agent,
        }]);
}

#[test]
fn an_operator_cannot_promote_to_operator() {
    test()
        .given(team())
        .when(change(MEMBER, Role::Operator, Some(OPERATOR)))
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn an_operator_cannot_demote_an_operator() {
    test()
        .given(with(team(), [member_added(STRANGER, Role::Operator)]))
        .when(change(STRANGER, Role::Agent, Some(OPERATOR)))
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn an_agent_cannot_change_roles() {
    test()
        .given(with(team(), [member_added(STRANGER, Role::Agent)]))
        .when(change(STRANGER, Role::Agent, Some(MEMBER)))
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn a_stranger_cannot_change_roles() {
    test()
        .given(team())
        .when(change(MEMBER, Role::Operator, Some(STRANGER)))
        .then_expect_error(OrganizationError::NotAMember);
}

#[test]
fn the_role_of_an_unknown_member_cannot_change() {
    test()
        .given(team())
        .when(change(STRANGER, Role::Operator, Some(OWNER)))
        .then_expect_error(OrganizationError::UnknownMember);
}

#[test]
fn giving_a_member_its_own_role_writes_nothing() {
    test()
        .given(team())
        .when(change(OPERATOR, Role::Operator, Some(OWNER)))
        .then_expect_events(vec![]);
}

#[test]
fn the_last_owner_cannot_step_down() {
    test()
        .given(team())
        .when(change(OWNER, Role::Operator, Some(OWNER)))
        .then_expect_error(OrganizationError::LastOwner);
}

#[test]
fn one_of_two_owners_may_step_down() {
    test()
        .given(with(team(), [member_added(STRANGER, Role::Owner)]))
        .when(change(OWNER, Role::Agent, Some(STRANGER)))
        .then_expect_events(vec![E::MemberRoleChanged {
            organization_id: ORG,
            agent_id: OWNER,
            role: Role::Agent,
            previous: Role::Owner,
        }]);
}

#[test]
fn roles_cannot_change_in_an_unknown_organization() {
    test()
        .given_no_previous_events()
        .when(change(MEMBER, Role::Operator, None))
        .then_expect_error(OrganizationError::UnknownOrganization);
}

// ---- RemoveMember ----

fn remove(agent_id: Uuid, by: Option<Uuid>) -> C {
    C::RemoveMember { agent_id, by }
}

fn removed(agent_id: Uuid) -> E {
    E::MemberRemoved {
        organization_id: ORG,
        agent_id,
    }
}

#[test]
fn an_operator_removes_an_agent() {
    test()
        .given(team())
        .when(remove(MEMBER, Some(OPERATOR)))
        .then_expect_events(vec![removed(MEMBER)]);
}

#[test]
fn only_owners_remove_operators() {
    test()
        .given(with(team(), [member_added(STRANGER, Role::Operator)]))
        .when(remove(STRANGER, Some(OPERATOR)))
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(team())
        .when(remove(OPERATOR, Some(OWNER)))
        .then_expect_events(vec![removed(OPERATOR)]);
}

#[test]
fn an_agent_cannot_remove_anyone() {
    test()
        .given(with(team(), [member_added(STRANGER, Role::Agent)]))
        .when(remove(STRANGER, Some(MEMBER)))
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn a_stranger_cannot_remove_anyone() {
    test()
        .given(team())
        .when(remove(MEMBER, Some(STRANGER)))
        .then_expect_error(OrganizationError::NotAMember);
}

#[test]
fn an_unknown_member_cannot_be_removed() {
    test()
        .given(team())
        .when(remove(STRANGER, Some(OWNER)))
        .then_expect_error(OrganizationError::UnknownMember);
}

#[test]
fn a_removed_member_is_unknown() {
    test()
        .given(with(team(), [removed(MEMBER)]))
        .when(remove(MEMBER, Some(OWNER)))
        .then_expect_error(OrganizationError::UnknownMember);
}

#[test]
fn the_last_owner_cannot_be_removed() {
    test()
        .given(team())
        .when(remove(OWNER, Some(OWNER)))
        .then_expect_error(OrganizationError::LastOwner);
    // Not even by the operator's command line.
    test()
        .given(team())
        .when(remove(OWNER, None))
        .then_expect_error(OrganizationError::LastOwner);
}

#[test]
fn an_owner_is_removed_while_another_remains() {
    test()
        .given(with(team(), [member_added(STRANGER, Role::Owner)]))
        .when(remove(OWNER, Some(STRANGER)))
        .then_expect_events(vec![removed(OWNER)]);
}

#[test]
fn nobody_is_removed_from_an_unknown_organization() {
    test()
        .given_no_previous_events()
        .when(remove(MEMBER, None))
        .then_expect_error(OrganizationError::UnknownOrganization);
}

// ---- blocks of abusive visitors ----

const BLOCK: Uuid = Uuid::from_u128(0x0_5b);
const OTHER_BLOCK: Uuid = Uuid::from_u128(0x0_5c);
const CONVERSATION: Uuid = Uuid::from_u128(0x0_6c);

fn visitor(raw: &str) -> VisitorKey {
    VisitorKey::parse(raw).expect("a valid test value")
}

fn block(block_id: Uuid, key: &str, from_day: u32, to_day: u32, by: Uuid) -> C {
    C::BlockCustomer {
        block_id,
        conversation_id: CONVERSATION,
        visitor: Some(visitor(key)),
        until: at(to_day, 12),
        reason: None,
        by,
        at: at(from_day, 12),
    }
}

fn blocked(block_id: Uuid, key: &str, from_day: u32, to_day: u32, by: Uuid) -> E {
    E::CustomerBlocked {
        organization_id: ORG,
        block_id,
        conversation_id: CONVERSATION,
        visitor: Some(visitor(key)),
        until: at(to_day, 12),
        reason: None,
        blocked_by: by,
        blocked_at: at(from_day, 12),
    }
}

fn admit(key: &str, day: u32) -> C {
    C::AdmitVisitor {
        visitor: visitor(key),
        at: at(day, 12),
    }
}

const KEY: &str = "00112233445566778899aabbccddeeff";
const OTHER_KEY: &str = "ffeeddccbbaa99887766554433221100";

#[test]
fn any_member_blocks_a_customer() {
    test()
        .given(team())
        .when(block(BLOCK, KEY, 1, 2, MEMBER))
        .then_expect_events(vec![blocked(BLOCK, KEY, 1, 2, MEMBER)]);
}

#[test]
fn a_stranger_blocks_nobody() {
    test()
        .given(team())
        .when(block(BLOCK, KEY, 1, 2, STRANGER))
        .then_expect_error(OrganizationError::NotAMember);
}

#[test]
fn a_block_runs_from_a_minute_to_a_year() {
    let mut too_short = block(BLOCK, KEY, 1, 1, MEMBER);
    if let C::BlockCustomer { until, at, .. } = &mut too_short {
        *until = *at + chrono::Duration::seconds(59);
    }
    test()
        .given(team())
        .when(too_short)
        .then_expect_error(OrganizationError::BlockLength);
    let mut too_long = block(BLOCK, KEY, 1, 1, MEMBER);
    if let C::BlockCustomer { until, at, .. } = &mut too_long {
        *until = *at + chrono::Duration::days(366);
    }
    test()
        .given(team())
        .when(too_long)
        .then_expect_error(OrganizationError::BlockLength);
}

#[test]
fn a_blocked_visitor_is_refused_until_the_block_runs_out() {
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER)]))
        .when(admit(KEY, 2))
        .then_expect_error(OrganizationError::VisitorBlocked { until: at(3, 12) });
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER)]))
        .when(admit(KEY, 3))
        .then_expect_events(vec![]);
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER)]))
        .when(admit(OTHER_KEY, 2))
        .then_expect_events(vec![]);
}

#[test]
fn an_operator_lifts_a_block_and_the_visitor_is_admitted() {
    let lifted = E::CustomerBlockLifted {
        organization_id: ORG,
        block_id: BLOCK,
        lifted_by: Some(OPERATOR),
    };
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER)]))
        .when(C::LiftBlock {
            block_id: BLOCK,
            by: Some(OPERATOR),
            at: at(2, 12),
        })
        .then_expect_events(vec![lifted.clone()]);
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER), lifted]))
        .when(admit(KEY, 2))
        .then_expect_events(vec![]);
}

#[test]
fn an_agent_cannot_lift_a_block() {
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER)]))
        .when(C::LiftBlock {
            block_id: BLOCK,
            by: Some(MEMBER),
            at: at(2, 12),
        })
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn a_block_that_ran_out_is_not_lifted() {
    test()
        .given(with(team(), [blocked(BLOCK, KEY, 1, 3, MEMBER)]))
        .when(C::LiftBlock {
            block_id: BLOCK,
            by: Some(OPERATOR),
            at: at(4, 12),
        })
        .then_expect_error(OrganizationError::BlockEnded);
    test()
        .given(team())
        .when(C::LiftBlock {
            block_id: BLOCK,
            by: Some(OPERATOR),
            at: at(2, 12),
        })
        .then_expect_error(OrganizationError::UnknownBlock);
}

#[test]
fn blocks_that_ran_out_are_forgotten_so_the_state_holds_only_live_ones() {
    let mut organization = Organization::default();
    for event in with(
        team(),
        [
            blocked(BLOCK, KEY, 1, 2, MEMBER),
            blocked(OTHER_BLOCK, OTHER_KEY, 5, 6, MEMBER),
        ],
    ) {
        cqrs_es::Aggregate::apply(&mut organization, event);
    }
    assert_eq!(
        organization.blocks.keys().copied().collect::<Vec<_>>(),
        vec![OTHER_BLOCK]
    );
}

// ---- RevokeInvitation ----

fn revoke(by: Option<Uuid>) -> C {
    C::RevokeInvitation {
        invitation_id: INVITATION,
        by,
    }
}

fn revoked(by: Option<Uuid>) -> E {
    E::InvitationRevoked {
        organization_id: ORG,
        invitation_id: INVITATION,
        revoked_by: by,
    }
}

#[test]
fn an_operator_revokes_an_agents_invitation_and_it_can_no_longer_be_accepted() {
    test()
        .given(with(team(), [invited(Role::Agent, Some(OPERATOR))]))
        .when(revoke(Some(OPERATOR)))
        .then_expect_events(vec![revoked(Some(OPERATOR))]);
    test()
        .given(with(
            team(),
            [
                invited(Role::Agent, Some(OPERATOR)),
                revoked(Some(OPERATOR)),
            ],
        ))
        .when(accept(STRANGER, "new@example.com", 2))
        .then_expect_error(OrganizationError::UnknownInvitation);
}

#[test]
fn only_an_owner_revokes_an_operators_invitation() {
    test()
        .given(with(team(), [invited(Role::Operator, Some(OWNER))]))
        .when(revoke(Some(OPERATOR)))
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(with(team(), [invited(Role::Agent, Some(OWNER))]))
        .when(revoke(Some(MEMBER)))
        .then_expect_error(OrganizationError::NotAllowed);
}

#[test]
fn an_accepted_or_unknown_invitation_is_not_revoked() {
    test()
        .given(team())
        .when(revoke(Some(OWNER)))
        .then_expect_error(OrganizationError::UnknownInvitation);
    test()
        .given(with(
            team(),
            [
                invited(Role::Agent, Some(OWNER)),
                E::InvitationAccepted {
                    organization_id: ORG,
                    invitation_id: INVITATION,
                    agent_id: STRANGER,
                },
            ],
        ))
        .when(revoke(Some(OWNER)))
        .then_expect_error(OrganizationError::InvitationUsed);
}

fn two_factor_set(required: bool, by: Option<Uuid>) -> E {
    E::TwoFactorRequirementSet {
        organization_id: ORG,
        required,
        set_by: by,
    }
}

#[test]
fn only_an_owner_requires_two_factor_authentication_and_setting_it_twice_appends_once() {
    test()
        .given(team())
        .when(C::SetTwoFactorRequirement {
            required: true,
            by: Some(OWNER),
            own_two_factor: true,
        })
        .then_expect_events(vec![two_factor_set(true, Some(OWNER))]);
    test()
        .given(team())
        .when(C::SetTwoFactorRequirement {
            required: true,
            by: Some(OPERATOR),
            own_two_factor: true,
        })
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(with(team(), [two_factor_set(true, Some(OWNER))]))
        .when(C::SetTwoFactorRequirement {
            required: true,
            by: Some(OWNER),
            own_two_factor: true,
        })
        .then_expect_events(vec![]);
    test()
        .given(with(team(), [two_factor_set(true, Some(OWNER))]))
        .when(C::SetTwoFactorRequirement {
            required: false,
            by: None,
            own_two_factor: false,
        })
        .then_expect_events(vec![two_factor_set(false, None)]);
    // An owner without a second factor would lock itself out.
    test()
        .given(team())
        .when(C::SetTwoFactorRequirement {
            required: true,
            by: Some(OWNER),
            own_two_factor: false,
        })
        .then_expect_error(OrganizationError::TwoFactorFirst);
}

#[test]
fn a_member_without_a_second_factor_is_refused_while_the_organization_requires_one() {
    let admit = |two_factor| C::AdmitMember {
        agent_id: MEMBER,
        two_factor,
    };
    test()
        .given(team())
        .when(admit(false))
        .then_expect_events(vec![]);
    test()
        .given(with(team(), [two_factor_set(true, Some(OWNER))]))
        .when(admit(false))
        .then_expect_error(OrganizationError::TwoFactorRequired);
    test()
        .given(with(team(), [two_factor_set(true, Some(OWNER))]))
        .when(admit(true))
        .then_expect_events(vec![]);
    test()
        .given(with(
            team(),
            [
                two_factor_set(true, Some(OWNER)),
                two_factor_set(false, Some(OWNER)),
            ],
        ))
        .when(admit(false))
        .then_expect_events(vec![]);
    test()
        .given(with(team(), [two_factor_set(true, Some(OWNER))]))
        .when(C::AdmitMember {
            agent_id: STRANGER,
            two_factor: true,
        })
        .then_expect_error(OrganizationError::NotAMember);
}

#[test]
fn an_owner_ends_a_members_sessions_and_nobody_else_does() {
    test()
        .given(team())
        .when(C::EndMemberSessions {
            agent_id: MEMBER,
            by: OWNER,
        })
        .then_expect_events(vec![E::MemberSessionsEnded {
            organization_id: ORG,
            agent_id: MEMBER,
            ended_by: OWNER,
        }]);
    test()
        .given(team())
        .when(C::EndMemberSessions {
            agent_id: MEMBER,
            by: OPERATOR,
        })
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(team())
        .when(C::EndMemberSessions {
            agent_id: STRANGER,
            by: OWNER,
        })
        .then_expect_error(OrganizationError::UnknownMember);
}

fn sso_configured(required: bool) -> E {
    E::SsoConfigured {
        organization_id: ORG,
        issuer: "http://127.0.0.1:9/issuer".into(),
        client_id: "jono".into(),
        required,
        set_by: Some(OWNER),
    }
}

#[test]
fn only_an_owner_sets_single_sign_on_and_its_settings_must_be_usable() {
    let configure = |issuer: &str, client_id: &str, by| C::ConfigureSso {
        issuer: issuer.into(),
        client_id: client_id.into(),
        required: true,
        by: Some(by),
    };
    test()
        .given(team())
        .when(configure("http://127.0.0.1:9/issuer/", " jono ", OWNER))
        .then_expect_events(vec![sso_configured(true)]);
    test()
        .given(team())
        .when(configure("http://127.0.0.1:9/issuer", "jono", OPERATOR))
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(team())
        .when(configure("ftp://example.com", "jono", OWNER))
        .then_expect_error(OrganizationError::SsoSettings);
    test()
        .given(team())
        .when(configure("https://idp.example.com", " ", OWNER))
        .then_expect_error(OrganizationError::SsoSettings);
}

#[test]
fn a_required_sso_refuses_password_logins_except_for_owners() {
    test()
        .given(with(team(), [sso_configured(true)]))
        .when(C::AdmitPasswordLogin { agent_id: MEMBER })
        .then_expect_error(OrganizationError::SsoRequired);
    test()
        .given(with(team(), [sso_configured(true)]))
        .when(C::AdmitPasswordLogin { agent_id: OWNER })
        .then_expect_events(vec![]);
    test()
        .given(with(team(), [sso_configured(false)]))
        .when(C::AdmitPasswordLogin { agent_id: MEMBER })
        .then_expect_events(vec![]);
    test()
        .given(team())
        .when(C::AdmitSso)
        .then_expect_error(OrganizationError::SsoNotConfigured);
    test()
        .given(with(team(), [sso_configured(false)]))
        .when(C::AdmitSso)
        .then_expect_events(vec![]);
}

const ENDPOINT: Uuid = Uuid::from_u128(0x0_5e);

fn add_endpoint(endpoint_id: Uuid, url: &str, types: &[&str], by: Uuid) -> C {
    C::AddWebhookEndpoint {
        endpoint_id,
        url: url.into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        by: Some(by),
    }
}

fn endpoint_added(endpoint_id: Uuid, url: &str, types: &[&str]) -> E {
    E::WebhookEndpointAdded {
        organization_id: ORG,
        endpoint_id,
        url: url.into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        added_by: Some(OPERATOR),
    }
}

#[test]
fn operators_register_webhook_endpoints_and_agents_do_not() {
    // The types come back in the list's order, without repeats.
    test()
        .given(team())
        .when(add_endpoint(
            ENDPOINT,
            " https://hooks.example.com/jono ",
            &["MessageSent", "CustomerJoinedQueue", "MessageSent"],
            OPERATOR,
        ))
        .then_expect_events(vec![endpoint_added(
            ENDPOINT,
            "https://hooks.example.com/jono",
            &["CustomerJoinedQueue", "MessageSent"],
        )]);
    test()
        .given(team())
        .when(add_endpoint(
            ENDPOINT,
            "https://hooks.example.com/jono",
            &["MessageSent"],
            MEMBER,
        ))
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(team())
        .when(add_endpoint(
            ENDPOINT,
            "https://hooks.example.com/jono",
            &["MessageSent"],
            STRANGER,
        ))
        .then_expect_error(OrganizationError::NotAMember);
}

#[test]
fn a_webhook_endpoint_needs_an_http_url_of_bounded_length_and_known_event_types() {
    let long = format!("https://example.com/{}", "a".repeat(2000));
    for (url, types) in [
        ("ftp://example.com/x", vec!["MessageSent"]),
        ("example.com/x", vec!["MessageSent"]),
        ("https://exa mple.com/x", vec!["MessageSent"]),
        (long.as_str(), vec!["MessageSent"]),
        ("https://example.com/x", vec![]),
        (
            "https://example.com/x",
            vec!["MessageSent", "PasswordChanged"],
        ),
        // Not an event an endpoint may receive.
        ("https://example.com/x", vec!["NoteAdded"]),
    ] {
        test()
            .given(team())
            .when(add_endpoint(ENDPOINT, url, &types, OPERATOR))
            .then_expect_error(OrganizationError::WebhookSettings);
    }
}

#[test]
fn an_organization_has_at_most_ten_endpoints_and_no_url_twice() {
    let url = |i: u128| format!("https://example.com/{i}");
    let ten: Vec<E> = (0..10u128)
        .map(|i| endpoint_added(Uuid::from_u128(0x100 + i), &url(i), &["MessageSent"]))
        .collect();
    test()
        .given(with(team(), ten))
        .when(add_endpoint(
            ENDPOINT,
            "https://example.com/eleventh",
            &["MessageSent"],
            OPERATOR,
        ))
        .then_expect_error(OrganizationError::TooManyWebhooks);
    test()
        .given(with(
            team(),
            [endpoint_added(ENDPOINT, &url(1), &["MessageSent"])],
        ))
        .when(add_endpoint(
            Uuid::from_u128(0x200),
            &url(1),
            &["ConversationEnded"],
            OPERATOR,
        ))
        .then_expect_error(OrganizationError::WebhookExists);
}

#[test]
fn operators_remove_an_endpoint_once() {
    let added = endpoint_added(ENDPOINT, "https://example.com/x", &["MessageSent"]);
    test()
        .given(with(team(), [added.clone()]))
        .when(C::RemoveWebhookEndpoint {
            endpoint_id: ENDPOINT,
            by: Some(OPERATOR),
        })
        .then_expect_events(vec![E::WebhookEndpointRemoved {
            organization_id: ORG,
            endpoint_id: ENDPOINT,
            removed_by: Some(OPERATOR),
        }]);
    test()
        .given(with(team(), [added.clone()]))
        .when(C::RemoveWebhookEndpoint {
            endpoint_id: ENDPOINT,
            by: Some(MEMBER),
        })
        .then_expect_error(OrganizationError::NotAllowed);
    let removed = E::WebhookEndpointRemoved {
        organization_id: ORG,
        endpoint_id: ENDPOINT,
        removed_by: Some(OPERATOR),
    };
    test()
        .given(with(team(), [added.clone(), removed]))
        .when(C::RemoveWebhookEndpoint {
            endpoint_id: ENDPOINT,
            by: Some(OPERATOR),
        })
        .then_expect_error(OrganizationError::UnknownWebhook);
}

fn retention_set(days: Option<u32>, by: Option<Uuid>) -> E {
    E::RetentionSet {
        organization_id: ORG,
        retention_days: days.map(|days| {
            domain::values::RetentionDays::parse(days.into()).expect("a valid test value")
        }),
        set_by: by,
    }
}

fn set_retention(days: Option<u32>, by: Option<Uuid>) -> C {
    C::SetRetention {
        retention_days: days.map(|days| {
            domain::values::RetentionDays::parse(days.into()).expect("a valid test value")
        }),
        by,
    }
}

#[test]
fn operators_set_the_retention_and_setting_it_again_appends_nothing() {
    test()
        .given(team())
        .when(set_retention(Some(30), Some(OPERATOR)))
        .then_expect_events(vec![retention_set(Some(30), Some(OPERATOR))]);
    test()
        .given(team())
        .when(set_retention(Some(30), Some(MEMBER)))
        .then_expect_error(OrganizationError::NotAllowed);
    test()
        .given(with(team(), [retention_set(Some(30), Some(OWNER))]))
        .when(set_retention(Some(30), Some(OWNER)))
        .then_expect_events(vec![]);
    test()
        .given(with(team(), [retention_set(Some(30), Some(OWNER))]))
        .when(set_retention(None, None))
        .then_expect_events(vec![retention_set(None, None)]);
}

#[test]
fn a_retention_is_one_day_to_ten_years() {
    use domain::values::RetentionDays;
    assert!(RetentionDays::parse(0).is_err());
    assert!(RetentionDays::parse(-1).is_err());
    assert!(RetentionDays::parse(3_651).is_err());
    assert_eq!(
        RetentionDays::parse(3_650).map(RetentionDays::get),
        Ok(3_650)
    );
    assert_eq!(RetentionDays::parse(1).map(RetentionDays::get), Ok(1));
}

// ---- the state holds pending invitations only ----

fn accepted(invitation_id: Uuid, agent_id: Uuid) -> E {
    E::InvitationAccepted {
        organization_id: ORG,
        invitation_id,
        agent_id,
    }
}

/// The owner's invitation of an agent, with these dates.
fn invitation(
    invitation_id: Uuid,
    expires_at: chrono::DateTime<chrono::Utc>,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
) -> E {
    E::InvitationCreated {
        organization_id: ORG,
        invitation_id,
        email: email("new@example.com"),
        role: Role::Agent,
        expires_at,
        invited_by: Some(OWNER),
        created_at,
    }
}

fn invited_as(invitation_id: Uuid) -> E {
    invitation(invitation_id, at(8, 12), Some(at(1, 12)))
}

#[test]
fn an_accepted_or_revoked_invitation_is_no_longer_pending() {
    let pending: Organization = fold(with(team(), [invited(Role::Agent, Some(OWNER))]));
    assert_eq!(pending.invitations.len(), 1);
    let used: Organization = fold(with(
        team(),
        [
            invited(Role::Agent, Some(OWNER)),
            accepted(INVITATION, STRANGER),
            member_added(STRANGER, Role::Agent),
        ],
    ));
    assert!(used.invitations.is_empty());
    assert_eq!(Vec::from(used.used_invitations), vec![INVITATION]);
    let withdrawn: Organization = fold(with(
        team(),
        [invited(Role::Agent, Some(OWNER)), revoked(Some(OWNER))],
    ));
    assert!(withdrawn.invitations.is_empty());
    assert!(withdrawn.used_invitations.is_empty());
}

/// An invitation made on `day` (of the test's month), expiring a week later.
fn invited_on(invitation_id: Uuid, day: u32) -> E {
    invitation(invitation_id, at(day + 7, 12), Some(at(day, 12)))
}

#[test]
fn an_invitation_that_expired_unaccepted_is_forgotten_when_the_next_is_made() {
    let early = Uuid::from_u128(0xe1);
    let later = Uuid::from_u128(0xe2);
    let state: Organization = fold(with(team(), [invited_on(early, 1), invited_on(later, 9)]));
    assert_eq!(
        state.invitations.keys().copied().collect::<Vec<_>>(),
        vec![later],
        "the first expired on day 8, before the second was made"
    );
    // One still running stays.
    let both: Organization = fold(with(team(), [invited_on(early, 1), invited_on(later, 3)]));
    assert_eq!(both.invitations.len(), 2);
    // An event written before `created_at` was recorded forgets nothing.
    let old = invitation(later, at(16, 12), None);
    let kept: Organization = fold(with(team(), [invited_on(early, 1), old]));
    assert_eq!(kept.invitations.len(), 2);
}

#[test]
fn pending_invitations_that_keep_expiring_stay_bounded() {
    // One invitation a day for ten years, none accepted: a week's worth stay pending.
    let events: Vec<E> = (0..3650u32)
        .map(|n| {
            let made = at(1, 12) + chrono::Duration::days(i64::from(n));
            let id = Uuid::from_u128(0x1_0000 + u128::from(n));
            invitation(id, made + chrono::Duration::days(7), Some(made))
        })
        .collect();
    let state: Organization = fold(with(team(), events));
    assert!(state.invitations.len() <= 7, "{}", state.invitations.len());
}

#[test]
fn an_accepted_invitations_id_is_not_made_again() {
    test()
        .given(with(
            team(),
            [
                invited(Role::Agent, Some(OWNER)),
                accepted(INVITATION, STRANGER),
            ],
        ))
        .when(invite(Role::Agent, Some(OWNER)))
        .then_expect_error(OrganizationError::InvitationExists);
}

/// Ten thousand invitations made and accepted, one after another.
fn many_accepted() -> Vec<E> {
    let mut events = team();
    for n in 0..10_000u128 {
        events.push(invited_as(id(0x10_000 + n)));
        events.push(accepted(id(0x10_000 + n), id(0x90_000 + n)));
        events.push(member_added(id(0x90_000 + n), Role::Agent));
    }
    events
}

#[test]
fn an_organizations_invitations_do_not_grow_with_its_history() {
    let state: Organization = fold(many_accepted());
    assert_eq!(state.members.len(), 3 + 10_000);
    assert!(state.invitations.is_empty());
    assert!(state.used_invitations.len() <= RECENT_USED_INVITATIONS);
}

#[test]
fn a_lately_accepted_invitation_is_used_and_an_old_one_unknown_both_404() {
    let accept_again = |invitation_id: Uuid| C::AcceptInvitation {
        invitation_id,
        agent_id: STRANGER,
        email: email("new@example.com"),
        now: at(2, 12),
        account: AcceptingAccount::New,
        confirmation_required: false,
    };
    test()
        .given(many_accepted())
        .when(accept_again(id(0x10_000 + 9_999)))
        .then_expect_error(OrganizationError::InvitationUsed);
    test()
        .given(many_accepted())
        .when(C::RevokeInvitation {
            invitation_id: id(0x10_000 + 9_999),
            by: Some(OWNER),
        })
        .then_expect_error(OrganizationError::InvitationUsed);
    test()
        .given(many_accepted())
        .when(accept_again(id(0x10_000)))
        .then_expect_error(OrganizationError::UnknownInvitation);
}
