//! `gadugi server --stdio` spoken to over its real stdin/stdout by a small LSP test client
//! (Content-Length framing): a real run on a temporary repository with scripted agents,
//! progress, tree notifications, diagnostics; malformed input; a run started from the CLI
//! showing live; and the real Neovim client (tests/nvim/).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::git;
#[path = "common/lsp_client.rs"]
mod lsp_client;
use lsp_client::{run_nvim, uri, Client};

const AGENT: &str = r#"#!/bin/sh
# Scripted agent: behaviour comes from the "BEHAVIOR:" line of the prompt.
p="$GADUGI_PROMPT_FILE"
b=$(sed -n 's/^BEHAVIOR: //p' "$p" | head -n 1)
s=$(sed -n 's/^SLEEP: //p' "$p" | head -n 1)
echo "agent $GADUGI_TASK_ID starts${1:+ with $*}"
[ -n "$s" ] && sleep "$s"
case "$b" in
  commit) echo "$GADUGI_TASK_ID" > "out-$GADUGI_TASK_ID.txt"; git add -A; git -c user.name=a -c user.email=a@b commit -qm "$GADUGI_TASK_ID" ;;
  fail) echo "boom from $GADUGI_TASK_ID" >&2; exit 3 ;;
  *) echo "unknown behaviour '$b'" >&2; exit 99 ;;
esac
"#;

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    agent: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo").canonicalize_or_create();
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        let agent = tmp.path().join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        std::fs::write(
            root.join("gadugi.toml"),
            format!(
                "kill_grace = \"1s\"\n\n[agent]\nprofile = \"command\"\ncommand = \"sh {}\"\n",
                agent.display()
            ),
        )
        .unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        Repo { _tmp: tmp, root, agent }
    }

    fn prompt(&self, name: &str, front: &str, behavior: &str) -> PathBuf {
        let fm = if front.is_empty() {
            String::new()
        } else {
            format!("---\n{front}\n---\n")
        };
        let path = self.root.join("prompts").join(format!("{name}.md"));
        std::fs::write(
            &path,
            format!("{fm}# Task {name}\n\nDo the {name} thing.\n\nBEHAVIOR: {behavior}\nSLEEP: 1\n"),
        )
        .unwrap();
        path
    }
}

trait CanonicalizeOrCreate {
    fn canonicalize_or_create(&self) -> PathBuf;
}

impl CanonicalizeOrCreate for PathBuf {
    fn canonicalize_or_create(&self) -> PathBuf {
        std::fs::create_dir_all(self).unwrap();
        self.canonicalize().unwrap()
    }
}

fn diagnostics_of<'a>(c: &'a Client, file: &Path) -> Vec<&'a Value> {
    c.notifications("textDocument/publishDiagnostics")
        .into_iter()
        .filter(|m| m["params"]["uri"] == uri(file))
        .collect()
}

fn error_code(resp: &Value) -> i64 {
    resp["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error response, got {resp}"))
}

