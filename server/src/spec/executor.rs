//! The `[executor]` table of gadugi.toml: where a run's attempts run. `local` (the default)
//! runs every agent on this machine under a supervisor; `slurm` submits one job per attempt
//! to a Slurm cluster (`exec/slurm.rs`) and `kubernetes` one `batch/v1` Job per attempt
//! (`exec/kubernetes.rs`); their jobs fetch from and push to a shared git remote. Checked when the configuration loads; what can only be checked against the
//! cluster (its tools, the remote's reachability) is `ops::prepare`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::spec::toml_text::find_key_line_in;

/// Which engine runs the attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// On this machine, one supervisor per attempt.
    #[default]
    Local,
    /// One Slurm job per attempt.
    Slurm,
    /// One Kubernetes `batch/v1` Job per attempt.
    Kubernetes,
}

impl ExecutorKind {
    /// Parses `local`, `slurm` or `kubernetes`; the error says which kinds exist.
    pub fn parse(s: &str) -> Result<ExecutorKind, String> {
        match s {
            "local" => Ok(ExecutorKind::Local),
            "slurm" => Ok(ExecutorKind::Slurm),
            "kubernetes" => Ok(ExecutorKind::Kubernetes),
            other => Err(format!(
                "unknown executor kind `{other}`; the kinds are \"local\", \"slurm\" and \"kubernetes\""
            )),
        }
    }

    /// The name as gadugi.toml spells it.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
            ExecutorKind::Kubernetes => "kubernetes",
        }
    }
}

/// The `[executor]` table, checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorConfig {
    /// Which engine runs the attempts.
    pub kind: ExecutorKind,
    /// The git remote jobs fetch from and push to (a remote's name in this repository).
    pub remote: String,
    /// How a node runs Gadugi: a path, or a name on the node's PATH. Default: this binary's
    /// own path (a shared filesystem), else `gadugi`.
    pub gadugi: Option<String>,
    /// Folder on the node under which each job makes its clone (default: the job's
    /// `$TMPDIR`, else `/tmp`).
    pub workdir: Option<PathBuf>,
    /// A file of `NAME=value` lines (mode 0600) whose variables the agent gets: the model
    /// API keys. Only its path travels with the job.
    pub agent_env_file: Option<PathBuf>,
    /// A git-credential-store file (mode 0600) the job's fetch and push use; the agent never
    /// sees it.
    pub git_credentials: Option<PathBuf>,
    /// Names of environment variables the job takes from the submitter (never values).
    pub export: Vec<String>,
    /// The `[executor.slurm]` table.
    pub slurm: SlurmSettings,
    /// The `[executor.kubernetes]` table.
    #[serde(default)]
    pub kubernetes: KubernetesSettings,
    /// Where the table was written, for later errors (line of `kind`).
    #[serde(skip)]
    pub kind_line: Option<usize>,
}

/// The `[executor.slurm]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// The partition jobs go to (`sbatch -p`); the cluster's default when unset.
    pub partition: Option<String>,
    /// More `sbatch` options, e.g. `["--mem=4G"]`.
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

/// The `[executor.kubernetes]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// The namespace the Jobs go to.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The container image: git, the agents' programs and gadugi inside.
    #[serde(default)]
    pub image: String,
    /// CPU of each job's pod (requests = limits), e.g. "2" or "500m".
    pub cpu: Option<String>,
    /// Memory of each job's pod, e.g. "4Gi".
    pub memory: Option<String>,
    /// Scratch disk of each job's pod (the clone, builds), e.g. "20Gi".
    pub ephemeral_storage: Option<String>,
    /// The Secret mounted into each pod: keys `agent.env` (the agent's API keys) and
    /// `git-credentials` (the job's git credential).
    pub secret: Option<String>,
    /// The service account the pods run as.
    pub service_account: Option<String>,
    /// How long a finished Job stays for `kubectl` to look at (Gadugi removes it earlier
    /// once it collected the result).
    #[serde(default = "default_ttl")]
    pub ttl_seconds_after_finished: u32,
}

impl Default for KubernetesSettings {
    fn default() -> KubernetesSettings {
        KubernetesSettings {
            namespace: default_namespace(),
            image: String::new(),
            cpu: None,
            memory: None,
            ephemeral_storage: None,
            secret: None,
            service_account: None,
            ttl_seconds_after_finished: default_ttl(),
        }
    }
}

fn default_namespace() -> String {
    "default".into()
}

fn default_ttl() -> u32 {
    3600
}

