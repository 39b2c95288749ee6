//! The route declarations: one [`Route`] per method and path, which is both the axum route and
//! its operation in the OpenAPI document. Each routes module lists its own in a [`Routes`]
//! (`routes()`); the app's router and the document are built from the same lists
//! (`routes::all()`), so neither can have an operation the other lacks.
//!
//! An operation's schemas are resolved only when the document is written: a body or an answer
//! is kept as a function of the [`SchemaGenerator`] made from its Rust type.

use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use axum::Router;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::state::AppState;

/// A schema, now or once the generator is at hand.
#[derive(Clone)]
pub(super) enum Schema {
    /// Written out: `{"type": "string"}`.
    Literal(Value),
    /// A Rust type's, by reference into the components.
    Of(fn(&mut SchemaGenerator) -> Value),
}

impl Schema {
    fn of<T: JsonSchema>() -> Self {
        Self::Of(|generator| generator.subschema_for::<T>().to_value())
    }

    pub(super) fn resolve(&self, generator: &mut SchemaGenerator) -> Value {
        match self {
            Self::Literal(value) => value.clone(),
            Self::Of(schema) => schema(generator),
        }
    }
}

/// Who may call an operation without the bearer token every other operation needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Anyone.
    Public,
    /// Anyone; a bearer token changes what it does.
    OptionalToken,
}

/// A request body or one answer: its media types and their schemas.
#[derive(Clone)]
pub(super) struct Content(pub(super) Vec<(&'static str, Schema)>);

impl Content {
    pub(super) fn resolve(&self, generator: &mut SchemaGenerator) -> Value {
        let mut content = Map::new();
        for (media, schema) in &self.0 {
            content.insert(
                (*media).into(),
                json!({"schema": schema.resolve(generator)}),
            );
        }
        Value::Object(content)
    }
}

/// One answer of an operation.
#[derive(Clone)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) description: String,
    pub(super) content: Content,
}

/// What the document says of a route.
#[derive(Clone, Default)]
pub struct Operation {
    pub(super) id: &'static str,
    pub(super) summary: &'static str,
    tag: Option<&'static str>,
    pub(super) description: Option<&'static str>,
    pub(super) access: Option<Access>,
    pub(super) queries: Vec<Value>,
    /// Whether it is required, and its content.
    pub(super) body: Option<(bool, Content)>,
    pub(super) answers: Vec<Answer>,
    pub(super) extensions: Vec<(&'static str, Schema)>,
}

/// One method on one path: its handler, and its operation unless it is not part of the API.
pub struct Route {
    method: &'static str,
    path: &'static str,
    handler: MethodRouter<AppState>,
    operation: Option<Operation>,
}

macro_rules! constructors {
    ($($method:ident),*) => {$(
        #[doc = concat!("`", stringify!($method), " PATH` answered by `handler`.")]
        pub fn $method<H, T>(path: &'static str, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Self::on(stringify!($method), path, routing::$method(handler))
        }
    )*};
}

impl Route {
    constructors!(get, post, put, delete);

    fn on(method: &'static str, path: &'static str, handler: MethodRouter<AppState>) -> Self {
        Self {
            method,
            path,
            handler,
            operation: Some(Operation::default()),
        }
    }

    /// Served, and deliberately not in the document (the console's pages and files).
    pub fn undocumented(mut self) -> Self {
        self.operation = None;
        self
    }

    /// The handler wrapped, e.g. in a layer of its own.
    pub fn map_handler(
        mut self,
        wrap: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
    ) -> Self {
        self.handler = wrap(self.handler);
        self
    }

    fn document(mut self, change: impl FnOnce(&mut Operation)) -> Self {
        if let Some(operation) = &mut self.operation {
            change(operation);
        }
        self
    }

    pub fn id(self, id: &'static str) -> Self {
        self.document(|operation| operation.id = id)
    }

    pub fn summary(self, summary: &'static str) -> Self {
        self.document(|operation| operation.summary = summary)
    }

    pub fn describe(self, description: &'static str) -> Self {
        self.document(|operation| operation.description = Some(description))
    }

    /// Another tag than its module's.
    pub fn tag(self, tag: &'static str) -> Self {
        self.document(|operation| operation.tag = Some(tag))
    }

    /// Anyone may call it, without a token.
    pub fn public(self) -> Self {
        self.document(|operation| operation.access = Some(Access::Public))
    }

    /// Anyone may call it; a bearer token changes what it does.
    pub fn optional_token(self) -> Self {
        self.document(|operation| operation.access = Some(Access::OptionalToken))
    }

    /// An optional query parameter.
    pub fn query(self, name: &str, schema: Value, description: &str) -> Self {
        let parameter = json!({"name": name, "in": "query", "required": false,
            "description": description, "schema": schema});
        self.document(|operation| operation.queries.push(parameter))
    }

    /// `?after=CURSOR&limit=N`.
    pub fn paged(self, cursor: &str) -> Self {
        self.query(
            "after",
            json!({"type": "string"}),
            &format!("The cursor: {cursor}. Malformed is 400."),
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 1}),
            "Items in a page: default 100; more than 1,000 is treated as 1,000.",
        )
    }

    fn request(self, required: bool, media: &'static str, schema: Schema) -> Self {
        self.document(|operation| {
            operation.body = Some((required, Content(vec![(media, schema)])));
        })
    }

    /// A JSON body of type `T`.
    pub fn body<T: JsonSchema>(self) -> Self {
        self.request(true, "application/json", Schema::of::<T>())
    }

    /// A JSON body of type `T` that may be left out.
    pub fn optional_body<T: JsonSchema>(self) -> Self {
        self.request(false, "application/json", Schema::of::<T>())
    }

    /// A body of type `T` in another media type.
    pub fn body_as<T: JsonSchema>(self, media: &'static str) -> Self {
        self.request(true, media, Schema::of::<T>())
    }

    /// Any JSON object as the body.
    pub fn object_body(self) -> Self {
        self.request(
            true,
            "application/json",
            Schema::Literal(json!({"type": "object"})),
        )
    }

    fn answer(self, status: u16, description: &str, content: Content) -> Self {
        let answer = Answer {
            status,
            description: description.to_owned(),
            content,
        };
        self.document(|operation| operation.answers.push(answer))
    }

    /// Answers `status` with a JSON body of type `T`.
    pub fn returns<T: JsonSchema>(self, status: u16, description: &str) -> Self {
        self.answer(
            status,
            description,
            Content(vec![("application/json", Schema::of::<T>())]),
        )
    }

    /// Answers `status` with a body of this media type and schema.
    pub fn returns_as(
        self,
        status: u16,
        description: &str,
        media: &'static str,
        schema: Value,
    ) -> Self {
        self.answer(
            status,
            description,
            Content(vec![(media, Schema::Literal(schema))]),
        )
    }

    /// The last answer may also come as this media type, with this schema.
    pub fn or_as(self, media: &'static str, schema: Value) -> Self {
        self.document(|operation| {
            if let Some(answer) = operation.answers.last_mut() {
                answer.content.0.push((media, Schema::Literal(schema)));
            }
        })
    }

    /// Answers `status` with no body.
    pub fn responds(self, status: u16, description: &str) -> Self {
        self.answer(status, description, Content(Vec::new()))
    }

    /// `204 No Content`.
    pub fn no_content(self, description: &str) -> Self {
        self.responds(204, description)
    }

    /// An `x-` field of the operation.
    pub fn extension(self, name: &'static str, value: Value) -> Self {
        self.document(|operation| operation.extensions.push((name, Schema::Literal(value))))
    }

    /// An `x-` field of the operation made of schemas.
    pub fn extension_with(
        self,
        name: &'static str,
        value: fn(&mut SchemaGenerator) -> Value,
    ) -> Self {
        self.document(|operation| operation.extensions.push((name, Schema::Of(value))))
    }
}