#[test]
fn orchestrate_reports_progress_tree_changes_and_diagnostics() {
    let repo = Repo::new();
    let ok = repo.prompt("ok", "", "commit");
    let bad = repo.prompt("bad", "", "fail");
    // `bad` ends a second after `ok`: the progress has a state between begin and end.
    std::fs::write(
        &bad,
        std::fs::read_to_string(&bad).unwrap().replace("SLEEP: 1", "SLEEP: 2"),
    )
    .unwrap();
    let after = repo.prompt("after", "depends_on: [bad]", "commit");
    let mut c = Client::start(&repo.root);
    let init = c.initialize(&repo.root, true);
    let commands = &init["result"]["capabilities"]["executeCommandProvider"]["commands"];
    for cmd in [
        "gadugi.orchestrate",
        "gadugi.plan",
        "gadugi.cancelRun",
        "gadugi.cancelTask",
        "gadugi.retryTask",
        "gadugi.resume",
        "gadugi.cleanup",
        "gadugi.status",
    ] {
        assert!(
            commands.as_array().unwrap().contains(&json!(cmd)),
            "{cmd} missing: {init}"
        );
    }

    let plan = c.command("gadugi.plan", json!({"files": [uri(&ok), uri(&bad), uri(&after)]}));
    assert_eq!(plan["result"]["tasks"].as_array().map(Vec::len), Some(3), "{plan}");

    let resp = c.command(
        "gadugi.orchestrate",
        json!({"files": [uri(&ok), uri(&bad), uri(&after)], "maxParallel": 2}),
    );
    let run_id = resp["result"]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"))
        .to_string();
    let answered_at = c.seen.len();
    let token = format!("gadugi-run-{run_id}");

    let end = c.wait_for("progress end", |m| {
        m["method"] == "$/progress" && m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
    });
    let progress: Vec<&Value> = c
        .notifications("$/progress")
        .into_iter()
        .filter(|m| m["params"]["token"] == token)
        .collect();
    let kinds: Vec<&str> = progress
        .iter()
        .map(|m| m["params"]["value"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{kinds:?}");
    assert!(kinds.contains(&"report"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "end").count(), 1, "{kinds:?}");
    let begin = &progress[0]["params"]["value"];
    assert_eq!(begin["cancellable"], true, "{begin}");
    assert!(begin["title"].as_str().unwrap().contains(&run_id), "{begin}");
    let percentages: Vec<u64> = progress
        .iter()
        .filter_map(|m| m["params"]["value"]["percentage"].as_u64())
        .collect();
    assert!(
        percentages.windows(2).all(|w| w[0] <= w[1]),
        "percentage fell: {percentages:?}"
    );
    let messages: Vec<&str> = progress
        .iter()
        .filter_map(|m| m["params"]["value"]["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("/3 done · ") && m.contains(" running · ")),
        "{messages:?}"
    );
    let end_message = end["params"]["value"]["message"].as_str().unwrap();
    assert!(
        end_message.contains("failed") && end_message.contains("3/3 done"),
        "{end_message}"
    );
    // The command answered before the run ended: the run went on in the background.
    let end_at = c.seen.iter().position(|m| m == &end).unwrap();
    assert!(answered_at <= end_at);
    // The create request came from the server and was answered before begin.
    assert!(c
        .seen
        .iter()
        .any(|m| m["method"] == "window/workDoneProgress/create" && m["params"]["token"] == token));

    // A diagnostic on the failing task's prompt file, and on the skipped one pointing at it.
    let failed = c.wait_for("diagnostic on bad.md", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&bad)
            && m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    let d = &failed["params"]["diagnostics"][0];
    assert_eq!(d["severity"], 1, "{d}");
    let msg = d["message"].as_str().unwrap();
    assert!(
        msg.contains("task `bad` failed") && msg.contains("exit status: 3") && msg.contains("stdout.log"),
        "{msg}"
    );
    let skipped = c.wait_for("diagnostic on after.md", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&after)
            && m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    let d = &skipped["params"]["diagnostics"][0];
    assert_eq!(d["severity"], 2, "{d}");
    assert_eq!(d["relatedInformation"][0]["location"]["uri"], uri(&bad), "{d}");
    assert!(diagnostics_of(&c, &ok)
        .iter()
        .all(|m| m["params"]["diagnostics"] == json!([])));

    // Tree notifications: versioned, rising, ending with the finished run.
    let last = c.wait_for("final tree state", |m| {
        m["method"] == "gadugi/treeChanged" && m["params"]["runs"][0]["status"] == "failed"
    });
    let versions: Vec<u64> = c
        .notifications("gadugi/treeChanged")
        .iter()
        .map(|m| m["params"]["version"].as_u64().unwrap())
        .collect();
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions not rising: {versions:?}"
    );
    let run = &last["params"]["runs"][0];
    assert_eq!(run["runId"], run_id);
    let status_of = |id: &str| {
        run["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status_of("ok"), Some(json!("succeeded")));
    assert_eq!(status_of("bad"), Some(json!("failed")));
    assert_eq!(status_of("after"), Some(json!("skipped")));
    assert!(c
        .notifications("gadugi/treeChanged")
        .iter()
        .any(|m| m["params"]["runs"][0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["status"] == "running")));

    let tree = c.request("gadugi/treeState", json!({}));
    assert!(
        tree["result"]["version"].as_u64().unwrap() >= *versions.last().unwrap(),
        "{tree}"
    );
    assert_eq!(tree["result"]["runs"][0]["status"], "failed", "{tree}");
    // Code lenses: run, the latest status, retry for the failed task.
    let lens = c.request("textDocument/codeLens", json!({"textDocument": {"uri": uri(&bad)}}));
    let titles: Vec<&str> = lens["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{lens}"))
        .iter()
        .map(|l| l["command"]["title"].as_str().unwrap())
        .collect();
    let failed_title = format!("✗ failed in run {run_id}");
    assert_eq!(titles, ["▶ Run this task", failed_title.as_str(), "↻ Retry"], "{lens}");
    assert!(c.seen.iter().any(|m| m["method"] == "workspace/codeLens/refresh"));
    let status = c.command("gadugi.status", json!({"runId": run_id}));
    assert_eq!(status["result"]["status"], "failed", "{status}");
    // The run really happened: the branch of `ok` holds its commit.
    assert!(repo
        .root
        .join(".gadugi/runs")
        .join(&run_id)
        .join("report.json")
        .is_file());
    // Retrying the failed task runs it again on its branch, as a second attempt.
    let retry = c.command("gadugi.retryTask", json!({"runId": run_id, "taskId": "bad"}));
    assert_eq!(retry["result"]["runId"], run_id.as_str(), "{retry}");
    let state_file = repo.root.join(".gadugi/runs").join(&run_id).join("state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let state = loop {
        let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
        if state["status"] != "running" {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the retried run did not end: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let bad = state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "bad")
        .unwrap();
    assert_eq!(bad["attempts"], 2, "{bad}");
    assert_eq!(bad["status"], "failed", "{bad}");
    // A succeeded task is not retried.
    let refused = c.command("gadugi.retryTask", json!({"runId": run_id, "taskId": "ok"}));
    assert_eq!(error_code(&refused), -32803, "{refused}");
    let cancelled = c.command("gadugi.cancelRun", json!({"runId": run_id}));
    assert_eq!(cancelled["result"]["cancelled"], false, "{cancelled}");
    let cleanup = c.command("gadugi.cleanup", json!({"dryRun": true}));
    assert!(
        cleanup["result"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("would remove")),
        "{cleanup}"
    );

    assert_eq!(c.shutdown(), 0);
    let _ = &repo.agent;
}

#[test]
fn cancelling_the_progress_cancels_the_run() {
    let repo = Repo::new();
    let slow = repo.root.join("prompts/slow.md");
    std::fs::write(&slow, "# Slow\n\nBEHAVIOR: commit\nSLEEP: 30\n").unwrap();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, true);
    let resp = c.command("gadugi.orchestrate", json!({"files": [uri(&slow)]}));
    let run_id = resp["result"]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"))
        .to_string();
    let token = format!("gadugi-run-{run_id}");
    c.wait_for("the agent running", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"][0]["tasks"][0]["phase"] == "agent"
            && m["params"]["runs"][0]["tasks"][0]["attempts"] == 1
    });
    c.notify("window/workDoneProgress/cancel", json!({"token": token}));
    let end = c.wait_for("progress end", |m| {
        m["method"] == "$/progress" && m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
    });
    assert!(
        end["params"]["value"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{end}"
    );
    c.wait_for("cancelled run in the tree", |m| {
        m["method"] == "gadugi/treeChanged" && m["params"]["runs"][0]["status"] == "cancelled"
    });
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn plan_problems_are_diagnostics_while_editing() {
    let repo = Repo::new();
    let a = repo.prompt("a", "", "commit");
    let text = "---\nid: b\ndepends_on: [nope]\n---\n# B\n\nDo b.\n";
    let b = repo.root.join("prompts/b.md");
    std::fs::write(&b, text).unwrap();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, true);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri(&b), "languageId": "markdown", "version": 1, "text": text}}),
    );
    let first = c.wait_for("unknown dependency diagnostic", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&b)
            && m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    let d = &first["params"]["diagnostics"][0];
    assert_eq!(d["range"]["start"]["line"], 2, "on the depends_on line: {d}");
    assert!(d["message"].as_str().unwrap().contains("nope"), "{d}");
    // Fix it in the buffer only (unsaved): the diagnostic goes away.
    let fixed = "---\nid: b\ndepends_on: [a]\n---\n# B\n\nDo b.\n";
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&b), "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    c.wait_for("cleared diagnostics", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&b)
            && m["params"]["diagnostics"] == json!([])
    });
    // Bad front matter, then a cycle through the file on disk.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&b), "version": 3}, "contentChanges": [{"text": "---\nid: b\ntimeout: soon\n---\n# B\n\nDo b.\n"}]}),
    );
    let bad_fm = c.wait_for("bad front matter diagnostic", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&b)
            && m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
            && m["params"]["diagnostics"][0]["message"]
                .as_str()
                .unwrap()
                .contains("timeout")
    });
    assert_eq!(
        bad_fm["params"]["diagnostics"][0]["range"]["start"]["line"], 2,
        "{bad_fm}"
    );
    std::fs::write(&a, "---\ndepends_on: [b]\n---\n# A\n\nDo a.\n").unwrap();
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&b), "version": 4}, "contentChanges": [{"text": fixed}]}),
    );
    // The cycle is reported once, on the first file of the folder that is in it.
    let cycle = c.wait_for("cycle diagnostic", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&a)
            && m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
            && m["params"]["diagnostics"][0]["message"]
                .as_str()
                .unwrap()
                .contains("cycle")
    });
    assert_eq!(cycle["params"]["diagnostics"][0]["severity"], 1);
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn malformed_input_gets_errors_and_the_server_keeps_serving() {
    let repo = Repo::new();
    let a = repo.prompt("a", "", "commit");
    let broken = repo.prompt("broken", "depends_on: [missing]", "commit");
    let outside_dir = tempfile::tempdir().unwrap();
    let outside = outside_dir.path().join("x.md");
    std::fs::write(&outside, "# X\n\nDo x.\n").unwrap();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, false);
    let alive = |c: &mut Client| {
        let r = c.request("gadugi/treeState", json!({}));
        assert!(r["result"]["version"].is_u64(), "server stopped serving: {r}");
    };

    // Invalid JSON.
    c.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    c.wait_for("parse error", |m| m["error"]["code"] == -32700);
    alive(&mut c);
    // Content-Length shorter than the body: the cut-off JSON is a parse error, the rest skipped.
    let body = json!({"jsonrpc": "2.0", "id": 999, "method": "gadugi/treeState", "params": {}}).to_string();
    let from = c.seen.len();
    c.send_raw(format!("Content-Length: 10\r\n\r\n{body}").as_bytes());
    c.wait_from(from, "second parse error", |m| m["error"]["code"] == -32700);
    alive(&mut c);
    // A Content-Length that is not a number.
    let from = c.seen.len();
    c.send_raw(b"Content-Length: lots\r\n\r\n{}");
    c.wait_from(from, "parse error for a bad header", |m| m["error"]["code"] == -32700);
    alive(&mut c);
    // JSON that is not a JSON-RPC message.
    c.send(json!({"id": 77, "hello": "world"}));
    let r = c.wait_for("invalid request", |m| m["id"] == 77);
    assert_eq!(error_code(&r), -32600, "{r}");
    alive(&mut c);

    // Unknown methods.
    let r = c.request("gadugi/noSuchMethod", json!({}));
    assert_eq!(error_code(&r), -32601, "{r}");
    let r = c.request("textDocument/noSuchThing", json!({}));
    assert_eq!(error_code(&r), -32601, "{r}");
    // Params of the wrong type.
    let r = c.request("workspace/executeCommand", json!("gadugi.orchestrate"));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.request("gadugi/treeState", json!([1, 2]));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.command("gadugi.orchestrate", json!({"files": "a.md"}));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("maxParallel"),
        "shows an example: {r}"
    );
    let r = c.command("gadugi.orchestrate", json!(42));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.command("gadugi.orchestrate", json!({"files": [uri(&a)], "maxParalel": 2}));
    assert_eq!(error_code(&r), -32602, "unknown field is refused: {r}");
    let r = c.command("gadugi.orchestrate", json!({"files": []}));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.command("gadugi.orchestrate", json!({"files": ["not a uri"]}));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.command("gadugi.orchestrate", json!({"files": ["https://example.com/a.md"]}));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.command("gadugi.noSuchCommand", json!({}));
    assert_eq!(error_code(&r), -32602, "{r}");
    let r = c.command("gadugi.cancelTask", json!({"runId": "nope", "taskId": "a"}));
    assert_eq!(error_code(&r), -32602, "{r}");
    // A file outside the workspace.
    let r = c.command("gadugi.orchestrate", json!({"files": [uri(&outside)]}));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the workspace"),
        "{r}"
    );
    // Bad input found by the core: RequestFailed with file and line, and a diagnostic.
    let r = c.command("gadugi.orchestrate", json!({"files": [uri(&a), uri(&broken)]}));
    assert_eq!(error_code(&r), -32803, "{r}");
    let e = &r["error"]["data"]["errors"][0];
    assert_eq!(e["file"], uri(&broken), "{r}");
    assert_eq!(e["line"], 2, "{r}");
    assert!(e["problem"].as_str().unwrap().contains("missing"), "{r}");
    c.wait_for("diagnostic for the refused run", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&broken)
            && m["params"]["diagnostics"][0]["range"]["start"]["line"] == 1
    });
    // Nothing was created.
    assert!(!repo.root.join(".gadugi").exists());
    alive(&mut c);
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn a_run_started_from_the_cli_shows_live() {
    let repo = Repo::new();
    let one = repo.prompt("one", "", "commit");
    let two = repo.prompt("two", "", "fail");
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, true);
    let tree = c.request("gadugi/treeState", json!({}));
    assert_eq!(tree["result"]["runs"], json!([]), "{tree}");
    let out = Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(["run", "--json"])
        .arg(&one)
        .arg(&two)
        .current_dir(&repo.root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = summary["run_id"].as_str().unwrap();
    let last = c.wait_for("the CLI run, finished, in the tree", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"][0]["runId"] == run_id
            && m["params"]["runs"][0]["status"] == "failed"
    });
    assert_eq!(last["params"]["runs"][0]["owned"], false);
    c.wait_for("diagnostic from the CLI run", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&two)
            && m["params"]["diagnostics"][0]["message"]
                .as_str()
                .is_some_and(|s| s.contains("task `two` failed"))
    });
    // It was seen while running, not only at the end.
    assert!(
        c.notifications("gadugi/treeChanged")
            .iter()
            .any(|m| m["params"]["runs"][0]["runId"] == run_id && m["params"]["runs"][0]["status"] == "running"),
        "the run never showed as running"
    );
    let r = c.command("gadugi.cancelRun", json!({"runId": run_id}));
    assert_eq!(r["result"]["cancelled"], false, "{r}");
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn exit_without_shutdown_exits_1() {
    let repo = Repo::new();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, false);
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

