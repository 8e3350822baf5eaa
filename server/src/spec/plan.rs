//! The plan: dependency graph, critical path and file conflicts of a set of tasks.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde_json::{json, Value};

use crate::error::{InputError, InputErrors};
use crate::spec::task::{DependencyRef, TaskSpec};

/// How tasks that may touch the same files are treated when they could run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// The later task (in command-line order) waits for the earlier one and starts from its
    /// branch when that succeeded, from the base otherwise. The default.
    #[default]
    Serialize,
    /// Report the conflict and run both at once anyway.
    Warn,
}

/// A task placed in the graph.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlannedTask {
    /// The task as parsed from its prompt file.
    pub spec: TaskSpec,
    /// Indices (into `Plan::tasks`) of the tasks this one depends on: it starts only after
    /// all of them succeeded, from their branches.
    pub deps: Vec<usize>,
    /// Indices of tasks this one is serialized after because of a file conflict: it starts
    /// after they finished (whatever their outcome) and from their branches if they succeeded.
    pub after: Vec<usize>,
    /// Indices of tasks that list this one in `deps` or `after`.
    pub dependents: Vec<usize>,
    /// Number of tasks on the longest chain from this task to the end, itself included
    /// (a task with no dependents has 1). The scheduler starts the highest first.
    pub remaining_path: usize,
}

/// Two tasks that could run at the same time and may touch the same files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conflict {
    /// Index of the earlier task (command-line order).
    pub first: usize,
    /// Index of the later task.
    pub second: usize,
    /// The paths or patterns both may touch, sorted.
    pub paths: Vec<String>,
    /// Whether `second` was serialized after `first`.
    pub serialized: bool,
}

/// A checked, acyclic plan.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Tasks in command-line order.
    pub tasks: Vec<PlannedTask>,
    /// Indices of the tasks on the critical path (the longest dependency chain), in order.
    pub critical_path: Vec<usize>,
    /// File conflicts between tasks not ordered by their dependencies, in pair order.
    pub conflicts: Vec<Conflict>,
}

impl Plan {
    /// Task indices in an order where every task comes after its `deps` and `after`; among
    /// tasks ready at the same time, command-line order.
    pub fn topological_order(&self) -> Vec<usize> {
        topological_order(&self.tasks)
    }
}

/// Checks the tasks against each other and builds the plan.
///
/// Reports every problem at once: no tasks, the same prompt file twice, duplicate ids,
/// dependencies that name no task of the run, and dependency cycles. Each dependency is a
/// task id or, failing that, a path relative to the directory of the prompt file that
/// names it.
///
/// Then finds conflicts between tasks that neither depends on the other, directly or not:
/// both may touch a common path. A task may touch its `files` entries (paths, or globs
/// expanded against `tracked_files` and matched against the other task's literal paths)
/// and the `mentioned_paths` that are tracked. Two globs overlap when at least one matches
/// no tracked file and the literal prefix of one (up to its first `*?[{`) starts the other's;
/// the conflict then lists both patterns. With [`ConflictPolicy::Serialize`] the later task
/// of each conflicting pair waits for the earlier one; pairs are taken in command-line
/// order and a pair that earlier edges already ordered is no conflict, so no cycle appears.
pub fn build_plan(
    repo_root: &Path,
    specs: Vec<TaskSpec>,
    tracked_files: &[String],
    policy: ConflictPolicy,
) -> Result<Plan, InputErrors> {
    if specs.is_empty() {
        return Err(InputError::new(
            "no prompt files given",
            "pass one or more prompt files, e.g. `gadugi plan prompts/*.md`",
        )
        .into());
    }
    let (ids, mut errors) = index(&specs);
    let files: HashMap<&Path, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.prompt_file.as_path(), i))
        .rev()
        .collect();
    let mut known: Vec<&str> = specs.iter().map(|s| s.id.as_str()).take(11).collect();
    if let Some(eleventh) = known.get_mut(10) {
        *eleventh = "…";
    }
    let known = known.join(", ");
    let edges: Vec<Vec<(usize, usize)>> = specs
        .iter()
        .map(|s| resolve_deps(repo_root, s, &ids, &files, &known, &mut errors))
        .collect();
    errors.extend(cycle_errors(&specs, &edges));
    if !errors.is_empty() {
        return Err(InputErrors(errors));
    }

    let mut tasks: Vec<PlannedTask> = specs
        .into_iter()
        .zip(&edges)
        .map(|(spec, edges)| PlannedTask {
            spec,
            deps: edges.iter().map(|&(j, _)| j).collect(),
            after: vec![],
            dependents: vec![],
            remaining_path: 1,
        })
        .collect();
    let conflicts = find_conflicts(&mut tasks, tracked_files, policy);
    let waits: Vec<(usize, usize)> = tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| t.deps.iter().chain(&t.after).map(move |&d| (i, d)))
        .collect();
    for (i, d) in waits {
        tasks[d].dependents.push(i);
    }
    for i in topological_order(&tasks).into_iter().rev() {
        let longest = tasks[i].dependents.iter().map(|&d| tasks[d].remaining_path).max();
        tasks[i].remaining_path = 1 + longest.unwrap_or(0);
    }
    let critical_path = critical_path(&tasks);
    Ok(Plan {
        tasks,
        critical_path,
        conflicts,
    })
}

