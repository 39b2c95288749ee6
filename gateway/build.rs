//! Embeds the built web console and widget (`web/dist`, written by `npm run build`) into the
//! `jono` binary, so an installed binary, a container and a copied binary serve them with no
//! folder beside them (`gateway/src/web.rs`). Without a build the binary embeds nothing and says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest.join("../web");
    let dist = web.join("dist");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
        // Any change inside the build embeds it anew.
        println!("cargo:rerun-if-changed={}", dist.display());
    } else {
        println!(
            "cargo:warning=web/dist is missing: this jono embeds no console (build web/ first, \
             or serve one with --web DIR)"
        );
        // A build written later (or the folder itself appearing) runs this script again. A missing
        // path would rerun it on every build, so watch the folder that holds it.
        if web.is_dir() {
            println!("cargo:rerun-if-changed={}", web.display());
        }
    }
    files.sort();
    let mut source = String::from("/// The files of `web/dist` at build time, by path.\n");
    source.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (relative, path) in &files {
        let _ = writeln!(
            source,
            "    ({relative:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    source.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("web_files.rs");
    if let Err(error) = std::fs::write(&out, source) {
        panic!("cannot write {}: {error}", out.display());
    }
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let absolute = std::fs::canonicalize(&path).unwrap_or(path);
            files.push((relative, absolute));
        }
    }
}
