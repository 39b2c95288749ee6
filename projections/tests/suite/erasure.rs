//! `CustomerErased`: every read model that holds the customer's personal data blanks it, the
//! search finds nothing of it, the statistics stay as they were, and the audit records it.

use chrono::Utc;
use domain::conversation::{
    AttachmentRef, Conversation, ConversationCommand, EndReason, ErasureReason,
};
use domain::ids;
use domain::metadata::{CustomerMetadata, ExternalUserId, LiveMetadata, VerifiedCustomer};
use domain::organization::{Organization, OrganizationCommand};
use domain::queue::{Queue, QueueCommand};
use domain::values::{
    Author, DisplayName, FileName, MessageText, NoteText, RatingComment, RetentionDays, Score,
    ERASED,
};
use projections::audit::{self, AuditFilter};
use projections::search;
use projections::stats::{stats_from_log, stats_from_rows, Scope};
use serde_json::json;
use uuid::Uuid;

use crate::common::{Running, TestDb};
use crate::on_both_backends;
use crate::reads::{agent_author, org, pick, say};

async fn an_erasure_blanks_the_customers_rows_and_keeps_the_statistics(db: TestDb) {
    let store = db.open().await;
    let world = crate::common::World::new(&store);
    let running = Running::all(&store);
    let org = org(&world, "erase").await;
    // A verified customer with a name and metadata, a message, an answer with a file, a
    // note, a rating with a comment, live metadata.
    let ann = Uuid::new_v4();
    let user_id = ExternalUserId::parse("u-erase").unwrap();
    let customer_ref = ids::customer_ref(Uuid::nil(), org.queue, &user_id);
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::JoinQueue {
                conversation_id: ann,
                metadata: CustomerMetadata::parse(
                    json!({"name": "Annikki Zyxwv", "email": "annikki@zyxwv.example"}),
                )
                .unwrap(),
                customer: Some(VerifiedCustomer {
                    customer_ref,
                    user_id,
                    name: Some(DisplayName::parse("Annikki Zyxwv").unwrap()),
                }),
            },
        )
        .await;
    pick(&world, org.queue, org.agent).await;
    let customer = Author::customer(ann, "Annikki Zyxwv");
    say(&world, ann, customer.clone(), "my secret is quuxplorf").await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::UpdateLiveMetadata {
                live: LiveMetadata::parse(json!({"page": "/quuxplorf"})).unwrap(),
                by: customer.clone(),
            },
        )
        .await;
    let attachment_id = Uuid::new_v4();
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::UploadAttachment {
                attachment: AttachmentRef {
                    attachment_id,
                    name: FileName::parse("quuxplorf-passport.png").unwrap(),
                    size: 10,
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
                text: Some(MessageText::parse("got it, quuxplorf").unwrap()),
                attachments: vec![attachment_id],
            },
        )
        .await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::AddNote {
                note_id: Uuid::new_v4(),
                text: NoteText::parse("note on quuxplorf").unwrap(),
                by: agent_author(org.agent),
            },
        )
        .await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::EndConversation {
                by: agent_author(org.agent),
                reason: EndReason::Ended,
                left_queue: None,
                at: Some(Utc::now()),
            },
        )
        .await;
    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::Rate {
                score: Score::parse(4).unwrap(),
                comment: Some(RatingComment::parse("quuxplorf was great").unwrap()),
                by: customer,
            },
        )
        .await;
    world
        .ok::<Organization>(
            org.id,
            OrganizationCommand::SetRetention {
                retention_days: Some(RetentionDays::parse(30).unwrap()),
                by: Some(org.owner),
            },
        )
        .await;
    running.caught_up(&store).await;
    let backend = store.backend();
    let found = |query: &'static str| async move {
        search::search(backend, org.id, org.agent, query, None, 50)
            .await
            .unwrap()
    };
    assert!(!found("quuxplorf").await.is_empty());
    assert_eq!(
        projections::conversations::read::conversations_of_customer(backend, org.id, customer_ref)
            .await
            .unwrap(),
        vec![ann]
    );
    assert_eq!(
        projections::directory::read::retention_days(backend, org.id)
            .await
            .unwrap(),
        Some(30)
    );
    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        projections::conversations::read::past_retention(backend, org.id, cutoff, 10)
            .await
            .unwrap(),
        vec![ann]
    );
    let stats_before = stats_from_rows(backend, Scope::Queue(org.queue), None, None, None)
        .await
        .unwrap();

    world
        .ok::<Conversation>(
            ann,
            ConversationCommand::EraseCustomer {
                by: agent_author(org.owner),
                reason: ErasureReason::Request,
                at: Utc::now(),
            },
        )
        .await;
    running.caught_up(&store).await;

    let view = projections::conversations::read::conversation(backend, ann)
        .await
        .unwrap()
        .unwrap();
    assert!(view.erased_at.is_some());
    assert_eq!(view.customer.metadata, json!({}));
    assert_eq!(view.customer.live, json!({}));
    assert!(view.verified.is_none());
    let rating = view.rating.expect("the score stays");
    assert_eq!((rating.score, rating.comment), (4, None));
    for message in projections::messages::read::messages(backend, ann, 0, 100)
        .await
        .unwrap()
    {
        assert_eq!(message.text, ERASED);
        if message.author.kind == domain::values::AuthorKind::Customer {
            assert_eq!(message.author.name, ERASED);
        } else {
            assert_eq!(message.author.name, "Aino Agent");
        }
        for attachment in &message.attachments {
            assert_eq!(attachment.name, ERASED);
        }
    }
    for note in projections::messages::read::notes(backend, ann)
        .await
        .unwrap()
    {
        assert_eq!(note.text, ERASED);
    }
    let attachment = projections::messages::read::attachment(backend, attachment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attachment.name, ERASED);
    assert!(found("quuxplorf").await.is_empty());
    assert!(found("Annikki").await.is_empty());
    assert!(found("zyxwv.example").await.is_empty());
    assert!(projections::conversations::read::conversations_of_customer(
        backend,
        org.id,
        customer_ref
    )
    .await
    .unwrap()
    .is_empty());
    assert!(
        projections::conversations::read::past_retention(backend, org.id, cutoff, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The statistics need nothing personal: the same from the rows and from the log.
    let stats_after = stats_from_rows(
        backend,
        Scope::Queue(org.queue),
        None,
        Some(stats_before.to),
        None,
    )
    .await
    .unwrap();
    assert_eq!(stats_after.total, stats_before.total);
    let from_log = stats_from_log(
        &store,
        Scope::Queue(org.queue),
        None,
        Some(stats_before.to),
        None,
    )
    .await
    .unwrap();
    assert_eq!(from_log.total, stats_before.total);
    // The erasure and the retention are audited; the erasure's subject is the conversation.
    let audited = audit::entries(backend, org.id, &AuditFilter::default(), None, 100)
        .await
        .unwrap();
    let erased = audited
        .iter()
        .find(|entry| entry.kind == "CustomerErased")
        .expect("the erasure audited");
    assert_eq!(erased.subject, Some(ann));
    assert_eq!(erased.details["reason"], "request");
    assert!(audited.iter().any(|entry| entry.kind == "RetentionSet"));
    running.stop().await;
}

on_both_backends!(an_erasure_blanks_the_customers_rows_and_keeps_the_statistics);