/// Maps each id to its first task, reporting prompt files given twice and duplicate ids.
fn index(specs: &[TaskSpec]) -> (HashMap<&str, usize>, Vec<InputError>) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut files = HashSet::new();
    let mut errors = vec![];
    for (i, spec) in specs.iter().enumerate() {
        if !files.insert(&spec.prompt_file) {
            errors.push(InputError::at(
                &spec.prompt_file,
                None,
                "prompt file given twice",
                "list each prompt file once",
            ));
        } else if let Some(&first) = ids.get(spec.id.as_str()) {
            errors.push(InputError::at(
                &spec.prompt_file,
                spec.id_line,
                format!(
                    "task id `{}` is also the id of {}",
                    spec.id,
                    specs[first].prompt_file.display()
                ),
                "give one of them another `id:` in its front matter",
            ));
        } else {
            ids.insert(&spec.id, i);
        }
    }
    (ids, errors)
}

/// The tasks `spec` depends on, without duplicates, each with the line of its first
/// reference; unresolvable references become errors.
fn resolve_deps(
    repo_root: &Path,
    spec: &TaskSpec,
    ids: &HashMap<&str, usize>,
    files: &HashMap<&Path, usize>,
    known_ids: &str,
    errors: &mut Vec<InputError>,
) -> Vec<(usize, usize)> {
    let mut edges: Vec<(usize, usize)> = vec![];
    for r in &spec.depends_on {
        match resolve(repo_root, spec, r, ids, files, known_ids) {
            Ok(j) if edges.iter().all(|&(k, _)| k != j) => edges.push((j, r.line)),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    edges
}

/// The task a reference names: an id, else a path relative to the referring prompt file.
fn resolve(
    repo_root: &Path,
    spec: &TaskSpec,
    r: &DependencyRef,
    ids: &HashMap<&str, usize>,
    files: &HashMap<&Path, usize>,
    known_ids: &str,
) -> Result<usize, InputError> {
    if let Some(&j) = ids.get(r.raw.as_str()) {
        return Ok(j);
    }
    let path = dependency_path(&spec.prompt_file, &r.raw);
    let canonical = path.canonicalize().ok();
    let found = files.get(path.as_path()).or_else(|| files.get(canonical.as_deref()?));
    if let Some(&j) = found {
        return Ok(j);
    }
    let error = |problem: String, fix: String| InputError::at(&spec.prompt_file, Some(r.line), problem, fix);
    let root = repo_root.canonicalize().unwrap_or_else(|_| repo_root.to_path_buf());
    if !canonical.as_deref().unwrap_or(&path).starts_with(&root) {
        return Err(error(
            format!(
                "depends on {}, which is outside the repository {}",
                r.raw,
                root.display()
            ),
            "depend on a prompt file inside the repository, by task id or relative path".to_string(),
        ));
    }
    if path.is_file() {
        return Err(error(
            format!("depends on {}, which is not among the prompt files of this run", r.raw),
            "add it to the command line".to_string(),
        ));
    }
    Err(error(
        format!("unknown dependency `{}`", r.raw),
        format!("name a task id (known: {known_ids}) or a prompt file relative to this one"),
    ))
}

/// The prompt file a dependency written in the prompt file `from` names when it is a path:
/// relative to `from`'s folder, `.` and `..` resolved lexically (it need not exist).
pub fn dependency_path(from: &Path, raw: &str) -> PathBuf {
    normalize(&from.parent().unwrap_or(Path::new("/")).join(raw))
}

/// The task among `specs` that a dependency written in the prompt file `from` names, by the
/// rule of [`build_plan`]: a task id (the first task with it), else a prompt file relative to
/// `from`.
pub fn find_dependency<'a>(from: &Path, raw: &str, specs: &'a [TaskSpec]) -> Option<&'a TaskSpec> {
    if let Some(spec) = specs.iter().find(|s| s.id == raw) {
        return Some(spec);
    }
    let path = dependency_path(from, raw);
    let canonical = path.canonicalize().ok();
    specs
        .iter()
        .find(|s| s.prompt_file == path || canonical.as_ref() == Some(&s.prompt_file))
}

