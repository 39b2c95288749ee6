//! Every question of the read models' `read` modules, against rows the projectors made from
//! real domain events appended through the command layer.

use chrono::{Duration, Utc};
use cqrs_es::Aggregate;
use domain::account::{Account, AccountCommand};
use domain::canned::{CannedCommand, CannedResponses, Scope};
use domain::conversation::{
    AttachmentRef, Conversation, ConversationCommand, ConversationKind, EndReason,
};
use domain::ids;
use domain::metadata::{CustomerMetadata, ExternalUserId, LiveMetadata, VerifiedCustomer};
use domain::organization::{AcceptingAccount, Organization, OrganizationCommand};
use domain::queue::{LeaveReason, Queue, QueueCommand, SettingsPatch};
use domain::values::{
    Author, AuthorKind, CannedKey, CannedText, DisplayName, Email, FileName, MessageText, Name,
    NoteText, Role, Score, Tag, WelcomeMessage,
};
use projections::conversations::read::{ConversationFilter, ConversationStatus};
use projections::directory::read::Standing;
use serde_json::json;
use uuid::Uuid;

use crate::common::{Running, TestDb, World};
use crate::on_both_backends;

/// An organization with an owner and an agent, both handlers of one open queue.
pub struct Org {
    pub id: Uuid,
    pub owner: Uuid,
    pub agent: Uuid,
    pub queue: Uuid,
}

pub async fn account(world: &World, email: &str, name: &str) -> Uuid {
    let email = Email::parse(email).unwrap();
    let agent_id = ids::account_id(Uuid::new_v4(), &email);
    world
        .ok::<Account>(
            agent_id,
            AccountCommand::CreateAccount {
                agent_id,
                email,
                name: DisplayName::parse(name).unwrap(),
                email_confirmed: false,
            },
        )
        .await;
    agent_id
}

pub async fn org(world: &World, tag: &str) -> Org {
    let owner = account(world, &format!("owner@{tag}.example"), "Olga Owner").await;
    let agent = account(world, &format!("agent@{tag}.example"), "Aino Agent").await;
    let id = Uuid::new_v4();
    world
        .ok::<Organization>(
            id,
            OrganizationCommand::CreateOrganization {
                organization_id: id,
                name: Name::parse(format!("Org {tag}")).unwrap(),
                owner_id: Some(owner),
            },
        )
        .await;
    let invitation_id = Uuid::new_v4();
    let email = Email::parse(format!("agent@{tag}.example")).unwrap();
    world
        .ok::<Organization>(
            id,
            OrganizationCommand::CreateInvitation {
                invitation_id,
                email: email.clone(),
                role: Role::Agent,
                expires_at: Utc::now() + Duration::days(7),
                now: Utc::now(),
                by: Some(owner),
            },
        )
        .await;
    world
        .ok::<Organization>(
            id,
            OrganizationCommand::AcceptInvitation {
                invitation_id,
                agent_id: agent,
                email,
                now: Utc::now(),
                account: AcceptingAccount::New,
                confirmation_required: false,
            },
        )
        .await;
    let queue = Uuid::new_v4();
    world
        .ok::<Queue>(
            queue,
            QueueCommand::CreateQueue {
                queue_id: queue,
                organization_id: id,
                name: Name::parse("Support").unwrap(),
            },
        )
        .await;
    world
        .ok::<Queue>(
            queue,
            QueueCommand::OpenQueue {
                by: Some(owner),
                by_operator: true,
            },
        )
        .await;
    for handler in [owner, agent] {
        world
            .ok::<Queue>(
                queue,
                QueueCommand::AddHandler {
                    agent_id: handler,
                    by: Some(owner),
                },
            )
            .await;
    }
    Org {
        id,
        owner,
        agent,
        queue,
    }
}

pub async fn join(world: &World, queue: Uuid, metadata: serde_json::Value) -> Uuid {
    let conversation_id = Uuid::new_v4();
    world
        .ok::<Queue>(
            queue,
            QueueCommand::JoinQueue {
                conversation_id,
                metadata: CustomerMetadata::parse(metadata).unwrap(),
                customer: None,
            },
        )
        .await;
    conversation_id
}