/// Debian's Neovim (0.7) as the client: tests/nvim/orchestrate.lua starts the server,
/// orchestrates, waits for the progress end and the diagnostics, and exits non-zero on
/// anything missing.
#[test]
fn real_neovim_client() {
    let repo = Repo::new();
    repo.prompt("good", "", "commit");
    repo.prompt("broken", "", "fail");
    let (code, log) = run_nvim("orchestrate.lua", &repo.root);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("nvim: progress end"), "{log}");
    assert!(log.contains("nvim: diagnostic on broken.md"), "{log}");
}

fn alive(pid: u64) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn shutdown_answers_at_once_and_leaves_agents_running() {
    let repo = Repo::new();
    let slow = repo.root.join("prompts/slow.md");
    std::fs::write(&slow, "# Slow\n\nBEHAVIOR: commit\nSLEEP: 60\n").unwrap();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, false);
    let resp = c.command("gadugi.orchestrate", json!({"files": [uri(&slow)]}));
    assert!(resp["result"]["runId"].is_string(), "{resp}");
    // No progress capability: a message at the start instead.
    c.wait_for("start message", |m| {
        m["method"] == "window/showMessage" && m["params"]["message"].as_str().is_some_and(|s| s.contains("started"))
    });
    c.wait_for("the agent running", |m| {
        m["method"] == "gadugi/treeChanged" && m["params"]["runs"][0]["tasks"][0]["phase"] == "agent"
    });
    // The registry is a snapshot of the event log, at most a second behind it.
    let registry_file = repo.root.join(".gadugi/monitoring/process_registry.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (agent, supervisor) = loop {
        let registry: Value = serde_json::from_str(&std::fs::read_to_string(&registry_file).unwrap()).unwrap();
        let entry = &registry["processes"]["slow"];
        if let (Some(a), Some(s)) = (entry["pid"].as_u64(), entry["supervisor_pid"].as_u64()) {
            break (a, s);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pids in the registry: {registry}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(alive(agent));
    assert_eq!(c.shutdown(), 0);
    // The server is gone; the agent and its supervisor are not.
    assert!(alive(agent), "shutdown killed the agent");
    assert!(alive(supervisor), "shutdown killed the supervisor");
    // Clean up: the supervisor ends the agent's process group on SIGTERM.
    Command::new("kill").arg(supervisor.to_string()).status().unwrap();
}

#[test]
fn cancel_one_task_then_the_run() {
    let repo = Repo::new();
    let one = repo.root.join("prompts/one.md");
    let two = repo.root.join("prompts/two.md");
    std::fs::write(&one, "# One\n\nBEHAVIOR: commit\nSLEEP: 60\n").unwrap();
    std::fs::write(&two, "# Two\n\nBEHAVIOR: commit\nSLEEP: 60\n").unwrap();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, true);
    let resp = c.command(
        "gadugi.orchestrate",
        json!({"files": [uri(&one), uri(&two)], "maxParallel": 2}),
    );
    let run_id = resp["result"]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"))
        .to_string();
    let task = |m: &Value, id: &str| {
        m["params"]["runs"][0]["tasks"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    c.wait_for("both agents running", |m| {
        m["method"] == "gadugi/treeChanged" && task(m, "one")["phase"] == "agent" && task(m, "two")["phase"] == "agent"
    });
    let r = c.command("gadugi.cancelTask", json!({"runId": run_id, "taskId": "one"}));
    assert_eq!(r["result"]["cancelled"], true, "{r}");
    let r = c.command("gadugi.cancelTask", json!({"runId": run_id, "taskId": "nope"}));
    assert_eq!(error_code(&r), -32602, "{r}");
    c.wait_for("task one cancelled, two still running", |m| {
        m["method"] == "gadugi/treeChanged"
            && task(m, "one")["status"] == "cancelled"
            && task(m, "two")["status"] == "running"
    });
    let r = c.command("gadugi.cancelRun", json!({"runId": run_id}));
    assert_eq!(r["result"]["cancelled"], true, "{r}");
    c.wait_for("run cancelled", |m| {
        m["method"] == "gadugi/treeChanged" && m["params"]["runs"][0]["status"] == "cancelled"
    });
    let r = c.command("gadugi.resume", json!({"runId": run_id}));
    assert_eq!(error_code(&r), -32803, "an ended run is not resumed: {r}");
    assert_eq!(c.shutdown(), 0);
}

/// The editor's settings reach the run (extra agent arguments, worktree folder); the
/// Worktrees view's list, a task's diff, and removing one task's worktree.
#[test]
fn settings_worktrees_diff_and_removing_one_worktree() {
    let repo = Repo::new();
    let ok = repo.prompt("ok", "", "commit");
    let bad = repo.prompt("bad", "", "fail");
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, false);
    let resp = c.command(
        "gadugi.orchestrate",
        json!({"files": [uri(&ok), uri(&bad)], "maxParallel": 2,
               "agentArgs": ["--flag", "two words"], "worktreeDir": "../trees"}),
    );
    let run_id = resp["result"]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"))
        .to_string();
    let ended = c.wait_for("the run ended", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"][0]["status"] == "failed"
            && m["params"]["runs"][0]["driverAlive"] == false
    });
    let tasks = ended["params"]["runs"][0]["tasks"].as_array().unwrap().clone();
    let task = |id: &str| tasks.iter().find(|t| t["id"] == id).unwrap().clone();
    let trees = repo.root.parent().unwrap().join("trees");
    assert_eq!(task("bad")["worktree"], trees.join("bad").display().to_string());
    let log = std::fs::read_to_string(task("ok")["logFile"].as_str().unwrap()).unwrap();
    assert!(log.contains("agent ok starts with --flag two words"), "{log}");
    assert!(task("ok")["costUsd"].is_null());

    // The worktree of the failed task stays (the succeeded one is removed after its task).
    std::fs::write(trees.join("bad/wip.txt"), "unsaved work\n").unwrap();
    let list = c.request("gadugi/worktrees", json!({}));
    let wts = list["result"]["worktrees"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(wts.len(), 1, "{list}");
    assert_eq!(wts[0]["taskId"], "bad");
    assert_eq!(wts[0]["runId"], run_id.as_str());
    assert_eq!(wts[0]["taskStatus"], "failed");
    assert_eq!(wts[0]["dirty"], true);

    let diff = c.command("gadugi.taskDiff", json!({"runId": run_id, "taskId": "ok"}));
    let text = diff["result"]["diff"].as_str().unwrap_or_else(|| panic!("{diff}"));
    assert!(text.contains("#   ") && text.contains("+++ b/out-ok.txt"), "{text}");
    assert_eq!(diff["result"]["branch"], "gadugi/ok");
    let r = c.command("gadugi.taskDiff", json!({"runId": run_id, "taskId": "nope"}));
    assert_eq!(error_code(&r), -32602, "{r}");

    // Removing it keeps uncommitted work unless forced; forced, the work is committed first.
    let r = c.command("gadugi.cleanup", json!({"taskId": "bad"}));
    assert_eq!(error_code(&r), -32602, "taskId needs runId: {r}");
    let r = c.command("gadugi.cleanup", json!({"runId": run_id, "taskId": "bad"}));
    let lines = r["result"]["lines"].to_string();
    assert!(lines.contains("kept") && lines.contains("uncommitted"), "{r}");
    assert!(trees.join("bad").is_dir());
    let r = c.command(
        "gadugi.cleanup",
        json!({"runId": run_id, "taskId": "bad", "force": true}),
    );
    assert!(
        r["result"]["lines"].to_string().contains("1 worktree(s) removed"),
        "{r}"
    );
    assert!(!trees.join("bad").exists());
    let wip = git(&repo.root, &["show", "gadugi/bad:wip.txt"]);
    assert_eq!(wip, "unsaved work");
    let list = c.request("gadugi/worktrees", json!({}));
    assert_eq!(list["result"]["worktrees"], json!([]), "{list}");
    assert_eq!(c.shutdown(), 0);
}

/// Cancel is one code path (`ops::cancel`) for the CLI and the editor: the editor cancels a
/// run the CLI drives, and `gadugi cancel` cancels a run the language server drives.
#[test]
fn cancel_crosses_front_ends_both_ways() {
    let repo = Repo::new();
    let one = repo.root.join("prompts/one.md");
    std::fs::write(&one, "# One\n\nBEHAVIOR: commit\nSLEEP: 60\n").unwrap();
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, true);
    // 1. The CLI drives; the editor cancels.
    let cli = Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(["run", "--json"])
        .arg(&one)
        .current_dir(&repo.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = c.wait_for("the CLI's run with its agent running", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"][0]["tasks"][0]["phase"] == "agent"
            && m["params"]["runs"][0]["owned"] == false
    });
    let run_id = running["params"]["runs"][0]["runId"].as_str().unwrap().to_string();
    let r = c.command("gadugi.cancelRun", json!({"runId": run_id}));
    assert_eq!(r["result"]["cancelled"], true, "{r}");
    let out = cli.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "cancelled", "{summary}");
    // 2. The editor drives; the CLI cancels.
    let two = repo.root.join("prompts/two.md");
    std::fs::write(&two, "# Two\n\nBEHAVIOR: commit\nSLEEP: 60\n").unwrap();
    let resp = c.command("gadugi.orchestrate", json!({"files": [uri(&two)]}));
    let run_id = resp["result"]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"))
        .to_string();
    c.wait_for("the editor's run with its agent running", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"].as_array().is_some_and(|runs| {
                runs.iter()
                    .any(|r| r["runId"] == run_id.as_str() && r["tasks"][0]["phase"] == "agent")
            })
    });
    let out = Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(["cancel", "--run", &run_id])
        .current_dir(&repo.root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    c.wait_for("the editor's run cancelled", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"].as_array().is_some_and(|runs| {
                runs.iter()
                    .any(|r| r["runId"] == run_id.as_str() && r["status"] == "cancelled")
            })
    });
    assert_eq!(c.shutdown(), 0);
}

