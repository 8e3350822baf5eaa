//! The Slurm engine (`exec::slurm::Slurm`) against a real two-node Slurm cluster on this
//! machine (`scripts/slurm-cluster.sh`, one cluster per test so tests run side by side and
//! one test's killed slurmd or busy node never meets another's jobs).
//!
//! Slurm counts time limits in whole minutes and checks them every 30 s, so the time-limit
//! test takes 60 to 90 s; its name sorts first, so that it starts first and the others run
//! meanwhile.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gadugi::exec::engine::Engine;
use gadugi::exec::engine::JobHandle;
use gadugi::exec::engine::JobRequest;
use gadugi::exec::engine::JobState;
use gadugi::exec::slurm::Slurm;

mod common;
use common::slurm::SlurmCluster;

/// The engine, its commands pointed at `cluster`.
fn engine(cluster: &SlurmCluster) -> Slurm {
    Slurm::new(Some("agents".to_string()), Vec::new()).with_env(cluster.env())
}

/// A job named `name` running `sh -c script` in the cluster's folder, its output in
/// `name.out` there.
fn job(cluster: &SlurmCluster, name: &str, script: &str) -> JobRequest {
    job_with_args(cluster, name, script, &[])
}

/// [`job`] whose script gets `args` as `$1`, `$2`...
fn job_with_args(cluster: &SlurmCluster, name: &str, script: &str, args: &[&str]) -> JobRequest {
    let dir = cluster.dir();
    let argv = ["sh", "-c", script, "sh"]
        .into_iter()
        .chain(args.iter().copied())
        .map(String::from);
    JobRequest {
        name: name.to_string(),
        argv: argv.collect(),
        output: dir.join(format!("{name}.out")),
        error: dir.join(format!("{name}.err")),
        workdir: dir.to_path_buf(),
        time_limit: None,
        export: vec!["GADUGI_TEST_WORD".to_string()],
        ..Default::default()
    }
}