pub async fn pick(world: &World, queue: Uuid, agent: Uuid) -> Uuid {
    let events = world
        .ok::<Queue>(
            queue,
            QueueCommand::PickCustomer {
                agent_id: agent,
                agent_name: "Aino Agent".into(),
            },
        )
        .await;
    let picked = events
        .iter()
        .find(|e| e.event_type == "CustomerPicked")
        .expect("a pick");
    picked.payload["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn agent_author(agent: Uuid) -> Author {
    Author::agent(agent, "Aino Agent")
}

/// The channel "team" of `org`, started by its owner.
pub async fn start_channel(world: &World, org: &Org) -> Uuid {
    let channel = Uuid::new_v4();
    world
        .ok::<Conversation>(
            channel,
            ConversationCommand::StartChannel {
                conversation_id: channel,
                organization_id: org.id,
                name: Name::parse("team").unwrap(),
                by: org.owner,
            },
        )
        .await;
    channel
}

/// The direct chat of `org`'s owner and agent.
pub async fn start_direct(world: &World, org: &Org) -> Uuid {
    let direct = ids::direct_conversation_id(org.id, org.owner, org.agent);
    world
        .ok::<Conversation>(
            direct,
            ConversationCommand::StartDirect {
                conversation_id: direct,
                organization_id: org.id,
                agents: [org.owner, org.agent],
            },
        )
        .await;
    direct
}

pub async fn say(world: &World, conversation: Uuid, author: Author, text: &str) {
    world
        .ok::<Conversation>(
            conversation,
            ConversationCommand::SendMessage {
                message_id: Uuid::new_v4(),
                author,
                text: Some(MessageText::parse(text).unwrap()),
                attachments: vec![],
            },
        )
        .await;
}

async fn directory_answers_logins_memberships_members_and_invitations(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "acme").await;
    let pending = Uuid::new_v4();
    world
        .ok::<Organization>(
            org.id,
            OrganizationCommand::CreateInvitation {
                invitation_id: pending,
                email: Email::parse("new@acme.example").unwrap(),
                role: Role::Operator,
                expires_at: Utc::now() + Duration::days(7),
                now: Utc::now(),
                by: Some(org.owner),
            },
        )
        .await;
    running.caught_up(&store).await;
    let backend = store.backend();

    let found = projections::directory::read::account_by_email(backend, "Agent@Acme.example")
        .await
        .unwrap()
        .expect("the agent's account");
    assert_eq!(found.agent_id, org.agent);
    assert_eq!(found.name, "Aino Agent");
    assert_eq!(
        projections::directory::read::account(backend, org.owner)
            .await
            .unwrap()
            .unwrap()
            .email,
        "owner@acme.example"
    );
    assert!(
        projections::directory::read::account_by_email(backend, "nobody@acme.example")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        projections::directory::read::organization(backend, org.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Org acme"
    );

    let memberships = projections::directory::read::memberships_of(backend, org.agent)
        .await
        .unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(
        (memberships[0].id, memberships[0].role.as_str()),
        (org.id, "agent")
    );
    assert_eq!(memberships[0].name, "Org acme");
    assert_eq!(
        projections::directory::read::role_of(backend, org.id, org.owner)
            .await
            .unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(
        projections::directory::read::role_of(backend, org.id, Uuid::new_v4())
            .await
            .unwrap(),
        None
    );
    let standing = |agent_id| async move {
        projections::directory::read::standings_of(backend, agent_id)
            .await
            .unwrap()
            .into_iter()
            .find(|(organization_id, _)| *organization_id == org.id)
            .map(|(_, standing)| standing)
    };
    assert_eq!(
        standing(org.owner).await,
        Some(Standing {
            role: Role::Owner,
            two_factor_required: false
        })
    );
    assert_eq!(
        standing(org.agent).await,
        Some(Standing {
            role: Role::Agent,
            two_factor_required: false
        })
    );
    assert!(
        projections::directory::read::standings_of(backend, Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    let members = projections::directory::read::members(backend, org.id)
        .await
        .unwrap();
    let roles: Vec<(Uuid, &str)> = members
        .iter()
        .map(|m| (m.agent_id, m.role.as_str()))
        .collect();
    assert_eq!(roles, vec![(org.owner, "owner"), (org.agent, "agent")]);

    let invitation = projections::directory::read::invitation(backend, pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invitation.email, "new@acme.example");
    assert_eq!(invitation.role, Role::Operator);
    assert!(!invitation.accepted);

    // A role change and a removal show at once in memberships and members.
    world
        .ok::<Organization>(
            org.id,
            OrganizationCommand::ChangeMemberRole {
                agent_id: org.agent,
                role: Role::Operator,
                by: Some(org.owner),
            },
        )
        .await;
    running.caught_up(&store).await;
    assert_eq!(
        projections::directory::read::role_of(backend, org.id, org.agent)
            .await
            .unwrap(),
        Some(Role::Operator)
    );
    // The organization's requirement of a second factor comes with the role, in one read.
    world
        .ok::<Organization>(
            org.id,
            OrganizationCommand::SetTwoFactorRequirement {
                required: true,
                by: Some(org.owner),
                own_two_factor: true,
            },
        )
        .await;
    running.caught_up(&store).await;
    assert_eq!(
        standing(org.agent).await,
        Some(Standing {
            role: Role::Operator,
            two_factor_required: true
        })
    );
    world
        .ok::<Organization>(
            org.id,
            OrganizationCommand::RemoveMember {
                agent_id: org.agent,
                by: Some(org.owner),
            },
        )
        .await;
    running.caught_up(&store).await;
    assert!(
        projections::directory::read::memberships_of(backend, org.agent)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(standing(org.agent).await, None);
    assert_eq!(
        projections::directory::read::members(backend, org.id)
            .await
            .unwrap()
            .len(),
        1
    );
    running.stop().await;
}

async fn queues_show_their_line_handlers_and_settings(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "q").await;
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::ChangeSettings {
                patch: SettingsPatch {
                    welcome_message: Some(Some(WelcomeMessage::parse("Hello!").unwrap())),
                    ..SettingsPatch::default()
                },
                by: Some(org.owner),
            },
        )
        .await;
    let first = join(&world, org.queue, json!({"name": "Ann"})).await;
    let second = join(&world, org.queue, json!({})).await;
    let third = join(&world, org.queue, json!({})).await;
    running.caught_up(&store).await;
    let backend = store.backend();

    let queues = projections::queues::read::queues_of(backend, org.id)
        .await
        .unwrap();
    assert_eq!(queues.len(), 1);
    let queue = &queues[0];
    assert_eq!(
        (queue.id, queue.name.as_str(), queue.open),
        (org.queue, "Support", true)
    );
    assert_eq!(queue.waiting, 3);
    assert!(queue.oldest_wait_seconds.is_some());
    let mut handlers = vec![org.owner, org.agent];
    handlers.sort();
    assert_eq!(queue.handlers, handlers);
    assert_eq!(queue.settings["welcome_message"], "Hello!");
    assert_eq!(
        projections::queues::read::queue(backend, org.queue)
            .await
            .unwrap()
            .as_ref(),
        Some(queue)
    );

    let line: Vec<Uuid> = projections::queues::read::waiting_line(backend, org.queue)
        .await
        .unwrap()
        .iter()
        .map(|w| w.conversation_id)
        .collect();
    assert_eq!(line, vec![first, second, third]);
    let place = |c| async move {
        projections::conversations::read::conversation(backend, c)
            .await
            .unwrap()
            .unwrap()
            .queue_position
    };
    assert_eq!(place(third).await, Some(3));
    // Read together (as concurrent requests' lookups are), each is what it is read alone; an
    // id of no conversation is absent.
    let nobody = Uuid::new_v4();
    let together = projections::conversations::read::conversations_by_id(
        backend,
        &[third, nobody, first, second],
    )
    .await
    .unwrap();
    assert_eq!(together.len(), 3);
    for (c, place) in [(first, 1), (second, 2), (third, 3)] {
        let alone = projections::conversations::read::conversation(backend, c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(together[&c], alone);
        assert_eq!(together[&c].queue_position, Some(place));
    }

    // The first is picked, the third leaves: the second is next, and nobody else moved.
    assert_eq!(pick(&world, org.queue, org.agent).await, first);
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::LeaveQueue {
                conversation_id: third,
                reason: LeaveReason::Abandoned,
                by: None,
            },
        )
        .await;
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::CloseQueue {
                by: Some(org.owner),
                by_operator: true,
            },
        )
        .await;
    running.caught_up(&store).await;
    let queue = projections::queues::read::queue(backend, org.queue)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((queue.open, queue.waiting), (false, 1));
    assert_eq!(place(second).await, Some(1));
    assert_eq!(place(first).await, None);
    running.stop().await;
}

async fn conversations_follow_picks_transfers_tags_metadata_and_the_end(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "c").await;
    let other_queue = Uuid::new_v4();
    world
        .ok::<Queue>(
            other_queue,
            QueueCommand::CreateQueue {
                queue_id: other_queue,
                organization_id: org.id,
                name: Name::parse("Billing").unwrap(),
            },
        )
        .await;
    world
        .ok::<Queue>(
            other_queue,
            QueueCommand::OpenQueue {
                by: None,
                by_operator: false,
            },
        )
        .await;
    let waiting_there = join(&world, other_queue, json!({})).await;
    let ann = join(&world, org.queue, json!({"name": "Ann"})).await;
    let bob = join(&world, org.queue, json!({})).await;
    assert_eq!(pick(&world, org.queue, org.agent).await, ann);
    let by = agent_author(org.agent);
    // Added out of order: a conversation's tags read back sorted.
    for tag in ["zebra", "billing", "vip", "api"] {
        world
            .ok::<Conversation>(
                ann,
                ConversationCommand::AddTag {
                    tag: Tag::parse(tag).unwrap(),
                    by: by.clone(),
                },
            )
            .await;
    }
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::RemoveTag {
                tag: Tag::parse("vip").unwrap(),
                by: by.clone(),
            },
        )
        .await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::UpdateLiveMetadata {
                live: LiveMetadata::parse(json!({"page": "https://shop.example/cart"})).unwrap(),
                by: Author::customer(ann, "Ann"),
            },
        )
        .await;
    // Bob, still waiting, moves to the other queue and waits there first.
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::TransferOut {
                conversation_id: bob,
                to_queue_id: other_queue,
                by: Some(by.clone()),
            },
        )
        .await;
    running.caught_up(&store).await;
    let backend = store.backend();

    let seen = projections::conversations::read::conversation(backend, ann)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.kind, ConversationKind::Customer);
    assert_eq!(seen.status, ConversationStatus::Active);
    assert_eq!(seen.agent_id, Some(org.agent));
    assert_eq!(seen.queue_id, Some(org.queue));
    assert_eq!(seen.organization_id, org.id);
    assert_eq!(seen.customer.metadata, json!({"name": "Ann"}));
    assert_eq!(
        seen.customer.live,
        json!({"page": "https://shop.example/cart"})
    );
    assert_eq!(seen.tags, ["api", "billing", "zebra"]);
    assert!(seen.picked_at.is_some() && seen.ended_at.is_none());
    let bob_seen = projections::conversations::read::conversation(backend, bob)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            bob_seen.status.as_str(),
            bob_seen.queue_id,
            bob_seen.queue_position
        ),
        ("waiting", Some(other_queue), Some(1))
    );
    assert!(bob_seen.tags.is_empty(), "{:?}", bob_seen.tags);
    let line = projections::queues::read::waiting_line(backend, other_queue)
        .await
        .unwrap();
    let line: Vec<Uuid> = line.iter().map(|w| w.conversation_id).collect();
    assert_eq!(line, vec![bob, waiting_there]);

    assert_eq!(
        projections::conversations::read::open_conversations(backend, org.agent)
            .await
            .unwrap(),
        1
    );
    let inbox = projections::conversations::read::inbox(backend, org.agent)
        .await
        .unwrap();
    assert_eq!(inbox.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ann]);
    assert_eq!(
        inbox[0].tags,
        ["api", "billing", "zebra"],
        "a listed one's too"
    );
    let tags = projections::conversations::read::organization_tags(backend, org.id)
        .await
        .unwrap();
    let tags: Vec<&str> = tags.iter().map(|t| t.tag.as_str()).collect();
    assert!(tags.contains(&"billing") && tags.contains(&"vip"));

    // Pages, oldest first, with filters; the cursor is the last item's id.
    let all = projections::conversations::read::conversations(
        backend,
        org.id,
        org.agent,
        &ConversationFilter::default(),
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![waiting_there, ann, bob]
    );
    let page = projections::conversations::read::conversations(
        backend,
        org.id,
        org.agent,
        &ConversationFilter::default(),
        Some(waiting_there),
        1,
    )
    .await
    .unwrap();
    assert_eq!(page.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ann]);
    let waiting = ConversationFilter {
        status: Some(ConversationStatus::Waiting),
        ..ConversationFilter::default()
    };
    let found = projections::conversations::read::conversations(
        backend, org.id, org.agent, &waiting, None, 100,
    )
    .await
    .unwrap();
    assert_eq!(
        found.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![waiting_there, bob]
    );
    let mine = ConversationFilter {
        agent_id: Some(org.agent),
        ..ConversationFilter::default()
    };
    assert_eq!(
        projections::conversations::read::conversations(
            backend, org.id, org.agent, &mine, None, 100
        )
        .await
        .unwrap()
        .len(),
        1
    );

    // Rated and ended: out of the inbox.
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::Rate {
                score: Score::parse(5).unwrap(),
                comment: None,
                by: Author::customer(ann, "Ann"),
            },
        )
        .await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::EndConversation {
                by: by.clone(),
                reason: EndReason::Ended,
                left_queue: None,
                at: None,
            },
        )
        .await;
    running.caught_up(&store).await;
    let ended = projections::conversations::read::conversation(backend, ann)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, ConversationStatus::Ended);
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.rating.map(|r| r.score), Some(5));
    assert_eq!(
        projections::conversations::read::open_conversations(backend, org.agent)
            .await
            .unwrap(),
        0
    );
    assert!(projections::conversations::read::inbox(backend, org.agent)
        .await
        .unwrap()
        .is_empty());
    running.stop().await;
}

