//! The OpenAPI 3.1 document, assembled from the route declarations of every routes module
//! (`routes::all()`): each documented route is one operation, its path parameters described by
//! name here, its answers ended by the `default` problem.

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::registry::{Access, Documented};
use crate::error::Problem;

/// The OpenAPI 3.1 document: what `GET /v1/openapi.json` serves and `schemas/openapi.json`
/// holds.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    let problem = generator.subschema_for::<Problem>().to_value();
    let mut paths = Map::new();
    for routes in crate::routes::all() {
        for route in routes.documented() {
            let value = operation(&route, &mut generator, &problem);
            if let Value::Object(item) = paths.entry(route.path).or_insert_with(|| json!({})) {
                item.insert(route.method.into(), value);
            }
        }
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Jono",
            "version": "1",
            "description": "Jono's public contract (API.md): accounts and organizations, queues, conversations, canned responses, activity and the WebSocket. IDs are UUID strings; times are RFC 3339 in UTC; lists are pages, oldest first; errors are application/problem+json. Event and command schemas are in schemas/events and schemas/commands.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An agent token (sign-up, login, invitation acceptance) or a customer token (joining a queue).",
                },
            },
        },
    })
}

/// A route's operation object: `parameters` start with the path's, and the answers end with
/// `default`, the problem.
fn operation(route: &Documented, generator: &mut SchemaGenerator, problem: &Value) -> Value {
    let operation = route.operation;
    let mut value = Map::new();
    value.insert("operationId".into(), json!(operation.id));
    value.insert("tags".into(), json!([route.tag]));
    value.insert("summary".into(), json!(operation.summary));
    let parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(path_parameter)
        .chain(operation.queries.iter().cloned())
        .collect();
    if !parameters.is_empty() {
        value.insert("parameters".into(), Value::Array(parameters));
    }
    match operation.access {
        Some(Access::Public) => value.insert("security".into(), json!([])),
        Some(Access::OptionalToken) => value.insert("security".into(), json!([{}, {"bearer": []}])),
        None => None,
    };
    if let Some(description) = operation.description {
        value.insert("description".into(), json!(description));
    }
    if let Some((required, content)) = &operation.body {
        value.insert(
            "requestBody".into(),
            json!({"required": required, "content": content.resolve(generator)}),
        );
    }
    let mut responses = Map::new();
    for answer in &operation.answers {
        let mut response = Map::new();
        response.insert("description".into(), json!(answer.description));
        if !answer.content.0.is_empty() {
            response.insert("content".into(), answer.content.resolve(generator));
        }
        responses.insert(answer.status.to_string(), Value::Object(response));
    }
    responses.insert(
        "default".into(),
        json!({"description": "An error, as `application/problem+json` (RFC 9457).",
            "content": {"application/problem+json": {"schema": problem}}}),
    );
    value.insert("responses".into(), Value::Object(responses));
    for (name, extension) in &operation.extensions {
        value.insert((*name).into(), extension.resolve(generator));
    }
    Value::Object(value)
}

