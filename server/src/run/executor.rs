//! Which engine runs a run's attempts: [`engine_for`] (the one place that knows the
//! engines) and [`Remote`], what the run loop hands its task futures when a cluster runs
//! them (`run/remote.rs` drives each attempt).

use std::path::Path;
use std::sync::Arc;

use crate::exec::engine::Engine;
use crate::run::request::RunRequest;
use crate::spec::config::Config;
use crate::spec::executor::ExecutorKind;

/// The cluster a run's attempts go to, with the remote both sides use.
pub(crate) struct Remote {
    pub engine: Arc<dyn Engine>,
    /// The URL of the configured remote.
    pub url: String,
    /// How a node runs Gadugi.
    pub gadugi: String,
}

/// The engine of a configuration (`None` for the local executor). The one place that
/// knows which engines exist.
pub fn engine_for(config: &Config) -> Option<Arc<dyn Engine>> {
    match config.executor.kind {
        ExecutorKind::Local => None,
        ExecutorKind::Slurm => Some(Arc::new(crate::exec::slurm::Slurm::new(
            config.executor.slurm.partition.clone(),
            config.executor.slurm.sbatch_args.clone(),
        ))),
        ExecutorKind::Kubernetes => {
            let k = &config.executor.kubernetes;
            Some(Arc::new(crate::exec::kubernetes::Kubernetes::new(
                crate::exec::kubernetes::KubernetesSettings {
                    namespace: k.namespace.clone(),
                    image: k.image.clone(),
                    cpu: k.cpu.clone(),
                    memory: k.memory.clone(),
                    ephemeral_storage: k.ephemeral_storage.clone(),
                    secret: k.secret.clone(),
                    service_account: k.service_account.clone(),
                    ttl_seconds_after_finished: i32::try_from(k.ttl_seconds_after_finished).unwrap_or(i32::MAX),
                },
            )))
        }
    }
}

impl Remote {
    /// The remote executor of a run, when its configuration names one.
    pub fn for_request(req: &RunRequest, exe: &Path) -> anyhow::Result<Option<Remote>> {
        let Some(engine) = engine_for(&req.config) else {
            return Ok(None);
        };
        let name = &req.config.executor.remote;
        let url = req
            .repo
            .remote_url(name)
            .ok_or_else(|| anyhow::anyhow!("the repository has no git remote `{name}` any more"))?;
        let gadugi = req
            .config
            .executor
            .gadugi
            .clone()
            .unwrap_or_else(|| exe.to_string_lossy().into_owned());
        Ok(Some(Remote { engine, url, gadugi }))
    }
}