/// Whether `name` is a DNS-1123 label (namespaces, Secrets, service accounts).
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `q` is a Kubernetes quantity: a number with an optional suffix (`500m`, `2`,
/// `4Gi`, `1.5G`).
fn is_quantity(q: &str) -> bool {
    let number_end = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && [
            "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ]
        .contains(&suffix)
}

/// The `[executor]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    kind: Option<String>,
    remote: Option<String>,
    gadugi: Option<String>,
    workdir: Option<String>,
    agent_env_file: Option<String>,
    git_credentials: Option<String>,
    #[serde(default)]
    export: Vec<String>,
    #[serde(default)]
    slurm: SlurmSettings,
    #[serde(default)]
    kubernetes: Option<KubernetesSettings>,
}

/// Environment variables a job takes by default: what finds programs and where home is.
/// None of them carries a secret.
pub const DEFAULT_EXPORT: &[&str] = &["PATH", "HOME", "USER", "LANG"];

impl ExecutorConfig {
    /// The local executor: every attempt on this machine.
    pub fn local() -> ExecutorConfig {
        ExecutorConfig {
            remote: "origin".into(),
            export: DEFAULT_EXPORT.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Whether attempts run away from this machine.
    pub fn is_remote(&self) -> bool {
        self.kind != ExecutorKind::Local
    }

    /// Checks the `[executor]` table of gadugi.toml at `path` (text `text`).
    pub fn from_section(path: &Path, text: &str, section: ExecutorSection) -> Result<ExecutorConfig, InputError> {
        let at = |key: &str, sub: Option<&str>, problem: String, fix: &str| {
            let table = match sub {
                Some(s) => format!("executor.{s}"),
                None => "executor".into(),
            };
            // A key that is missing is pointed at by its table's header.
            let line = find_key_line_in(text, Some(&table), key).or_else(|| {
                text.lines()
                    .position(|l| l.trim() == format!("[{table}]"))
                    .map(|i| i + 1)
            });
            InputError::at(path, line, problem, fix)
        };
        let mut config = ExecutorConfig::local();
        config.kind_line = find_key_line_in(text, Some("executor"), "kind");
        if let Some(kind) = &section.kind {
            config.kind = ExecutorKind::parse(kind).map_err(|problem| {
                at(
                    "kind",
                    None,
                    problem,
                    "set kind = \"local\", \"slurm\" or \"kubernetes\"",
                )
            })?;
        }
        if let Some(remote) = section.remote {
            if remote.trim().is_empty() || remote.starts_with('-') {
                return Err(at(
                    "remote",
                    None,
                    format!("remote `{remote}` is not a git remote's name"),
                    "name the remote jobs fetch from and push to, e.g. remote = \"origin\"",
                ));
            }
            config.remote = remote;
        }
        if let Some(g) = section.gadugi {
            if g.trim().is_empty() {
                return Err(at(
                    "gadugi",
                    None,
                    "gadugi is empty".into(),
                    "give the path of gadugi on the nodes, or its name on their PATH: gadugi = \"gadugi\"",
                ));
            }
            config.gadugi = Some(g);
        }
        let absolute = |key: &str, value: Option<String>| -> Result<Option<PathBuf>, InputError> {
            let Some(v) = value else { return Ok(None) };
            let p = expand_home(&v);
            if !p.is_absolute() {
                return Err(at(
                    key,
                    None,
                    format!("{key} `{v}` is not an absolute path; jobs run in other folders, on other machines"),
                    "give an absolute path (or one starting with ~/)",
                ));
            }
            Ok(Some(p))
        };
        config.workdir = absolute("workdir", section.workdir)?;
        config.agent_env_file = absolute("agent_env_file", section.agent_env_file)?;
        config.git_credentials = absolute("git_credentials", section.git_credentials)?;
        for name in &section.export {
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(at(
                    "export",
                    None,
                    format!("export lists `{name}`, which is not an environment variable's name"),
                    "list names only, e.g. export = [\"PATH\", \"HOME\"]; values never go to the cluster this way",
                ));
            }
            if !config.export.contains(name) {
                config.export.push(name.clone());
            }
        }
        if let Some(p) = &section.slurm.partition {
            if p.trim().is_empty() || p.starts_with('-') {
                return Err(at(
                    "partition",
                    Some("slurm"),
                    format!("partition `{p}` is not a partition's name"),
                    "name a partition sinfo lists, or leave partition out for the cluster's default",
                ));
            }
        }
        if let Some(bad) = section.slurm.sbatch_args.iter().find(|a| !a.starts_with('-')) {
            return Err(at(
                "sbatch_args",
                Some("slurm"),
                format!("sbatch_args has `{bad}`, which is not an sbatch option"),
                "list options only, e.g. sbatch_args = [\"--mem=4G\", \"--time=2:00:00\"]",
            ));
        }
        config.slurm = section.slurm;
        if let Some(k) = section.kubernetes {
            let at_k = |key: &str, problem: String, fix: &str| at(key, Some("kubernetes"), problem, fix);
            if !is_dns_label(&k.namespace) {
                return Err(at_k(
                    "namespace",
                    format!("namespace `{}` is not a Kubernetes namespace's name", k.namespace),
                    "use lowercase letters, digits and `-`, e.g. namespace = \"agents\"",
                ));
            }
            for (key, name) in [("secret", &k.secret), ("service_account", &k.service_account)] {
                if let Some(name) = name.as_deref().filter(|n| !is_dns_label(n)) {
                    return Err(at_k(
                        key,
                        format!("{key} `{name}` is not a Kubernetes object's name"),
                        "use lowercase letters, digits and `-`, as `kubectl get` lists it",
                    ));
                }
            }
            for (key, q) in [
                ("cpu", &k.cpu),
                ("memory", &k.memory),
                ("ephemeral_storage", &k.ephemeral_storage),
            ] {
                if let Some(q) = q.as_deref().filter(|q| !is_quantity(q)) {
                    return Err(at_k(
                        key,
                        format!("{key} `{q}` is not a Kubernetes quantity"),
                        "for example cpu = \"2\", memory = \"4Gi\", ephemeral_storage = \"20Gi\"",
                    ));
                }
            }
            if k.image.trim().is_empty() && config.kind == ExecutorKind::Kubernetes {
                return Err(at_k(
                    "image",
                    "[executor.kubernetes] names no image".into(),
                    "set image to one with git, the agents' programs and gadugi inside, e.g. image = \"registry.example.com/agents:2026-11\"",
                ));
            }
            config.kubernetes = k;
        } else if config.kind == ExecutorKind::Kubernetes {
            return Err(at(
                "kind",
                None,
                "kind = \"kubernetes\" needs an [executor.kubernetes] table with at least the image".into(),
                "add [executor.kubernetes] with image = \"...\" and namespace = \"...\"",
            ));
        }
        Ok(config)
    }
}

/// `~/x` → `$HOME/x`; anything else unchanged.
fn expand_home(value: &str) -> PathBuf {
    match (value.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ExecutorConfig, InputError> {
        let raw: toml::Table = toml::from_str(text).unwrap();
        let section: ExecutorSection = raw["executor"].clone().try_into().unwrap();
        ExecutorConfig::from_section(Path::new("/r/gadugi.toml"), text, section)
    }

    #[test]
    fn the_documented_table_parses() {
        let c = parse("[executor]\nkind = \"slurm\"\nremote = \"shared\"\ngadugi = \"/opt/gadugi\"\nexport = [\"TERM\"]\n[executor.slurm]\npartition = \"agents\"\nsbatch_args = [\"--mem=4G\"]\n").unwrap();
        assert_eq!(c.kind, ExecutorKind::Slurm);
        assert_eq!(c.remote, "shared");
        assert_eq!(c.gadugi.as_deref(), Some("/opt/gadugi"));
        assert_eq!(c.slurm.partition.as_deref(), Some("agents"));
        assert!(c.export.contains(&"PATH".to_string()) && c.export.contains(&"TERM".to_string()));
        assert_eq!(c.kind_line, Some(2));
    }

    #[test]
    fn the_kubernetes_table_parses() {
        let c = parse("[executor]\nkind = \"kubernetes\"\nremote = \"origin\"\n[executor.kubernetes]\nnamespace = \"agents\"\nimage = \"registry.example.com/agents:2026-11\"\ncpu = \"2\"\nmemory = \"4Gi\"\nsecret = \"gadugi-agent-keys\"\nservice_account = \"gadugi-agent\"\n").unwrap();
        assert_eq!(c.kind, ExecutorKind::Kubernetes);
        assert_eq!(c.kubernetes.namespace, "agents");
        assert_eq!(c.kubernetes.memory.as_deref(), Some("4Gi"));
        assert_eq!(c.kubernetes.ttl_seconds_after_finished, 3600);
        assert!(is_quantity("500m") && is_quantity("1.5G") && !is_quantity("Gi") && !is_quantity("4 Gi"));
    }

    #[test]
    fn bad_values_name_their_line() {
        let cases = [
            ("[executor]\nkind = \"mesos\"\n", 2, "unknown executor kind"),
            (
                "[executor]\nkind = \"kubernetes\"\n",
                2,
                "needs an [executor.kubernetes] table",
            ),
            (
                "[executor]\nkind = \"kubernetes\"\n[executor.kubernetes]\nnamespace = \"agents\"\n",
                3,
                "names no image",
            ),
            (
                "[executor]\n[executor.kubernetes]\nnamespace = \"Agents\"\n",
                3,
                "not a Kubernetes namespace",
            ),
            (
                "[executor]\n[executor.kubernetes]\nmemory = \"4 GB\"\n",
                3,
                "not a Kubernetes quantity",
            ),
            (
                "[executor]\n[executor.kubernetes]\nsecret = \"my_keys\"\n",
                3,
                "not a Kubernetes object",
            ),
            (
                "[executor]\nkind = \"slurm\"\nworkdir = \"scratch\"\n",
                3,
                "not an absolute path",
            ),
            ("[executor]\nexport = [\"API KEY\"]\n", 2, "not an environment variable"),
            (
                "[executor]\n[executor.slurm]\nsbatch_args = [\"mem=4G\"]\n",
                3,
                "not an sbatch option",
            ),
            ("[executor]\n[executor.slurm]\npartition = \"\"\n", 3, "not a partition"),
        ];
        for (text, line, problem) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text}");
            assert!(e.problem.contains(problem), "{text}: {}", e.problem);
        }
    }
}