/// `path` with `.` and `..` components resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// One error per dependency cycle found by a depth-first search in command-line order,
/// written from the cycle's earliest task and placed at that task's reference to the next.
fn cycle_errors(specs: &[TaskSpec], edges: &[Vec<(usize, usize)>]) -> Vec<InputError> {
    let mut visited = vec![false; specs.len()];
    let mut stack = vec![];
    let mut cycles = vec![];
    for root in 0..specs.len() {
        find_cycles(root, edges, &mut visited, &mut stack, &mut cycles);
    }
    cycles
        .into_iter()
        .map(|mut cycle| {
            let start = cycle.iter().enumerate().min_by_key(|&(_, &t)| t).map_or(0, |(k, _)| k);
            cycle.rotate_left(start);
            let (first, next) = (cycle[0], *cycle.get(1).unwrap_or(&cycle[0]));
            let line = edges[first].iter().find(|&&(j, _)| j == next).map(|&(_, line)| line);
            let names: Vec<&str> = cycle.iter().chain([&first]).map(|&t| specs[t].id.as_str()).collect();
            InputError::at(
                &specs[first].prompt_file,
                line,
                format!("dependency cycle: {}", names.join(" → ")),
                "remove one of these dependencies",
            )
        })
        .collect()
}

/// Depth-first search from `task`: every edge back to a task on `stack` closes a cycle.
fn find_cycles(
    task: usize,
    edges: &[Vec<(usize, usize)>],
    visited: &mut [bool],
    stack: &mut Vec<usize>,
    cycles: &mut Vec<Vec<usize>>,
) {
    if visited[task] {
        return;
    }
    visited[task] = true;
    stack.push(task);
    for &(next, _) in &edges[task] {
        match stack.iter().position(|&t| t == next) {
            Some(start) => cycles.push(stack[start..].to_vec()),
            None => find_cycles(next, edges, visited, stack, cycles),
        }
    }
    stack.pop();
}

/// What one task may touch.
struct Touch {
    /// Literal `files` entries, tracked files its globs match and tracked mentioned paths.
    paths: BTreeSet<String>,
    /// Literal `files` entries.
    literals: Vec<String>,
    globs: Vec<TouchGlob>,
}

/// A glob of a task's `files`.
struct TouchGlob {
    pattern: String,
    /// The pattern up to its first glob metacharacter.
    prefix: String,
    matcher: GlobMatcher,
    /// Whether it matches any tracked file.
    matches_tracked: bool,
}