async fn messages_notes_and_attachments_read_back(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "m").await;
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::ChangeSettings {
                patch: SettingsPatch {
                    welcome_message: Some(Some(WelcomeMessage::parse("Welcome!").unwrap())),
                    ..SettingsPatch::default()
                },
                by: None,
            },
        )
        .await;
    let ann = join(&world, org.queue, json!({"name": "Ann"})).await;
    pick(&world, org.queue, org.agent).await;
    say(
        &world,
        ann,
        Author::customer(ann, "Ann"),
        "Hi, my order is late",
    )
    .await;
    let attachment_id = Uuid::new_v4();
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::UploadAttachment {
                attachment: AttachmentRef {
                    attachment_id,
                    name: FileName::parse("receipt.png").unwrap(),
                    size: 1234,
                    content_type: "image/png".into(),
                    sha256: "ab".repeat(32),
                },
                by: agent_author(org.agent),
            },
        )
        .await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::SendMessage {
                message_id: Uuid::new_v4(),
                author: agent_author(org.agent),
                text: Some(MessageText::parse("Here is your receipt").unwrap()),
                attachments: vec![attachment_id],
            },
        )
        .await;
    let note_id = Uuid::new_v4();
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::AddNote {
                note_id,
                text: NoteText::parse("Gold customer").unwrap(),
                by: agent_author(org.agent),
            },
        )
        .await;
    running.caught_up(&store).await;
    let backend = store.backend();

    let messages = projections::messages::read::messages(backend, ann, 0, 100)
        .await
        .unwrap();
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(
        (messages[0].author.kind, messages[0].text.as_str()),
        (AuthorKind::System, "Welcome!")
    );
    assert_eq!(messages[1].author.kind, AuthorKind::Customer);
    assert_eq!(messages[1].author.id, ann);
    assert_eq!(messages[2].attachments.len(), 1);
    assert_eq!(messages[2].attachments[0].attachment_id, attachment_id);
    assert_eq!(messages[2].attachments[0].name, "receipt.png");
    let page = projections::messages::read::messages(backend, ann, 1, 1)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2]);
    assert!(projections::messages::read::messages(backend, ann, 3, 100)
        .await
        .unwrap()
        .is_empty());

    let notes = projections::messages::read::notes(backend, ann)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].id, notes[0].text.as_str()),
        (note_id, "Gold customer")
    );
    assert_eq!(notes[0].author.id, org.agent);

    let attachment = projections::messages::read::attachment(backend, attachment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attachment.conversation_id, ann);
    assert_eq!(
        (attachment.size, attachment.content_type.as_str()),
        (1234, "image/png")
    );
    assert!(
        projections::messages::read::attachment(backend, Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
    running.stop().await;
}

async fn activity_shows_an_agent_its_organizations_and_only_its_own_direct_chats(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "a").await;
    let elsewhere = self::org(&world, "elsewhere").await;
    let third = account(&world, "third@a.example", "Third").await;
    world
        .ok::<Organization>(
            org.id,
            OrganizationCommand::CreateInvitation {
                invitation_id: Uuid::new_v4(),
                email: Email::parse("third@a.example").unwrap(),
                role: Role::Agent,
                expires_at: Utc::now() + Duration::days(1),
                now: Utc::now(),
                by: None,
            },
        )
        .await;
    let ann = join(&world, org.queue, json!({})).await;
    join(&world, elsewhere.queue, json!({})).await;
    pick(&world, org.queue, org.agent).await;
    say(&world, ann, Author::customer(ann, "Ann"), "not activity").await;
    let channel = start_channel(&world, &org).await;
    say(&world, channel, agent_author(org.owner), "standup at ten").await;
    let direct = start_direct(&world, &org).await;
    say(&world, direct, agent_author(org.owner), "psst").await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::EndConversation {
                by: agent_author(org.agent),
                reason: EndReason::Ended,
                left_queue: None,
                at: None,
            },
        )
        .await;
    running.caught_up(&store).await;
    let backend = store.backend();

    let types = |items: &[projections::activity::read::ActivityItem]| -> Vec<String> {
        items.iter().map(|i| i.kind.clone()).collect()
    };
    let seen = projections::activity::read::activity_for(backend, org.agent, true, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        types(&seen),
        vec![
            "QueueOpened",
            "CustomerJoinedQueue",
            "CustomerPicked",
            "MessageSent",
            "MessageSent",
            "ConversationEnded"
        ]
    );
    assert!(seen.iter().all(|i| i.organization_id == org.id));
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(seen[2].agent_id, Some(org.agent));
    assert_eq!(seen[4].conversation_id, Some(direct));
    // Pages by position.
    let page =
        projections::activity::read::activity_for(backend, org.agent, true, seen[1].position, 2)
            .await
            .unwrap();
    assert_eq!(types(&page), vec!["CustomerPicked", "MessageSent"]);
    // The third agent is not a member: nothing. A member outside the direct chat: no "psst".
    assert!(
        projections::activity::read::activity_for(backend, third, true, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let elsewhere_seen =
        projections::activity::read::activity_for(backend, elsewhere.agent, true, 0, 100)
            .await
            .unwrap();
    assert!(elsewhere_seen
        .iter()
        .all(|i| i.organization_id == elsewhere.id));
    assert_eq!(
        types(&elsewhere_seen),
        vec!["QueueOpened", "CustomerJoinedQueue"]
    );
    running.stop().await;
}

async fn canned_responses_of_the_agent_and_its_organizations(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "k").await;
    let create = |scope: Scope, key: &str, by: Uuid| CannedCommand::CreateCannedResponse {
        response_id: Uuid::new_v4(),
        scope,
        key: CannedKey::parse(key).unwrap(),
        text: CannedText::parse(format!("text of {key}")).unwrap(),
        by,
    };
    let personal = Scope::Personal {
        agent_id: org.agent,
    };
    let shared = Scope::Organization {
        organization_id: org.id,
    };
    let owners = Scope::Personal {
        agent_id: org.owner,
    };
    let mine = create(personal, "hi", org.agent);
    let CannedCommand::CreateCannedResponse {
        response_id: mine_id,
        ..
    } = mine.clone()
    else {
        unreachable!()
    };
    world
        .ok::<CannedResponses>(ids::canned_scope_id(personal), mine)
        .await;
    world
        .ok::<CannedResponses>(
            ids::canned_scope_id(shared),
            create(shared, "bye", org.owner),
        )
        .await;
    world
        .ok::<CannedResponses>(
            ids::canned_scope_id(owners),
            create(owners, "secret", org.owner),
        )
        .await;
    world
        .ok::<CannedResponses>(
            ids::canned_scope_id(personal),
            CannedCommand::ChangeCannedResponse {
                response_id: mine_id,
                key: None,
                text: Some(CannedText::parse("Hello there!").unwrap()),
                by: org.agent,
            },
        )
        .await;
    running.caught_up(&store).await;
    let backend = store.backend();

    let seen = projections::canned::read::canned_for(backend, org.agent, true)
        .await
        .unwrap();
    let keys: Vec<(&str, Option<Uuid>)> = seen
        .iter()
        .map(|c| (c.key.as_str(), c.organization_id))
        .collect();
    assert_eq!(keys, vec![("hi", None), ("bye", Some(org.id))]);
    assert_eq!(seen[0].text, "Hello there!");
    let one = projections::canned::read::canned(backend, mine_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.agent_id, Some(org.agent));

    world
        .ok::<CannedResponses>(
            ids::canned_scope_id(personal),
            CannedCommand::DeleteCannedResponse {
                response_id: mine_id,
                by: org.agent,
            },
        )
        .await;
    running.caught_up(&store).await;
    assert!(projections::canned::read::canned(backend, mine_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        projections::canned::read::canned_for(backend, org.agent, true)
            .await
            .unwrap()
            .len(),
        1
    );
    running.stop().await;
}

/// A join of `user` of `queue`'s site, its identity verified.
async fn join_verified(world: &World, queue: Uuid, user: &str) -> Uuid {
    let conversation_id = Uuid::new_v4();
    let user_id = ExternalUserId::parse(user).unwrap();
    world
        .ok::<Queue>(
            queue,
            QueueCommand::JoinQueue {
                conversation_id,
                metadata: CustomerMetadata::default(),
                customer: Some(VerifiedCustomer {
                    customer_ref: ids::customer_ref(Uuid::nil(), queue, &user_id),
                    user_id,
                    name: Some(DisplayName::parse("Ann Lee").unwrap()),
                }),
            },
        )
        .await;
    conversation_id
}

async fn a_returning_customers_other_conversations_newest_first(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "r").await;
    let first = join_verified(&world, org.queue, "u-42").await;
    let guest = join(&world, org.queue, json!({"name": "Guest"})).await;
    let stranger = join_verified(&world, org.queue, "u-43").await;
    let second = join_verified(&world, org.queue, "u-42").await;
    let third = join_verified(&world, org.queue, "u-42").await;
    running.caught_up(&store).await;
    let backend = store.backend();
    let ids_of = |list: Vec<projections::conversations::read::Conversation>| {
        list.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids_of(
            projections::conversations::read::same_customer(backend, third, 50)
                .await
                .unwrap()
        ),
        vec![second, first]
    );
    assert_eq!(
        ids_of(
            projections::conversations::read::same_customer(backend, first, 50)
                .await
                .unwrap()
        ),
        vec![third, second]
    );
    assert_eq!(
        ids_of(
            projections::conversations::read::same_customer(backend, first, 1)
                .await
                .unwrap()
        ),
        vec![third]
    );
    assert!(
        projections::conversations::read::same_customer(backend, guest, 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        projections::conversations::read::same_customer(backend, stranger, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let shown = projections::conversations::read::conversation(backend, second)
        .await
        .unwrap()
        .unwrap();
    let verified = shown.verified.expect("the verified customer");
    assert_eq!(verified.user_id, "u-42");
    assert_eq!(verified.name.as_deref(), Some("Ann Lee"));
    assert!(
        projections::conversations::read::conversation(backend, guest)
            .await
            .unwrap()
            .unwrap()
            .verified
            .is_none()
    );
    running.stop().await;
}

/// An agent's request reads its session, name, standings and its organizations' last change
/// in the log in one statement (`agent_sessions`): each part as its own read would say it, and
/// the last change straight from the log, before any read model shows it.
async fn an_agents_session_is_read_with_its_name_standings_and_organizations_last_change(
    db: TestDb,
) {
    let store = db.open().await;
    let backend = store.backend();
    store::beside_log::migrate(backend).await.unwrap();
    let world = World::new(&store);
    let running = Running::all(&store);
    let acme = org(&world, "acme").await;
    // Acme's agent also owns an organization of its own.
    let own = Uuid::new_v4();
    let created = world
        .ok::<Organization>(
            own,
            OrganizationCommand::CreateOrganization {
                organization_id: own,
                name: Name::parse("Own").unwrap(),
                owner_id: Some(acme.agent),
            },
        )
        .await;
    running.caught_up(&store).await;
    let now = Utc::now().timestamp();
    let device = store::tokens::Device::default();
    store::tokens::insert_agent_token(backend, "agent-hash", acme.agent, &device, None, now)
        .await
        .unwrap();
    let stranger = Uuid::new_v4();
    store::tokens::insert_agent_token(backend, "stranger-hash", stranger, &device, None, now)
        .await
        .unwrap();
    let read = |hash: &'static str| async move {
        projections::directory::read::agent_sessions(
            backend,
            &[hash.to_owned()],
            Organization::TYPE,
        )
        .await
        .unwrap()
        .remove(hash)
    };
    let acme_last = store
        .stream_last_position(Organization::TYPE, &acme.id.to_string())
        .await
        .unwrap();
    let own_last = created.last().unwrap().position;

    let session = read("agent-hash").await.expect("the agent's session");
    assert_eq!(session.token.agent_id, acme.agent);
    assert_eq!(session.token.last_used_at, now);
    assert_eq!(session.name.as_deref(), Some("Aino Agent"));
    let agent = |role| Standing {
        role,
        two_factor_required: false,
    };
    assert_eq!(
        session.standings,
        vec![(acme.id, agent(Role::Agent)), (own, agent(Role::Owner))]
    );
    assert_eq!(
        session.standings,
        projections::directory::read::standings_of(backend, acme.agent)
            .await
            .unwrap()
    );
    assert_eq!(session.organizations_changed, acme_last.max(own_last));

    // A change of one of its organizations counts at once, before any read model shows it.
    running.stop().await;
    let changed = world
        .ok::<Organization>(
            acme.id,
            OrganizationCommand::ChangeMemberRole {
                agent_id: acme.agent,
                role: Role::Operator,
                by: Some(acme.owner),
            },
        )
        .await;
    let session = read("agent-hash").await.expect("the agent's session");
    assert_eq!(
        session.organizations_changed,
        changed.last().unwrap().position
    );
    assert_eq!(session.standings[0], (acme.id, agent(Role::Agent)));

    // An agent of no organization and without an account: its session, and nothing else.
    let session = read("stranger-hash").await.expect("the stranger's session");
    assert_eq!(session.token.agent_id, stranger);
    assert_eq!(session.name, None);
    assert!(session.standings.is_empty());
    assert_eq!(session.organizations_changed, 0);
    assert!(read("no-such-hash").await.is_none());
}

on_both_backends!(
    a_returning_customers_other_conversations_newest_first,
    an_agents_session_is_read_with_its_name_standings_and_organizations_last_change,
    directory_answers_logins_memberships_members_and_invitations,
    queues_show_their_line_handlers_and_settings,
    conversations_follow_picks_transfers_tags_metadata_and_the_end,
    messages_notes_and_attachments_read_back,
    activity_shows_an_agent_its_organizations_and_only_its_own_direct_chats,
    canned_responses_of_the_agent_and_its_organizations,
);