/// Issue 14, defect 13: only `file://` URIs of this machine name prompt files; another host
/// or another scheme gets a message that says so.
#[test]
fn d13_prompt_uris_must_be_local_files() {
    let repo = Repo::new();
    let one = repo.prompt("one", "", "commit");
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, false);
    let remote = format!("file://otherhost{}", one.display());
    let r = c.command("gadugi.plan", json!({"files": [remote]}));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("names the host `otherhost`"),
        "{r}"
    );
    let r = c.command("gadugi.plan", json!({"files": ["untitled:Untitled-1"]}));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("is not a file:// URI"),
        "{r}"
    );
    let local = format!("file://localhost{}", one.display());
    let r = c.command("gadugi.plan", json!({"files": [local]}));
    assert!(r["result"]["tasks"].is_array(), "{r}");
    assert_eq!(c.shutdown(), 0);
}

/// VmRSS of a process in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// Issue 14 d11: a 20 MB prompt opened in the editor is neither kept nor checked (one
/// diagnostic says it is too large), and closing it gives the memory back.
#[test]
fn d11_a_huge_open_document_is_not_kept_and_its_memory_returns() {
    let repo = Repo::new();
    let huge = repo.root.join("prompts/huge.md");
    std::fs::write(&huge, "# Huge\n\nDo it.\n").unwrap();
    let mut text = String::from("---\ndepends_on: [nope]\n---\n# Huge\n\n");
    while text.len() < 20 << 20 {
        text.push_str("Do the thing, and then do the next thing after it.\n");
    }
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, true);
    let pid = c.child.id();
    c.request("gadugi/treeState", json!({}));
    let start = rss_mb(pid);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri(&huge), "languageId": "markdown", "version": 1, "text": text}}),
    );
    drop(text);
    let diag = c.wait_for("a diagnostic on the huge file", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&huge)
            && m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    let opened = rss_mb(pid);
    assert!(
        opened < 150.0,
        "RSS after opening 20 MB: {opened:.0} MB (started at {start:.0} MB)"
    );
    let message = diag["params"]["diagnostics"][0]["message"].as_str().unwrap();
    assert!(message.contains("too large to check as you type"), "{diag}");
    c.notify("textDocument/didClose", json!({"textDocument": {"uri": uri(&huge)}}));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed = rss_mb(pid);
    while closed > start + 60.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        closed = rss_mb(pid);
    }
    assert!(
        closed <= start + 60.0,
        "RSS after closing: {closed:.0} MB (started at {start:.0} MB, {opened:.0} MB open)"
    );
    eprintln!("RSS: {start:.0} MB at start, {opened:.0} MB with 20 MB open, {closed:.0} MB after close");
    assert_eq!(c.shutdown(), 0);
}