/// The routes of one module, all under one tag unless a route says otherwise.
pub struct Routes {
    tag: &'static str,
    routes: Vec<Route>,
}

/// A documented route, as the document needs it.
pub struct Documented<'a> {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub operation: &'a Operation,
}

impl Routes {
    pub fn new(tag: &'static str) -> Self {
        Self {
            tag,
            routes: Vec::new(),
        }
    }

    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    pub fn extend(mut self, routes: impl IntoIterator<Item = Route>) -> Self {
        self.routes.extend(routes);
        self
    }

    /// The axum router of these routes; methods of one path share its entry.
    pub fn router(&self) -> Router<AppState> {
        self.routes.iter().fold(Router::new(), |router, route| {
            router.route(route.path, route.handler.clone())
        })
    }

    /// Every `METHOD /path` served, documented or not.
    pub fn served(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.routes.iter().map(|route| (route.method, route.path))
    }

    /// The routes of the document.
    pub fn documented(&self) -> impl Iterator<Item = Documented<'_>> {
        self.routes.iter().filter_map(|route| {
            let operation = route.operation.as_ref()?;
            Some(Documented {
                method: route.method,
                path: route.path,
                tag: operation.tag.unwrap_or(self.tag),
                operation,
            })
        })
    }
}

impl Documented<'_> {
    pub fn id(&self) -> &'static str {
        self.operation.id
    }

    pub fn summary(&self) -> &'static str {
        self.operation.summary
    }
}
