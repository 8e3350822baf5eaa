//! Prompt files as a language, from real clients: `gadugi server --stdio` spoken to over its
//! stdio by the test client (completion, definition, hover, document links on an open, unsaved
//! prompt file, with a real run behind the hover), and the real Neovim client
//! (tests/nvim/language.lua: completion items and `vim.lsp.buf.definition()`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

mod common;
use common::{gadugi_in, init_repo, show_output};
#[path = "common/lsp_client.rs"]
mod lsp_client;
use lsp_client::{run_nvim, uri, Client};

const SCHEMA: &str =
    "---\nid: schema\n---\n# Write the schema\n\nCreate it.\n\n<!-- gadugi-sim: seconds=0 file=src/schema.txt -->\n";
const SETUP: &str = "# Set up the database\n\nCreate it.\n";
const DEPLOY: &str = "# Deploy it\n\nShip it.\n";
const API: &str = "---\ndepends_on: [schema]\nfiles: [src/lib.rs]\n---\n# Write the API\n\nDepends on: setup-db\n";
const CONFIG: &str = "[agent]\nprofile = \"simulated\"\n\n[profiles.mine]\ncommand = \"my-agent {prompt_file}\"\n";

/// A committed repository with four prompt files, and its canonical root.
fn repo(tmp: &Path) -> PathBuf {
    let root = tmp.join("repo");
    init_repo(
        &root,
        &[
            ("gadugi.toml", CONFIG),
            ("src/lib.rs", "// lib\n"),
            ("prompts/schema.md", SCHEMA),
            ("prompts/setup-db.md", SETUP),
            ("prompts/deploy.md", DEPLOY),
            ("prompts/api.md", API),
        ],
    );
    root.canonicalize().unwrap()
}

fn labels(response: &Value) -> Vec<String> {
    let result = &response["result"];
    if result.is_null() {
        return vec![];
    }
    let items = result.get("items").unwrap_or(result);
    items
        .as_array()
        .unwrap_or_else(|| panic!("no completion items: {response}"))
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

fn at(file: &Path, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri(file)}, "position": {"line": line, "character": character}})
}

/// The hover at a position: the response and its Markdown.
fn hover_at(c: &mut Client, file: &Path, line: u32, character: u32) -> (Value, String) {
    let hover = c.request("textDocument/hover", at(file, line, character));
    let value = hover["result"]["contents"]["value"].as_str().map(str::to_string);
    let value = value.unwrap_or_else(|| panic!("no hover at {line}:{character}: {hover}"));
    (hover, value)
}

#[test]
fn completion_definition_hover_and_links_over_stdio() {
    let tmp = tempfile::tempdir().unwrap();
    let root = repo(tmp.path());
    // A real run of schema.md first: its hover shows that run's status and branch.
    let out = gadugi_in(&root, &["run", "prompts/schema.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    let (api, schema) = (root.join("prompts/api.md"), root.join("prompts/schema.md"));

    let mut c = Client::start(&root);
    let init = c.initialize(&root, false);
    let caps = &init["result"]["capabilities"];
    assert_eq!(caps["definitionProvider"], json!(true), "{init}");
    assert_eq!(caps["hoverProvider"], json!(true), "{init}");
    assert!(caps["completionProvider"]["triggerCharacters"].is_array(), "{init}");
    assert!(caps["documentLinkProvider"].is_object(), "{init}");

    // The editor's unsaved text, not the file's: a second dependency being typed, an agent.
    let text =
        "---\ndepends_on: [schema, ]\nagent: \nfiles: [src/lib.rs]\n---\n# Write the API\n\nDepends on: setup-db\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri(&api), "languageId": "markdown", "version": 1, "text": text}}),
    );

    let done = c.request("textDocument/completion", at(&api, 1, 21));
    let got = labels(&done);
    assert_eq!(
        got,
        ["deploy", "deploy.md"],
        "api.md depends on the others already: {done}"
    );
    let item = &done["result"]["items"][0];
    assert_eq!(item["detail"], "Deploy it", "{done}");
    assert_eq!(
        item["textEdit"]["range"]["start"],
        json!({"line": 1, "character": 21}),
        "{done}"
    );

    let done = c.request("textDocument/completion", at(&api, 2, 7));
    let got = labels(&done);
    for profile in ["claude", "codex", "simulated", "mine"] {
        assert!(got.iter().any(|l| l == profile), "{profile} missing: {done}");
    }
    let mine = done["result"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "mine")
        .unwrap();
    assert!(
        mine["documentation"]["value"].as_str().unwrap().contains("my-agent"),
        "{done}"
    );

    let done = c.request("textDocument/completion", at(&api, 5, 4));
    assert_eq!(
        labels(&done),
        Vec::<String>::new(),
        "nothing to complete in the text: {done}"
    );

    let def = c.request("textDocument/definition", at(&api, 1, 16));
    assert_eq!(def["result"]["uri"], json!(uri(&schema)), "{def}");
    let def = c.request("textDocument/definition", at(&api, 7, 14));
    assert_eq!(
        def["result"]["uri"],
        json!(uri(&root.join("prompts/setup-db.md"))),
        "{def}"
    );

    let (hover, value) = hover_at(&mut c, &api, 1, 16);
    assert!(value.contains("**Write the schema**"), "{value}");
    assert!(value.contains("**succeeded** · branch `gadugi/schema`"), "{value}");
    assert_eq!(
        hover["result"]["range"]["start"],
        json!({"line": 1, "character": 13}),
        "{hover}"
    );
    let (_, value) = hover_at(&mut c, &api, 7, 14);
    assert!(
        value.contains("**Set up the database**") && value.contains("Not run yet."),
        "{value}"
    );

    let (_, value) = hover_at(&mut c, &api, 3, 2);
    assert!(value.starts_with("**files**\n\nRepository paths or globs"), "{value}");

    let links = c.request("textDocument/documentLink", json!({"textDocument": {"uri": uri(&api)}}));
    assert_eq!(
        links["result"][0]["target"],
        json!(uri(&root.join("src/lib.rs"))),
        "{links}"
    );
    assert_eq!(
        links["result"][0]["range"]["start"],
        json!({"line": 3, "character": 8}),
        "{links}"
    );

    // Measured, not asserted: completion in a folder of 200 prompt files.
    for i in 0..200 {
        std::fs::write(
            root.join(format!("prompts/task-{i:03}.md")),
            format!("---\nid: task-{i:03}\nfiles: [src/t{i}.rs]\n---\n# Task {i}\n\nDo it.\n"),
        )
        .unwrap();
    }
    let mut times = vec![];
    for _ in 0..20 {
        let t0 = Instant::now();
        let done = c.request("textDocument/completion", at(&api, 1, 21));
        times.push(t0.elapsed());
        assert_eq!(labels(&done).len(), 2 * 201, "{done}");
    }
    times.sort();
    eprintln!(
        "completion among 202 prompt files over stdio: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert_eq!(c.shutdown(), 0);
}

/// Debian's Neovim (0.7) as the client: tests/nvim/language.lua opens a prompt file, empties
/// its `depends_on` list in the buffer and asks for completion there (the tasks it does not
/// depend on yet), then jumps from its `Depends on:` line with `vim.lsp.buf.definition()`; it
/// exits non-zero when the items differ or the jump lands elsewhere.
#[test]
fn real_neovim_completion_and_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let root = repo(tmp.path());
    let (code, log) = run_nvim("language.lua", &root);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("nvim: completion items: deploy, deploy.md, schema, schema.md"),
        "{log}"
    );
    assert!(log.contains("nvim: definition landed in prompts/setup-db.md"), "{log}");
}
