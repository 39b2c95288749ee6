//! The committed contract is what the code generates: a change to an event, a command or a
//! route's wire type without `cargo run -p schemas` fails here.

use std::collections::BTreeSet;

#[test]
fn committed_schemas_match_the_code() {
    let root = schemas::dir();
    let files = schemas::generate().expect("the schemas generate");
    let mut problems = Vec::new();
    for file in &files {
        match std::fs::read_to_string(root.join(&file.path)) {
            Ok(committed) if committed == file.content => {}
            Ok(_) => problems.push(format!("schemas/{} differs from the code", file.path)),
            Err(_) => problems.push(format!("schemas/{} is missing", file.path)),
        }
    }
    let generated: BTreeSet<&str> = files.iter().map(|file| file.path.as_str()).collect();
    for stale in schemas::existing_generated_files(&root).expect("the folders are readable") {
        if !generated.contains(stale.as_str()) {
            problems.push(format!("schemas/{stale} is no longer generated"));
        }
    }
    assert!(
        problems.is_empty(),
        "the committed schemas drifted from the code:\n  {}\nregenerate them with `{}` and commit the result",
        problems.join("\n  "),
        schemas::REGENERATE
    );
}

#[test]
fn generation_is_deterministic() {
    let first = schemas::generate().expect("the schemas generate");
    let second = schemas::generate().expect("the schemas generate");
    assert_eq!(first, second);
}

#[test]
fn every_event_type_has_its_schema() {
    let files = schemas::generate().expect("the schemas generate");
    for event in domain::event::EVENT_TYPES {
        let path = format!("events/{event}.schema.json");
        let file = files
            .iter()
            .find(|file| file.path == path)
            .unwrap_or_else(|| panic!("{path} is not generated"));
        let schema: serde_json::Value = serde_json::from_str(&file.content).unwrap();
        assert_eq!(schema["properties"]["type"]["const"], event, "{path}");
        assert_eq!(schema["title"], event, "{path}");
    }
}

#[test]
fn each_schema_file_is_self_contained() {
    for file in schemas::generate().expect("the schemas generate") {
        if file.path == "openapi.json" {
            continue;
        }
        let schema: serde_json::Value = serde_json::from_str(&file.content).unwrap();
        let text = file.content.as_str();
        for reference in text.match_indices("\"$ref\": \"#/$defs/") {
            let rest = &text[reference.0 + "\"$ref\": \"#/$defs/".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(
                schema["$defs"].get(name).is_some(),
                "{}: $defs/{name} is missing",
                file.path
            );
        }
    }
}