impl Touch {
    fn new(spec: &TaskSpec, tracked: &[String], tracked_set: &HashSet<&str>) -> Touch {
        let mut touch = Touch {
            paths: BTreeSet::new(),
            literals: vec![],
            globs: vec![],
        };
        for entry in &spec.files {
            let entry = entry.strip_prefix("./").unwrap_or(entry);
            let meta = entry.find(['*', '?', '[', '{']);
            let glob = meta.and_then(|_| GlobBuilder::new(entry).literal_separator(true).build().ok());
            match (meta, glob) {
                (Some(end), Some(glob)) => {
                    let matcher = glob.compile_matcher();
                    let before = touch.paths.len();
                    touch
                        .paths
                        .extend(tracked.iter().filter(|t| matcher.is_match(t)).cloned());
                    touch.globs.push(TouchGlob {
                        pattern: entry.to_string(),
                        prefix: entry[..end].to_string(),
                        matcher,
                        matches_tracked: touch.paths.len() > before,
                    });
                }
                _ => {
                    touch.paths.insert(entry.to_string());
                    touch.literals.push(entry.to_string());
                }
            }
        }
        let mentioned = spec.mentioned_paths.iter().filter(|p| tracked_set.contains(p.as_str()));
        touch.paths.extend(mentioned.cloned());
        touch
    }

    /// Sorted paths and patterns both `self` and `other` may touch.
    fn shared(&self, other: &Touch) -> Vec<String> {
        let mut shared: BTreeSet<String> = self.paths.intersection(&other.paths).cloned().collect();
        for (a, b) in [(self, other), (other, self)] {
            for literal in &a.literals {
                if b.globs.iter().any(|g| g.matcher.is_match(literal)) {
                    shared.insert(literal.clone());
                }
            }
        }
        for a in &self.globs {
            for b in &other.globs {
                let unmatched = !a.matches_tracked || !b.matches_tracked;
                if unmatched && (a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix)) {
                    shared.insert(a.pattern.clone());
                    shared.insert(b.pattern.clone());
                }
            }
        }
        shared.into_iter().collect()
    }
}

/// Finds the conflicts between unordered pairs of tasks, serializing them per `policy`.
fn find_conflicts(tasks: &mut [PlannedTask], tracked_files: &[String], policy: ConflictPolicy) -> Vec<Conflict> {
    let tracked_set: HashSet<&str> = tracked_files.iter().map(String::as_str).collect();
    let touches: Vec<Touch> = tasks
        .iter()
        .map(|t| Touch::new(&t.spec, tracked_files, &tracked_set))
        .collect();
    // waits[a][b]: task a starts after task b, directly or not.
    let mut waits = vec![vec![false; tasks.len()]; tasks.len()];
    for (i, task) in tasks.iter().enumerate() {
        for &d in &task.deps {
            add_wait(&mut waits, i, d);
        }
    }
    let mut conflicts = vec![];
    for first in 0..tasks.len() {
        for second in first + 1..tasks.len() {
            if waits[first][second] || waits[second][first] {
                continue;
            }
            let paths = touches[first].shared(&touches[second]);
            if paths.is_empty() {
                continue;
            }
            let serialized = policy == ConflictPolicy::Serialize;
            if serialized {
                tasks[second].after.push(first);
                add_wait(&mut waits, second, first);
            }
            conflicts.push(Conflict {
                first,
                second,
                paths,
                serialized,
            });
        }
    }
    conflicts
}

/// Records that `waiter` starts after `target`: so does every task that waits for `waiter`,
/// and they all wait for whatever `target` waits for.
fn add_wait(waits: &mut [Vec<bool>], waiter: usize, target: usize) {
    let mut inherited = waits[target].clone();
    inherited[target] = true;
    for (k, row) in waits.iter_mut().enumerate() {
        if k == waiter || row[waiter] {
            for (w, &inherit) in row.iter_mut().zip(&inherited) {
                *w |= inherit;
            }
        }
    }
}