/// Asks the engine for the job's state until `done` holds for it, for at most `limit`.
fn wait_state(slurm: &Slurm, handle: &JobHandle, limit: Duration, done: impl Fn(&JobState) -> bool) -> JobState {
    let deadline = Instant::now() + limit;
    loop {
        let state = slurm.state(handle).expect("squeue answers");
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "job {} ({}) still {state:?} after {limit:?}",
            handle.id,
            handle.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (at most `limit`) for the job to end; its final state.
fn wait_final(slurm: &Slurm, handle: &JobHandle, limit: Duration) -> JobState {
    wait_state(slurm, handle, limit, JobState::is_final)
}

/// Waits (at most 30 s) until `path` exists and holds `text`.
fn wait_file_holds(path: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(path).unwrap_or_default().contains(text) {
        assert!(Instant::now() < deadline, "{} never held {text:?}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_job_past_its_time_limit_is_failed_by_slurm() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let request = JobRequest {
        time_limit: Some(Duration::from_secs(5)),
        ..job(&cluster, "too-long", "sleep 300")
    };
    let handle = slurm.submit(&request).expect("submitted");
    // A 5 s limit is a minute to Slurm; its limit check runs every 30 s.
    let state = wait_final(&slurm, &handle, Duration::from_secs(150));
    let JobState::Failed { reason } = &state else {
        panic!("a job past its time limit ended {state:?}");
    };
    assert!(reason.starts_with("timeout:"), "{reason}");
}

#[test]
fn a_job_runs_its_argv_on_a_node_and_exits_0_with_its_output() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    // A quote and a $ in an argument reach the command as they are (no shell between).
    let request = job_with_args(
        &cluster,
        "hello",
        "echo \"first $GADUGI_TEST_WORD\"; echo \"node $SLURMD_NODENAME\"; echo \"$1\"",
        &["it's $HOME"],
    );
    assert_eq!(
        slurm
            .read_output(
                &JobHandle {
                    id: "0".into(),
                    name: "hello".into()
                },
                &request.output,
                0
            )
            .expect("read"),
        b"",
        "no output before the job ran"
    );
    let handle = {
        // The exported variable comes from sbatch's environment (the engine's env here).
        let slurm = Slurm::new(None, Vec::new()).with_env(
            [
                cluster.env(),
                vec![("GADUGI_TEST_WORD".to_string(), "word".to_string())],
            ]
            .concat(),
        );
        slurm.submit(&request).expect("submitted")
    };
    assert!(handle.id.parse::<u64>().is_ok(), "job id {:?}", handle.id);
    let state = wait_final(&slurm, &handle, Duration::from_secs(30));
    let JobState::Exited {
        code: 0,
        node: Some(node),
    } = &state
    else {
        panic!("the job ended {state:?}");
    };
    let output = slurm.read_output(&handle, &request.output, 0).expect("output read");
    let text = String::from_utf8_lossy(&output);
    assert_eq!(text, format!("first word\nnode {node}\nit's $HOME\n"));
    let first = "first word\n".len() as u64;
    assert_eq!(
        slurm.read_output(&handle, &request.output, first).expect("output read"),
        format!("node {node}\nit's $HOME\n").as_bytes()
    );
    assert_eq!(
        slurm
            .read_output(&handle, &request.output, output.len() as u64)
            .expect("output read"),
        b""
    );
    assert_eq!(cluster.nodes_used(), vec![node.clone()]);
}

#[test]
fn submitting_a_name_again_adopts_its_job() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let request = job(&cluster, "gadugi-run1-task-1", "sleep 1; echo once");
    assert_eq!(slurm.find(&request.name).expect("squeue answers"), None);
    let first = slurm.submit(&request).expect("submitted");
    let again = slurm.submit(&request).expect("submitted again");
    assert_eq!(again, first);
    assert_eq!(slurm.find(&request.name).expect("squeue answers"), Some(first.clone()));
    assert!(matches!(
        wait_final(&slurm, &first, Duration::from_secs(30)),
        JobState::Exited { code: 0, .. }
    ));
    // Once ended, the job is still the one of its name: no second job.
    assert_eq!(slurm.submit(&request).expect("submitted after its end"), first);
    let ran: Vec<String> = cluster
        .jobcomp_lines()
        .into_iter()
        .filter(|l| l.contains(" Name=gadugi-run1-task-1 "))
        .collect();
    assert_eq!(ran.len(), 1, "jobs of the name that ended: {ran:?}");
    assert_eq!(std::fs::read_to_string(&request.output).expect("output"), "once\n");
}

#[test]
fn two_one_cpu_jobs_run_at_once_on_both_nodes() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let handles: Vec<(JobHandle, PathBuf)> = ["left", "right"]
        .into_iter()
        .map(|name| {
            let started = cluster.dir().join(format!("{name}.started"));
            let script = "echo started > \"$1\"; sleep 30";
            let request = job_with_args(&cluster, name, script, &[&started.display().to_string()]);
            (slurm.submit(&request).expect("submitted"), started)
        })
        .collect();
    let mut nodes: Vec<String> = handles
        .iter()
        .map(|(handle, started)| {
            wait_file_holds(started, "started");
            match slurm.state(handle).expect("squeue answers") {
                JobState::Running { node } => node,
                other => panic!("a started job is {other:?}"),
            }
        })
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"], "each one-CPU node runs one of the two jobs");
    for (handle, _) in &handles {
        slurm.cancel(handle).expect("cancelled");
    }
    for (handle, _) in &handles {
        assert_eq!(wait_final(&slurm, handle, Duration::from_secs(30)), JobState::Cancelled);
    }
}

#[test]
fn a_failing_command_exits_with_its_code() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let handle = slurm
        .submit(&job(&cluster, "fails", "echo oops >&2; exit 3"))
        .expect("submitted");
    let state = wait_final(&slurm, &handle, Duration::from_secs(30));
    assert!(
        matches!(state, JobState::Exited { code: 3, node: Some(_) }),
        "{state:?}"
    );
    assert_eq!(
        std::fs::read_to_string(cluster.dir().join("fails.err")).expect("the job's stderr"),
        "oops\n"
    );
    let killed = slurm
        .submit(&job(&cluster, "killed", "kill -KILL $$"))
        .expect("submitted");
    let state = wait_final(&slurm, &killed, Duration::from_secs(30));
    assert!(matches!(state, JobState::Exited { code: 137, .. }), "{state:?}");
}

