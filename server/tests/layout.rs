//! The server's modules depend downwards only: no module imports (`crate::…`,
//! `super::…`) a module that imports it back, directly or through others. Read from the
//! source files, so a new cycle fails here rather than in a newcomer's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`lobby::handle`; "" for the crate root) -> its source, tests cut off.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path: PathBuf = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let Some(stem) = rel.strip_suffix(".rs") else {
                continue;
            };
            if stem == "main" {
                continue;
            }
            let name = match stem {
                "lib" => String::new(),
                s => s.strip_suffix("/mod").unwrap_or(s).replace('/', "::"),
            };
            let text = std::fs::read_to_string(&path).expect("read module");
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
            out.insert(name, code);
        }
    }
    out
}

/// The modules `code` (of module `me`) refers to.
fn dependencies(me: &str, code: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    let parent = me.rsplit_once("::").map_or("", |(p, _)| p);
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            if !base.is_empty() {
                parts.splice(0..0, base.split("::"));
            }
            // The longest prefix that names a module; an item at the root is the root.
            let found = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|m| known.contains_key(m))
                .unwrap_or_default();
            if found != me {
                deps.insert(found);
            }
        }
    }
    deps
}

#[test]
fn server_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    assert!(
        modules.contains_key("lobby::handle"),
        "the layout moved: update this test"
    );
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .map(|(m, code)| (m.as_str(), dependencies(m, code, &modules)))
        .collect();
    // Depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(true) => {
                let start = path.iter().position(|p| *p == m).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(m.to_owned());
                return Some(cycle);
            }
            Some(false) => return None,
            None => {}
        }
        state.insert(m, true);
        path.push(m);
        for dep in graph.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(dep.as_str(), graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(m, false);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut state, &mut Vec::new()) {
            let shown: Vec<&str> = cycle
                .iter()
                .map(|m| if m.is_empty() { "lib" } else { m })
                .collect();
            panic!("import cycle: {}", shown.join(" -> "));
        }
    }
}