/// Kahn's algorithm over `deps` and `after`, taking ready tasks in command-line order.
fn topological_order(tasks: &[PlannedTask]) -> Vec<usize> {
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len() + t.after.len()).collect();
    let mut next: Vec<Vec<usize>> = vec![vec![]; tasks.len()];
    for (i, task) in tasks.iter().enumerate() {
        for &d in task.deps.iter().chain(&task.after) {
            next[d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = vec![];
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &n in &next[i] {
            waiting[n] -= 1;
            if waiting[n] == 0 {
                ready.insert(n);
            }
        }
    }
    order
}

/// The longest chain: from the task with the highest `remaining_path`, each step to the
/// dependent that continues it; ties go to the earliest task on the command line.
fn critical_path(tasks: &[PlannedTask]) -> Vec<usize> {
    let longest = |candidates: &[usize]| {
        candidates.iter().copied().reduce(|best, i| {
            if tasks[i].remaining_path > tasks[best].remaining_path {
                i
            } else {
                best
            }
        })
    };
    let all: Vec<usize> = (0..tasks.len()).collect();
    let mut path = vec![];
    let mut current = longest(&all);
    while let Some(i) = current {
        path.push(i);
        current = longest(&tasks[i].dependents);
    }
    path
}

/// The `gadugi plan` text: tasks in start order with their dependencies, the critical path
/// and the conflicts. Paths inside `repo_root` are shown relative to it.
pub fn render_text(plan: &Plan, repo_root: &Path) -> String {
    let id = |i: usize| plan.tasks[i].spec.id.as_str();
    let ids = |list: &[usize]| list.iter().map(|&i| id(i)).collect::<Vec<_>>();
    let canonical_root = repo_root.canonicalize().unwrap_or_else(|_| repo_root.to_path_buf());
    let mut out = String::new();
    let _ = writeln!(out, "Tasks ({}), in start order:", plan.tasks.len());
    for (n, &i) in plan.topological_order().iter().enumerate() {
        let task = &plan.tasks[i];
        let _ = write!(out, "  {}. {}  {:?}", n + 1, task.spec.id, task.spec.title);
        if !task.deps.is_empty() {
            let _ = write!(out, "  ← depends on: {}", ids(&task.deps).join(", "));
        }
        if !task.after.is_empty() {
            let _ = write!(out, "  ← waits for: {} (file conflict)", ids(&task.after).join(", "));
        }
        let file = &task.spec.prompt_file;
        let shown = [repo_root, canonical_root.as_path()]
            .into_iter()
            .find_map(|root| file.strip_prefix(root).ok())
            .unwrap_or(file);
        let _ = writeln!(out, "  ({})", shown.display());
    }
    let critical = ids(&plan.critical_path);
    let plural = if critical.len() == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "Critical path: {} ({} task{plural})",
        critical.join(" → "),
        critical.len()
    );
    if plan.conflicts.is_empty() {
        out.push_str("Conflicts: none\n");
        return out;
    }
    out.push_str("Conflicts:\n");
    for c in &plan.conflicts {
        let (a, b) = (id(c.first), id(c.second));
        let outcome = if c.serialized {
            format!("serialized: {b} waits for {a}")
        } else {
            "warning: they may run at the same time".to_string()
        };
        let _ = writeln!(out, "  {a} ↔ {b}: {} ({outcome})", c.paths.join(", "));
    }
    out
}

