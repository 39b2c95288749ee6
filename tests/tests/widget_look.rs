//! A queue's widget look (issue 15, item 4): the bottom corner it takes on the host page and the
//! launcher's colour are settings of the queue, shown to its operators and in the widget's public
//! view; a value that is not a corner or a `#rrggbb` colour is 422 and changes nothing (it goes
//! into the host page's styles).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api;
use jono_tests::Storage;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_takes_the_corner_and_colour_its_queue_sets() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::create_queue(&api, &owner, "Support").await;
        let settings = format!("/v1/queues/{queue}/settings");
        let public = format!("/v1/queues/{queue}/public");
        let look = |body: &Value| {
            (
                body["widget_position"].clone(),
                body["widget_color"].clone(),
            )
        };

        let fresh = api
            .get(&format!("/v1/queues/{queue}"), owner.token())
            .await
            .expect(200, "the queue");
        assert_eq!(
            look(&fresh.body),
            (json!("right"), Value::Null),
            "{}",
            fresh.text
        );
        let shown = api.get(&public, None).await.expect(200, "the public view");
        assert_eq!(
            look(&shown.body),
            (json!("right"), Value::Null),
            "{}",
            shown.text
        );

        let changed = api
            .put(
                &settings,
                owner.token(),
                json!({"widget_position": "left", "widget_color": "#1F6"}),
            )
            .await
            .expect(200, "a corner and a colour");
        assert_eq!(
            look(&changed.body),
            (json!("left"), json!("#11ff66")),
            "{}",
            changed.text
        );
        let shown = api.get(&public, None).await.expect(200, "the public view");
        assert_eq!(
            look(&shown.body),
            (json!("left"), json!("#11ff66")),
            "{}",
            shown.text
        );

        for bad in [
            json!({"widget_position": "top"}),
            json!({"widget_color": "red"}),
            json!({"widget_color": "#fff;}body{display:none"}),
            json!({"widget_color": "#1f6feb", "widget_position": "middle"}),
        ] {
            api.put(&settings, owner.token(), bad.clone())
                .await
                .expect_problem(422, &bad.to_string());
        }
        let shown = api.get(&public, None).await.expect(200, "the public view");
        assert_eq!(
            look(&shown.body),
            (json!("left"), json!("#11ff66")),
            "a refused change changes nothing"
        );

        let cleared = api
            .put(
                &settings,
                owner.token(),
                json!({"widget_position": null, "widget_color": null}),
            )
            .await
            .expect(200, "back to Jono's own look");
        assert_eq!(
            look(&cleared.body),
            (json!("right"), Value::Null),
            "{}",
            cleared.text
        );
    }
}
