//! Embeds the browser pages: every servable file under `demo-client/` (served at `/`)
//! and `monitor/` (served at `/monitor/`), not their tests, npm files or node_modules, as
//! `include_bytes!` entries, so the binary runs from anywhere.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const SERVED: &[&str] = &["html", "js", "css", "svg", "png", "ico", "webmanifest"];
const SKIPPED_DIRS: &[&str] = &["node_modules", "test", "tests", "test-artifacts"];

fn collect(dir: &Path, root: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                println!("cargo:rerun-if-changed={}", path.display());
                collect(&path, root, prefix, out);
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SERVED.contains(&e))
        {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let url = format!("{prefix}/{}", rel.to_string_lossy().replace('\\', "/"));
            println!("cargo:rerun-if-changed={}", path.display());
            out.push((url, path.clone()));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    for (folder, prefix) in [("../demo-client", ""), ("../monitor", "/monitor")] {
        let root = manifest.join(folder);
        println!("cargo:rerun-if-changed={}", root.display());
        collect(&root, &root, prefix, &mut files);
    }
    let mut code = String::from("/// Embedded demo client files: (URL path, contents).\n");
    code.push_str("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for (url, path) in &files {
        let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
        let _ = writeln!(
            code,
            "    ({url:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("static_files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