/// The plan as JSON for `gadugi plan --json`, in a stable shape: `tasks` (with resolved
/// `depends_on` and `after` ids), `critical_path` ids and `conflicts`.
pub fn to_json(plan: &Plan) -> Value {
    let ids = |list: &[usize]| list.iter().map(|&i| plan.tasks[i].spec.id.clone()).collect::<Vec<_>>();
    let tasks: Vec<Value> = plan
        .tasks
        .iter()
        .map(|t| {
            json!({
                "id": t.spec.id,
                "title": t.spec.title,
                "prompt_file": t.spec.prompt_file.to_string_lossy(),
                "depends_on": ids(&t.deps),
                "after": ids(&t.after),
                "files": t.spec.files,
                "agent": t.spec.agent,
                "timeout_seconds": t.spec.timeout.map(|d| d.as_secs()),
                "retries": t.spec.retries,
                "verify": t.spec.verify,
                "remaining_path": t.remaining_path,
            })
        })
        .collect();
    let conflicts: Vec<Value> = plan
        .conflicts
        .iter()
        .map(|c| {
            let tasks = ids(&[c.first, c.second]);
            json!({"tasks": tasks, "paths": c.paths, "serialized": c.serialized})
        })
        .collect();
    json!({"tasks": tasks, "critical_path": ids(&plan.critical_path), "conflicts": conflicts})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task `id` at /plans/`file` depending on `deps` (written at line 3).
    fn spec_at(id: &str, file: &str, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.to_string(),
            id_line: None,
            title: format!("Do {id}"),
            prompt_file: Path::new("/plans").join(file),
            body: "text".to_string(),
            depends_on: deps
                .iter()
                .map(|d| DependencyRef {
                    raw: d.to_string(),
                    line: 3,
                })
                .collect(),
            files: vec![],
            mentioned_paths: vec![],
            agent: None,
            timeout: None,
            retries: None,
            verify: None,
            setup: vec![],
        }
    }

    fn spec(id: &str, deps: &[&str]) -> TaskSpec {
        spec_at(id, &format!("{id}.md"), deps)
    }

    fn with_files(mut spec: TaskSpec, files: &[&str], mentioned: &[&str]) -> TaskSpec {
        spec.files = files.iter().map(|f| f.to_string()).collect();
        spec.mentioned_paths = mentioned.iter().map(|f| f.to_string()).collect();
        spec
    }

    fn plan(specs: Vec<TaskSpec>) -> Plan {
        build_plan(Path::new("/"), specs, &[], ConflictPolicy::Serialize).unwrap()
    }

    fn errors(specs: Vec<TaskSpec>) -> Vec<InputError> {
        build_plan(Path::new("/"), specs, &[], ConflictPolicy::Serialize)
            .unwrap_err()
            .0
    }

    fn field<T: Clone>(plan: &Plan, f: impl Fn(&PlannedTask) -> T) -> Vec<T> {
        plan.tasks.iter().map(f).collect()
    }

    #[test]
    fn chain() {
        let p = plan(vec![spec("c", &["b"]), spec("b", &["a"]), spec("a", &[])]);
        assert_eq!(field(&p, |t| t.deps.clone()), [vec![1], vec![2], vec![]]);
        assert_eq!(field(&p, |t| t.dependents.clone()), [vec![], vec![0], vec![1]]);
        assert_eq!(field(&p, |t| t.remaining_path), [1, 2, 3]);
        assert_eq!(p.topological_order(), [2, 1, 0]);
        assert_eq!(p.critical_path, [2, 1, 0]);
    }

    #[test]
    fn diamond() {
        let p = plan(vec![
            spec("a", &[]),
            spec("b", &["a"]),
            spec("c", &["a"]),
            spec("d", &["c", "b"]),
        ]);
        assert_eq!(p.tasks[3].deps, [2, 1]);
        assert_eq!(p.tasks[0].dependents, [1, 2]);
        assert_eq!(field(&p, |t| t.remaining_path), [3, 2, 2, 1]);
        assert_eq!(p.critical_path, [0, 1, 3]);
        assert_eq!(p.topological_order(), [0, 1, 2, 3]);
    }

    #[test]
    fn critical_path_ties_go_to_command_line_order() {
        let p = plan(vec![
            spec("x", &[]),
            spec("a", &[]),
            spec("b", &["a"]),
            spec("c", &[]),
            spec("d", &["c"]),
        ]);
        assert_eq!(p.critical_path, [1, 2]);
        assert_eq!(field(&p, |t| t.remaining_path), [1, 2, 1, 2, 1]);
    }

    #[test]
    fn unknown_dependency() {
        let e = errors(vec![spec("a", &[]), spec("b", &["zzz"])]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].problem, "unknown dependency `zzz`");
        assert_eq!(
            (e[0].file.as_deref(), e[0].line),
            (Some(Path::new("/plans/b.md")), Some(3))
        );
        assert!(e[0].fix.contains("known: a, b"), "{}", e[0].fix);
    }

    #[test]
    fn dependency_by_relative_path() {
        let p = plan(vec![
            spec_at("a", "a.md", &[]),
            spec_at("b", "sub/b.md", &["../a.md", "a"]),
            spec_at("c", "c.md", &["./sub/b.md", "sub/../a.md"]),
        ]);
        assert_eq!(field(&p, |t| t.deps.clone()), [vec![], vec![0], vec![1, 0]]);
    }

    #[test]
    fn dependency_on_a_file_outside_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("other.md"), "x").unwrap();
        let mut a = spec("a", &["other.md"]);
        a.prompt_file = root.join("a.md");
        let e = errors(vec![a]);
        assert_eq!(
            e[0].problem,
            "depends on other.md, which is not among the prompt files of this run"
        );
        assert_eq!(e[0].fix, "add it to the command line");
    }

    #[test]
    fn cycles() {
        let e = errors(vec![spec("a", &["a"])]);
        assert_eq!(e[0].problem, "dependency cycle: a → a");
        let e = errors(vec![spec("a", &["b"]), spec("b", &["c"]), spec("c", &["a"])]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].problem, "dependency cycle: a → b → c → a");
        assert_eq!(e[0].fix, "remove one of these dependencies");
        let mut c = spec("c", &["x", "a"]);
        c.depends_on[1].line = 7;
        let e = errors(
            vec![spec("a", &["b"]), spec("b", &["c"]), spec("ok", &[]), c]
                .into_iter()
                .rev()
                .collect(),
        );
        let problems: Vec<&str> = e.iter().map(|e| e.problem.as_str()).collect();
        assert_eq!(problems, ["unknown dependency `x`", "dependency cycle: c → a → b → c"]);
        assert_eq!(
            (e[1].file.as_deref(), e[1].line),
            (Some(Path::new("/plans/c.md")), Some(7))
        );
    }

    #[test]
    fn duplicates() {
        let mut second = spec_at("a", "other.md", &[]);
        second.id_line = Some(2);
        let e = errors(vec![spec("a", &[]), second, spec("a", &[])]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].problem, "task id `a` is also the id of /plans/a.md");
        assert_eq!(
            (e[0].file.as_deref(), e[0].line),
            (Some(Path::new("/plans/other.md")), Some(2))
        );
        assert_eq!(e[1].problem, "prompt file given twice");
        assert_eq!(errors(vec![])[0].problem, "no prompt files given");
    }

    #[test]
    fn conflicts_from_files_globs_and_mentions() {
        let tracked: Vec<String> = ["src/api/client.rs", "src/a/x.rs", "src/lib.rs", "README.md"]
            .map(String::from)
            .to_vec();
        let pairs = [
            (
                with_files(spec("a", &[]), &["src/new.rs"], &[]),
                with_files(spec("b", &[]), &["./src/new.rs"], &[]),
                vec!["src/new.rs"],
            ),
            (
                with_files(spec("a", &[]), &["src/api/**"], &[]),
                with_files(spec("b", &[]), &[], &["src/api/client.rs"]),
                vec!["src/api/client.rs"],
            ),
            (
                with_files(spec("a", &[]), &["gen/*.rs"], &[]),
                with_files(spec("b", &[]), &["gen/x.rs"], &[]),
                vec!["gen/x.rs"],
            ),
            (
                with_files(spec("a", &[]), &["new/**"], &[]),
                with_files(spec("b", &[]), &["new/sub/*.rs"], &[]),
                vec!["new/**", "new/sub/*.rs"],
            ),
            (
                with_files(spec("a", &[]), &["src/api/**"], &[]),
                with_files(spec("b", &[]), &["src/api/v2/*.rs"], &[]),
                vec!["src/api/**", "src/api/v2/*.rs"],
            ),
            (
                with_files(spec("a", &[]), &["src/a/*.rs"], &[]),
                with_files(spec("b", &[]), &["src/*.rs"], &[]),
                vec![],
            ),
            (
                with_files(spec("a", &[]), &[], &["untracked.rs", "README.md"]),
                with_files(spec("b", &[]), &[], &["untracked.rs", "src/lib.rs"]),
                vec![],
            ),
            (
                with_files(spec("a", &[]), &["src/lib.rs", "README.md"], &[]),
                with_files(spec("b", &[]), &["**/*.md"], &["src/lib.rs"]),
                vec!["README.md", "src/lib.rs"],
            ),
        ];
        for (a, b, expected) in pairs {
            let p = build_plan(Path::new("/"), vec![a, b], &tracked, ConflictPolicy::Warn).unwrap();
            let found: Vec<&str> = p
                .conflicts
                .iter()
                .flat_map(|c| c.paths.iter().map(String::as_str))
                .collect();
            assert_eq!(found, expected);
        }
    }

    fn lib_rs(id: &str, deps: &[&str]) -> TaskSpec {
        with_files(spec(id, deps), &["src/lib.rs"], &[])
    }

    #[test]
    fn serialize_adds_edges_without_cycles() {
        let p = plan(vec![lib_rs("a", &[]), lib_rs("b", &[]), lib_rs("c", &[])]);
        assert_eq!(field(&p, |t| t.after.clone()), [vec![], vec![0], vec![0, 1]]);
        assert_eq!(field(&p, |t| t.remaining_path), [3, 2, 1]);
        assert_eq!(p.critical_path, [0, 1, 2]);
        assert!(p.conflicts.iter().all(|c| c.serialized));
        // a waits for c; serializing b after a then orders every pair, so c ↔ b is no conflict.
        let p = plan(vec![lib_rs("a", &["c"]), lib_rs("b", &[]), lib_rs("c", &[])]);
        assert_eq!(
            p.conflicts,
            [Conflict {
                first: 0,
                second: 1,
                paths: vec!["src/lib.rs".into()],
                serialized: true
            }]
        );
        assert_eq!(p.topological_order(), [2, 0, 1]);
    }

    #[test]
    fn warn_only_reports() {
        let specs = vec![lib_rs("a", &[]), lib_rs("b", &[]), lib_rs("c", &[])];
        let p = build_plan(Path::new("/"), specs, &[], ConflictPolicy::Warn).unwrap();
        assert!(p.tasks.iter().all(|t| t.after.is_empty()));
        let pairs: Vec<(usize, usize, bool)> = p.conflicts.iter().map(|c| (c.first, c.second, c.serialized)).collect();
        assert_eq!(pairs, [(0, 1, false), (0, 2, false), (1, 2, false)]);
    }

    #[test]
    fn dependencies_suppress_conflicts() {
        let p = plan(vec![lib_rs("a", &[]), lib_rs("b", &["a"]), lib_rs("c", &["b"])]);
        assert!(p.conflicts.is_empty());
    }

    #[test]
    fn text_and_json() {
        let mut b = lib_rs("b", &["a"]);
        b.timeout = Some(std::time::Duration::from_secs(90));
        let p = plan(vec![lib_rs("ui", &[]), spec("a", &[]), b]);
        let text = render_text(&p, Path::new("/plans"));
        let expected = "Tasks (3), in start order:\n  1. ui  \"Do ui\"  (ui.md)\n  2. a  \"Do a\"  (a.md)\n  3. b  \"Do b\"  ← depends on: a  ← waits for: ui (file conflict)  (b.md)\nCritical path: ui → b (2 tasks)\nConflicts:\n  ui ↔ b: src/lib.rs (serialized: b waits for ui)\n";
        assert_eq!(text, expected);
        let json = to_json(&p);
        assert_eq!(json["critical_path"], json!(["ui", "b"]));
        assert_eq!(
            json["conflicts"],
            json!([{"tasks": ["ui", "b"], "paths": ["src/lib.rs"], "serialized": true}])
        );
        assert_eq!(
            json["tasks"][2],
            json!({"id": "b", "title": "Do b", "prompt_file": "/plans/b.md", "depends_on": ["a"], "after": ["ui"],
                   "files": ["src/lib.rs"], "agent": null, "timeout_seconds": 90, "retries": null, "verify": null, "remaining_path": 1})
        );
        let single = plan(vec![spec("a", &[])]);
        assert!(render_text(&single, Path::new("/elsewhere"))
            .ends_with("(/plans/a.md)\nCritical path: a (1 task)\nConflicts: none\n"));
    }
}