/// The Worktrees view shows the warm pool (`gadugi/worktrees`' `pool`), and `gadugi.poolPrune`
/// empties it: only for a repository of the workspace, removing the folders git knew.
#[test]
fn the_worktree_pool_is_listed_and_emptied() {
    let repo = Repo::new();
    let toml = repo.root.join("gadugi.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[pool]\nmax_worktrees = 4\n");
    std::fs::write(&toml, text).unwrap();
    git(&repo.root, &["commit", "-qam", "pool"]);
    let ok = repo.prompt("ok", "", "commit");
    let mut c = Client::start(&repo.root);
    c.initialize(&repo.root, false);
    let list = c.request("gadugi/worktrees", json!({}));
    assert_eq!(list["result"]["pool"], json!([]), "{list}");

    let resp = c.command("gadugi.orchestrate", json!({"files": [uri(&ok)]}));
    assert!(resp["result"]["runId"].is_string(), "{resp}");
    c.wait_for("the run ended", |m| {
        m["method"] == "gadugi/treeChanged"
            && m["params"]["runs"][0]["status"] == "succeeded"
            && m["params"]["runs"][0]["driverAlive"] == false
    });
    // The succeeded task's clean worktree went to the pool instead of being deleted.
    let list = c.request("gadugi/worktrees", json!({}));
    let pool = list["result"]["pool"].as_array().unwrap_or_else(|| panic!("{list}"));
    assert_eq!(pool.len(), 1, "{list}");
    assert_eq!(list["result"]["worktrees"], json!([]), "{list}");
    let entry = PathBuf::from(pool[0]["path"].as_str().unwrap());
    assert!(entry.is_dir() && entry.to_string_lossy().contains("/.pool/"), "{list}");
    assert_eq!(pool[0]["repo"], uri(&repo.root).as_str());
    assert_eq!(pool[0]["claimed"], false);
    assert!(pool[0]["size"].as_u64().unwrap() > 0, "{list}");

    let r = c.command("gadugi.poolPrune", json!({"repo": "file:///elsewhere", "all": true}));
    assert_eq!(error_code(&r), -32602, "a repository outside the workspace: {r}");
    assert!(entry.is_dir());
    let r = c.command("gadugi.poolPrune", json!({"all": true}));
    let lines = r["result"]["lines"].to_string();
    assert!(lines.contains("removed") && lines.contains(".pool"), "{r}");
    assert!(!entry.exists());
    let worktrees = git(&repo.root, &["worktree", "list", "--porcelain"]);
    assert!(
        !worktrees.contains("/.pool/"),
        "git forgot the pooled worktree: {worktrees}"
    );
    assert_eq!(git(&repo.root, &["rev-parse", "--verify", "-q", "gadugi/ok"]).len(), 40);
    let list = c.request("gadugi/worktrees", json!({}));
    assert_eq!(list["result"]["pool"], json!([]), "{list}");
    assert_eq!(c.shutdown(), 0);
}
