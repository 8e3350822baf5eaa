//! The layering check: `server/src` is a stack of layers, and a module may use only the
//! layers below it (and its own), never one above; and no chain of `crate::` paths between
//! files comes back to where it started (no import cycles). ARCHITECTURE.md describes the
//! layers; this test keeps the code to it.
//!
//! It reads the source as text: every `crate::a::b` path in a file (in `use` lines and in
//! code, tests included) is an edge from that file to the file that defines `a::b`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A top-level module (a file or folder under `src/`) belongs to
/// the layer that names it. Modules of one layer may use each other only when the layer
/// says so (`shared`); the leaves may, the two front ends may not.
const LAYERS: &[(&str, &[&str], bool)] = &[
    ("leaves", &["error", "fsutil", "git", "layout", "testing"], true),
    ("spec", &["spec"], true),
    ("agent", &["agent"], true),
    ("core", &["core"], true),
    ("exec", &["exec"], true),
    ("integrate", &["integrate"], true),
    ("run", &["run"], true),
    ("views", &["views"], true),
    ("ops", &["ops"], true),
    ("front ends", &["cli", "lsp"], false),
];

fn layer_of(top: &str) -> Option<(usize, bool)> {
    LAYERS
        .iter()
        .position(|(_, mods, _)| mods.contains(&top))
        .map(|i| (i, LAYERS[i].2))
}

/// Every `.rs` file under `dir`, with its module path (`run/task.rs` → `run::task`,
/// `run/mod.rs` → `run`).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                if parts == ["lib"] || parts == ["main"] {
                    continue;
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The modules `text` names through `crate::` paths, resolved to the longest known module.
fn uses(text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if rest.starts_with('{') {
            panic!("`use crate::{{...}}` hides which layer is used; name each module's path");
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        if let Some(m) = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| known.contains_key(m))
        {
            out.insert(m);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    known
        .iter()
        .map(|(m, path)| {
            let text = std::fs::read_to_string(path).unwrap();
            let mut deps = uses(&text, &known);
            deps.remove(m);
            (m.clone(), deps)
        })
        .collect()
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn no_module_uses_a_layer_above_it() {
    let mut wrong = vec![];
    for (m, deps) in graph() {
        let (mine, _) = layer_of(top(&m)).unwrap_or_else(|| {
            panic!("module `{m}` is in no layer: add its top-level module to LAYERS in tests/layers.rs and to ARCHITECTURE.md")
        });
        for d in deps {
            let (theirs, shared) = layer_of(top(&d)).unwrap();
            let same_top = top(&d) == top(&m);
            if theirs > mine || (theirs == mine && !same_top && !shared) {
                wrong.push(format!("{m} ({}) uses {d} ({})", LAYERS[mine].0, LAYERS[theirs].0));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that go up the layers (see ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_cycles_between_files() {
    let graph = graph();
    // Depth-first search with colours; the first back edge found is reported as a cycle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for d in &graph[m] {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == d).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(d, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(m, &graph, &mut state, &mut vec![]) {
                panic!("import cycle: {}", cycle.join(" → "));
            }
        }
    }
}

#[test]
fn the_check_sees_an_upward_import_and_a_cycle() {
    // The check itself: a leaf naming the run loop is found, and so is a two-file cycle.
    let known: BTreeMap<String, PathBuf> = ["fsutil", "run::run_loop", "run::task"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let found = uses(
        "use crate::run::run_loop::execute;\nlet x = crate::fsutil::same_path(a, b);",
        &known,
    );
    assert_eq!(
        found,
        ["fsutil", "run::run_loop"].iter().map(|s| s.to_string()).collect()
    );
    assert!(uses("// crate::run::task in a comment\nmy_crate::run::task()", &known).is_empty());
    let (leaf, _) = layer_of("fsutil").unwrap();
    let (run, _) = layer_of("run").unwrap();
    assert!(run > leaf);
}
