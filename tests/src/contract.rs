//! The routes of the contract, read from the OpenAPI document (`schemas/openapi.json`, which the
//! schemas' drift test keeps equal to what the server serves at `GET /v1/openapi.json`). Tests
//! that walk "every route" take the list from here, so a new route is one they must cover or
//! exempt by name, never one they silently miss.

use serde_json::Value;

/// The committed OpenAPI document.
pub fn document() -> Value {
    const DOCUMENT: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/openapi.json"
    ));
    serde_json::from_str(DOCUMENT).expect("schemas/openapi.json is JSON")
}

/// One operation of the document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    /// Upper case, as requests spell it: `GET`, `POST`.
    pub method: String,
    /// The path template: `/v1/queues/{queue}/join`.
    pub path: String,
    /// Whether it takes an `application/json` request body.
    pub json_body: bool,
}

impl Operation {
    /// Whether `method path` is this operation: the path may be a template with other names
    /// for its parameters (`{channel}`), or a concrete path, and may carry a query.
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && same_path(&self.path, path)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Whether a template and a path (a template, or concrete) name the same route: segment by
/// segment, a `{parameter}` on either side stands for any one segment. A query is ignored.
pub fn same_path(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let parameter = |segment: &str| segment.starts_with('{') && segment.ends_with('}');
    let (a, b): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || parameter(x) || parameter(y))
}

/// Every operation of the document, sorted.
pub fn operations() -> Vec<Operation> {
    let document = document();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            operations.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                json_body: operation["requestBody"]["content"]
                    .get("application/json")
                    .is_some(),
            });
        }
    }
    operations.sort();
    operations
}

/// What a test's table of routes lacks and has too much, against the document: every
/// operation that `wanted` selects must be in `covered` (method and path) or `exempt`
/// (`"METHOD /path"`), and every covered route and exemption must be an operation of the
/// document. An empty answer means the table and the document agree.
pub fn coverage_gaps(
    wanted: impl Fn(&Operation) -> bool,
    covered: &[(String, String)],
    exempt: &[&str],
) -> Vec<String> {
    let operations = operations();
    let exempted = |operation: &Operation| {
        exempt.iter().any(|entry| {
            entry
                .split_once(' ')
                .is_some_and(|(m, p)| operation.method == m && operation.path == p)
        })
    };
    let mut gaps = Vec::new();
    for operation in operations.iter().filter(|operation| wanted(operation)) {
        let in_table = covered
            .iter()
            .any(|(method, path)| operation.is(method, path));
        if !in_table && !exempted(operation) {
            gaps.push(format!("{operation} is in the document but not in the table (add a row, or exempt it and say why)"));
        }
        if in_table && exempted(operation) {
            gaps.push(format!("{operation} is in the table and exempted too"));
        }
    }
    for (method, path) in covered {
        if !operations
            .iter()
            .any(|operation| operation.is(method, path))
        {
            gaps.push(format!(
                "{method} {path} is in the table but not in the document"
            ));
        }
    }
    for entry in exempt {
        let known = entry.split_once(' ').is_some_and(|(m, p)| {
            operations
                .iter()
                .any(|operation| operation.method == m && operation.path == p)
        });
        if !known {
            gaps.push(format!(
                "the exemption {entry:?} names no operation of the document"
            ));
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_by_segment() {
        assert!(same_path("/v1/queues/{queue}/join", "/v1/queues/{q}/join"));
        assert!(same_path("/v1/queues/{queue}/join", "/v1/queues/8d5c/join"));
        assert!(same_path(
            "/v1/conversations/{c}/transcript",
            "/v1/conversations/{c}/transcript?format=txt"
        ));
        assert!(!same_path("/v1/queues/{queue}/join", "/v1/queues/{queue}"));
        assert!(!same_path(
            "/v1/queues/{queue}/open",
            "/v1/queues/{queue}/close"
        ));
    }

    #[test]
    fn the_document_lists_its_operations() {
        let operations = operations();
        assert!(operations
            .iter()
            .any(|o| o.is("POST", "/v1/queues/{queue}/join") && o.json_body));
        assert!(operations
            .iter()
            .any(|o| o.is("GET", "/v1/me") && !o.json_body));
    }

    #[test]
    fn gaps_name_what_is_missing_and_what_is_unknown() {
        let covered = vec![("GET".to_owned(), "/v1/nowhere".to_owned())];
        let gaps = coverage_gaps(|o| o.path == "/v1/me", &covered, &["GET /v1/none"]);
        assert!(
            gaps.iter()
                .any(|gap| gap.starts_with("GET /v1/me is in the document")),
            "{gaps:?}"
        );
        assert!(
            gaps.iter()
                .any(|gap| gap.contains("/v1/nowhere is in the table but not")),
            "{gaps:?}"
        );
        assert!(
            gaps.iter()
                .any(|gap| gap.contains("\"GET /v1/none\" names no operation")),
            "{gaps:?}"
        );
    }
}
