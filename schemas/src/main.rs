//! `cargo run -p schemas`: writes the generated contract into `schemas/` and removes files the
//! code no longer generates.

use std::process::ExitCode;

fn main() -> ExitCode {
    match write() {
        Ok(count) => {
            println!("wrote {count} files into {}", schemas::dir().display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("schemas: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write() -> Result<usize, Box<dyn std::error::Error>> {
    let root = schemas::dir();
    let files = schemas::generate()?;
    for file in &files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Unchanged files are left alone, so their modification times say what changed.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(file.content.as_str()) {
            std::fs::write(&path, &file.content)?;
        }
    }
    let generated: std::collections::BTreeSet<&str> =
        files.iter().map(|file| file.path.as_str()).collect();
    for stale in schemas::existing_generated_files(&root)? {
        if !generated.contains(stale.as_str()) {
            std::fs::remove_file(root.join(&stale))?;
            println!("removed {stale}");
        }
    }
    Ok(files.len())
}
