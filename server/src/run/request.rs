//! A run's request: everything a run needs, checked before anything was created, and
//! `run.json`, which lets a later process resume the run with exactly the plan, profiles
//! and settings it started with.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::agent::profile::AgentProfile;
use crate::git::Repo;
use crate::layout::Layout;
use crate::spec::config::Config;
use crate::spec::plan::Plan;

/// Everything a run needs, checked before anything was created.
pub struct RunRequest {
    pub repo: Arc<Repo>,
    pub layout: Layout,
    pub config: Config,
    pub plan: Plan,
    /// Agent profile of each task, in plan order.
    pub profiles: Vec<AgentProfile>,
    pub run_id: String,
    pub base_commit: String,
    pub base_branch: Option<String>,
    /// Maximum agents at once (the flag, else the configuration).
    pub max_parallel: usize,
}

/// `run.json`: the request without the repository handle, so that a later process can
/// resume the run with exactly the plan, profiles and settings it started with.
#[derive(Serialize, Deserialize)]
struct SavedRequest {
    config: Config,
    plan: Plan,
    profiles: Vec<AgentProfile>,
    run_id: String,
    base_commit: String,
    base_branch: Option<String>,
    max_parallel: usize,
}

impl RunRequest {
    /// Writes `run.json`.
    pub fn save(&self) -> Result<()> {
        let saved = SavedRequest {
            config: self.config.clone(),
            plan: self.plan.clone(),
            profiles: self.profiles.clone(),
            run_id: self.run_id.clone(),
            base_commit: self.base_commit.clone(),
            base_branch: self.base_branch.clone(),
            max_parallel: self.max_parallel,
        };
        std::fs::create_dir_all(self.layout.run_dir(&self.run_id))?;
        crate::fsutil::write_json_atomic(&self.layout.request_file(&self.run_id), &saved)
    }

    /// Reads the request a run was started with.
    pub fn load(repo: Arc<Repo>, layout: Layout, run_id: &str) -> Result<RunRequest> {
        let path = layout.request_file(run_id);
        let s: SavedRequest = crate::fsutil::read_json(&path)?
            .with_context(|| format!("{} is missing; this run cannot be resumed", path.display()))?;
        Ok(RunRequest {
            repo,
            layout,
            config: s.config,
            plan: s.plan,
            profiles: s.profiles,
            run_id: s.run_id,
            base_commit: s.base_commit,
            base_branch: s.base_branch,
            max_parallel: s.max_parallel,
        })
    }
}