#[test]
fn cancel_sends_sigterm_and_the_job_ends_cancelled() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let marker = cluster.dir().join("terminated");
    let ready = cluster.dir().join("ready");
    // The process the job exec'd traps TERM, cleans up (1 s) and exits.
    let script = "trap 'echo TERM > \"$1\"; sleep 1; echo cleaned >> \"$1\"; exit 0' TERM; \
                  echo ready > \"$2\"; while :; do sleep 0.1; done";
    let request = job_with_args(
        &cluster,
        "to-cancel",
        script,
        &[&marker.display().to_string(), &ready.display().to_string()],
    );
    let handle = slurm.submit(&request).expect("submitted");
    wait_file_holds(&ready, "ready");
    assert!(cluster.squeue_names().contains(&"to-cancel".to_string()));
    slurm.cancel(&handle).expect("cancelled");
    assert_eq!(
        wait_final(&slurm, &handle, Duration::from_secs(30)),
        JobState::Cancelled
    );
    // It ended within KillWait (10 s), so by its TERM trap, not by the SIGKILL after it.
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the TERM trap wrote its marker"),
        "TERM\ncleaned\n"
    );
    assert!(
        !cluster.squeue_names().contains(&"to-cancel".to_string()),
        "squeue still lists the cancelled job: {:?}",
        cluster.squeue_names()
    );
    // Cancelling a job that ended is no error.
    slurm.cancel(&handle).expect("a second cancel");
}

#[test]
fn a_job_outlives_its_nodes_slurmd() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let request = job(
        &cluster,
        "outlives",
        "echo running; sleep 3; for i in 1 2 3; do echo tick $i; sleep 0.5; done; echo done",
    );
    let handle = slurm.submit(&request).expect("submitted");
    let state = wait_state(&slurm, &handle, Duration::from_secs(30), |s| {
        matches!(s, JobState::Running { .. }) || s.is_final()
    });
    let JobState::Running { node } = state else {
        panic!("the job never ran: {state:?}");
    };
    wait_file_holds(&request.output, "running");
    cluster.kill_slurmd(&node);
    wait_file_holds(&request.output, "done");
    assert_eq!(
        std::fs::read_to_string(&request.output).expect("output"),
        "running\ntick 1\ntick 2\ntick 3\ndone\n"
    );
    // Slurm learns of the end only from the node's slurmd: until it is back, the job is
    // still completing.
    assert_eq!(
        slurm.state(&handle).expect("squeue answers"),
        JobState::Running { node: node.clone() }
    );
    cluster.restart_slurmd(&node);
    assert_eq!(
        wait_final(&slurm, &handle, Duration::from_secs(60)),
        JobState::Exited {
            code: 0,
            node: Some(node)
        }
    );
}

#[test]
fn a_job_slurm_does_not_know_is_lost() {
    let cluster = SlurmCluster::up();
    let slurm = engine(&cluster);
    let unknown = JobHandle {
        id: "987654".to_string(),
        name: "gadugi-gone-1".to_string(),
    };
    let state = slurm.state(&unknown).expect("squeue answers");
    assert!(matches!(state, JobState::Lost { .. }), "{state:?}");
    slurm.cancel(&unknown).expect("nothing to cancel is no error");
    assert_eq!(slurm.find("gadugi-gone-1").expect("squeue answers"), None);
}

#[test]
fn check_accepts_the_cluster_and_names_a_bad_slurm_conf() {
    let cluster = SlurmCluster::up();
    assert_eq!(engine(&cluster).check(), Ok(()));
    assert_eq!(engine(&cluster).kind(), "slurm");
    let with_conf = |conf: &Path| {
        Slurm::new(None, Vec::new()).with_env(vec![("SLURM_CONF".to_string(), conf.display().to_string())])
    };

    let missing = cluster.dir().join("no-such.conf");
    let err = with_conf(&missing).check().expect_err("no configuration file");
    assert!(err.contains("SLURM_CONF") && err.contains("no-such.conf"), "{err}");

    let garbage = cluster.dir().join("garbage.conf");
    std::fs::write(&garbage, "this is no slurm.conf\n").expect("written");
    let err = with_conf(&garbage).check().expect_err("an unreadable configuration");
    assert!(err.contains("SLURM_CONF") && err.contains("Parse error"), "{err}");

    // The cluster's configuration, but a controller port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let conf = std::fs::read_to_string(cluster.conf()).expect("slurm.conf");
    let elsewhere = conf.replace(
        &format!("SlurmctldPort={}", cluster.port_base),
        &format!("SlurmctldPort={closed}"),
    );
    assert_ne!(conf, elsewhere);
    let dead = cluster.dir().join("dead.conf");
    std::fs::write(&dead, elsewhere).expect("written");
    let err = with_conf(&dead).check().expect_err("no controller");
    assert!(
        err.contains("does not answer") && err.contains("Unable to contact slurm controller"),
        "{err}"
    );
}