/// The schema of a path parameter, by its name.
fn path_parameter(name: &str) -> Value {
    let (schema, description) = match name {
        "org" => (
            json!({"type": "string", "format": "uuid"}),
            "An organization's id.",
        ),
        "queue" => (json!({"type": "string", "format": "uuid"}), "A queue's id."),
        "c" => (
            json!({"type": "string", "format": "uuid"}),
            "A conversation's id.",
        ),
        "agent" => (
            json!({"type": "string", "format": "uuid"}),
            "An agent's id.",
        ),
        "call" => (json!({"type": "string", "format": "uuid"}), "A call's id."),
        "id" => (
            json!({"type": "string", "format": "uuid"}),
            "The item's id.",
        ),
        "token" => (json!({"type": "string"}), "An invitation token."),
        "endpoint" => (
            json!({"type": "string", "format": "uuid"}),
            "A webhook endpoint's id.",
        ),
        "position" => (
            json!({"type": "integer", "format": "int64", "minimum": 1}),
            "An event's position in the log.",
        ),
        "tag" => (json!({"type": "string"}), "A tag."),
        _ => (json!({"type": "string"}), ""),
    };
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{Route, Routes};

    fn operation<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
        &document["paths"][path][method]
    }

    #[test]
    fn every_call_of_the_contract_is_described() {
        let document = document();
        for (method, path) in [
            ("post", "/v1/signup"),
            ("post", "/v1/login"),
            ("post", "/v1/logout"),
            ("get", "/v1/me"),
            ("post", "/v1/orgs/{org}/invitations"),
            ("post", "/v1/invitations/{token}/accept"),
            ("get", "/v1/orgs/{org}/invitations"),
            ("delete", "/v1/orgs/{org}/invitations/{invitation}"),
            ("put", "/v1/me/password"),
            ("get", "/v1/orgs/{org}/members"),
            ("put", "/v1/orgs/{org}/members/{agent}"),
            ("delete", "/v1/orgs/{org}/members/{agent}"),
            ("put", "/v1/me/status"),
            ("post", "/v1/login/two-factor"),
            ("post", "/v1/me/two-factor"),
            ("post", "/v1/me/two-factor/confirm"),
            ("post", "/v1/me/two-factor/disable"),
            ("get", "/v1/me/sessions"),
            ("delete", "/v1/me/sessions/{session}"),
            ("delete", "/v1/orgs/{org}/members/{agent}/sessions"),
            ("get", "/v1/orgs/{org}/security"),
            ("get", "/v1/orgs/{org}/sso"),
            ("put", "/v1/orgs/{org}/sso"),
            ("get", "/v1/sso/{org}/start"),
            ("get", "/v1/sso/callback"),
            ("put", "/v1/orgs/{org}/security"),
            ("post", "/v1/orgs/{org}/queues"),
            ("get", "/v1/orgs/{org}/queues"),
            ("get", "/v1/queues/{queue}"),
            ("put", "/v1/queues/{queue}/settings"),
            ("post", "/v1/queues/{queue}/handlers"),
            ("delete", "/v1/queues/{queue}/handlers/{agent}"),
            ("post", "/v1/queues/{queue}/open"),
            ("post", "/v1/queues/{queue}/close"),
            ("post", "/v1/queues/{queue}/pick"),
            ("post", "/v1/conversations/{c}/offer/accept"),
            ("post", "/v1/conversations/{c}/offer/decline"),
            ("get", "/v1/queues/{queue}/stats"),
            ("get", "/v1/queues/{queue}/public"),
            ("post", "/v1/queues/{queue}/join"),
            ("post", "/v1/queues/{queue}/messages"),
            ("get", "/v1/conversations/{c}"),
            ("get", "/v1/orgs/{org}/conversations"),
            ("get", "/v1/conversations/{c}/messages"),
            ("post", "/v1/conversations/{c}/messages"),
            ("post", "/v1/conversations/{c}/attachments"),
            ("post", "/v1/conversations/{c}/tags"),
            ("delete", "/v1/conversations/{c}/tags/{tag}"),
            ("get", "/v1/conversations/{c}/notes"),
            ("post", "/v1/conversations/{c}/notes"),
            ("put", "/v1/conversations/{c}/metadata"),
            ("post", "/v1/conversations/{c}/live"),
            ("post", "/v1/conversations/{c}/transfer"),
            ("post", "/v1/conversations/{c}/handoff"),
            ("post", "/v1/conversations/{c}/handoff/accept"),
            ("post", "/v1/conversations/{c}/handoff/decline"),
            ("post", "/v1/conversations/{c}/calls"),
            ("post", "/v1/conversations/{c}/calls/{call}/end"),
            ("post", "/v1/conversations/{c}/end"),
            ("post", "/v1/conversations/{c}/reopen"),
            ("post", "/v1/conversations/{c}/rating"),
            ("post", "/v1/conversations/{c}/block"),
            ("get", "/v1/orgs/{org}/blocks"),
            ("get", "/v1/orgs/{org}/audit"),
            ("delete", "/v1/orgs/{org}/blocks/{block}"),
            ("post", "/v1/orgs/{org}/erasures"),
            ("get", "/v1/orgs/{org}/retention"),
            ("put", "/v1/orgs/{org}/retention"),
            ("get", "/v1/webhooks/public-key"),
            ("get", "/v1/queues/{queue}/identity-secret"),
            ("post", "/v1/queues/{queue}/identity-secret"),
            ("delete", "/v1/queues/{queue}/identity-secret"),
            ("get", "/v1/conversations/{c}/same-customer"),
            ("get", "/v1/orgs/{org}/webhooks"),
            ("post", "/v1/orgs/{org}/webhooks"),
            ("delete", "/v1/orgs/{org}/webhooks/{endpoint}"),
            ("get", "/v1/orgs/{org}/webhooks/parked"),
            (
                "post",
                "/v1/orgs/{org}/webhooks/{endpoint}/deliveries/{position}/redeliver",
            ),
            ("get", "/v1/conversations/{c}/transcript"),
            ("post", "/v1/conversations/{c}/transcript/email"),
            ("post", "/v1/me/email-confirmation"),
            ("post", "/v1/email-confirmation"),
            ("post", "/v1/password-reset/request"),
            ("post", "/v1/password-reset"),
            ("post", "/v1/orgs/{org}/channels"),
            ("post", "/v1/orgs/{org}/directs"),
            ("get", "/v1/canned-responses"),
            ("post", "/v1/canned-responses"),
            ("put", "/v1/canned-responses/{id}"),
            ("delete", "/v1/canned-responses/{id}"),
            ("get", "/v1/activity"),
            ("get", "/v1/ws"),
        ] {
            let operation = operation(&document, method, path);
            assert!(operation.is_object(), "{method} {path} is missing");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("default"), "{method} {path}");
            assert!(
                responses
                    .keys()
                    // A redirect is the success of a browser's leg (single sign-on).
                    .any(|status| status.starts_with(['1', '2', '3'])),
                "{method} {path} has no success response"
            );
        }
    }

    #[test]
    fn a_declaration_becomes_its_operation() {
        async fn handler() {}
        let routes = Routes::new("things").route(
            Route::get("/v1/orgs/{org}/things", handler)
                .id("things")
                .summary("The things")
                .tag("other")
                .public()
                .describe("All of them.")
                .query("q", json!({"type": "string"}), "What to find.")
                .paged("the last thing's id")
                .body::<String>()
                .returns::<Vec<String>>(200, "A page of things.")
                .or_as("text/plain", json!({"type": "string"}))
                .responds(303, "Elsewhere.")
                .extension("x-thing", json!(true)),
        );
        let route = routes.documented().next().unwrap();
        let mut generator = SchemaSettings::draft2020_12().into_generator();
        let problem = json!({"$ref": "#/components/schemas/Problem"});
        let value = super::operation(&route, &mut generator, &problem);
        let names: Vec<&str> = value["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["org", "q", "after", "limit"]);
        assert_eq!(value["operationId"], "things");
        assert_eq!(value["tags"], json!(["other"]));
        assert_eq!(value["security"], json!([]));
        assert_eq!(value["description"], "All of them.");
        assert_eq!(value["x-thing"], true);
        assert_eq!(
            value["requestBody"],
            json!({"required": true, "content": {"application/json": {"schema": {"type": "string"}}}})
        );
        let ok = &value["responses"]["200"]["content"];
        assert_eq!(ok["application/json"]["schema"]["type"], "array");
        assert_eq!(ok["text/plain"]["schema"], json!({"type": "string"}));
        assert_eq!(
            value["responses"]["303"],
            json!({"description": "Elsewhere."})
        );
        assert_eq!(
            value["responses"]["default"]["content"]["application/problem+json"]["schema"],
            problem
        );
    }

    #[test]
    fn undocumented_routes_are_served_and_left_out() {
        async fn handler() {}
        let routes = Routes::new("web")
            .route(Route::get("/", handler).undocumented())
            .route(Route::post("/v1/x", handler).id("x").summary("X"));
        assert_eq!(
            routes.served().collect::<Vec<_>>(),
            [("get", "/"), ("post", "/v1/x")]
        );
        let documented: Vec<&str> = routes.documented().map(|route| route.path).collect();
        assert_eq!(documented, ["/v1/x"]);
    }

    #[test]
    fn every_reference_points_into_the_components() {
        fn walk(value: &Value, schemas: &Map<String, Value>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(reference)) = map.get("$ref") {
                        let name = reference
                            .strip_prefix("#/components/schemas/")
                            .unwrap_or_else(|| panic!("{reference} is not a component"));
                        assert!(schemas.contains_key(name), "{reference} is missing");
                    }
                    map.values().for_each(|value| walk(value, schemas));
                }
                Value::Array(items) => items.iter().for_each(|value| walk(value, schemas)),
                _ => {}
            }
        }
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        walk(&document, schemas);
    }

    #[test]
    fn path_parameters_match_the_paths() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|parameters| {
                        parameters
                            .iter()
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                let in_path: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }
    }

    #[test]
    fn the_queue_frame_says_its_estimate_is_a_placeholder() {
        let document = document().to_string();
        assert!(document.contains("A placeholder estimate"));
    }

    #[test]
    fn errors_are_problem_details() {
        let document = document();
        let problem = &document["components"]["schemas"]["Problem"];
        let mut required: Vec<&str> = problem["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|field| field.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["detail", "status", "title", "type"]);
    }
}
