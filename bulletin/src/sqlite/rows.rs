//! Mapping rows to domain values. A task row is its creation-time JSON overlaid with the
//! columns that change while it runs, so updates never rewrite JSON.

use base64::Engine as _;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tascreed_domain::{ExecutorRef, Job, Params, Task};

use crate::{BulletinError, JobKey, Result};

/// Columns read for a task, in the order [`task_from_row`] expects.
pub(crate) const TASK_COLUMNS: &str = "body, state, executor, executor_sha, picked_times, tried_times, after_ms, \
     node, fuel, wall_ms, peak_memory, start_time, finish_time, modify_time, reason, progress, checkpoint, \
     updated_params, updated_configs, lease_owner";

pub(crate) fn job_from_body(body: &str) -> Result<Job> {
    Job::from_json(body).map_err(|e| BulletinError::corrupt("job", e))
}

/// Reads a task row; `with_checkpoint` adds the base64 checkpoint (API views).
pub(crate) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<(Task, Option<Vec<u8>>)> {
    let body: String = row.get(0)?;
    let mut task: Task =
        serde_json::from_str(&body).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, e.into()))?;
    let state: String = row.get(1)?;
    task.state = serde_json::from_value(serde_json::Value::String(state))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, e.into()))?;
    task.result.state = task.state.is_done().then_some(task.state);
    let executor: Option<String> = row.get(2)?;
    let sha: Option<String> = row.get(3)?;
    task.executor = executor.map(|name| ExecutorRef { name, sha256: sha });
    task.picked_times = row.get::<_, i64>(4)?.try_into().unwrap_or(u32::MAX);
    task.tried_times = row.get::<_, i64>(5)?.try_into().unwrap_or(u32::MAX);
    let after: i64 = row.get(6)?;
    task.after = (after > 0).then_some(after);
    task.node = row.get(7)?;
    task.fuel = row.get::<_, Option<i64>>(8)?.map(|v| v.max(0) as u64);
    task.wall_ms = row.get(9)?;
    task.peak_memory = row.get::<_, Option<i64>>(10)?.map(|v| v.max(0) as u64);
    task.start_time = row.get(11)?;
    task.finish_time = row.get(12)?;
    task.modify_time = row.get(13)?;
    task.result.reason = row.get(14)?;
    task.result.progression = row.get::<_, Option<i64>>(15)?.map(|p| format!("{:.2}%", p as f64));
    let checkpoint: Option<Vec<u8>> = row.get(16)?;
    task.result.checkpoint = checkpoint.as_ref().map(|c| base64::engine::general_purpose::STANDARD.encode(c));
    task.result.checkpoint_size = checkpoint.as_ref().map(|c| c.len() as u64);
    if let Some(p) = row.get::<_, Option<String>>(17)? {
        task.updated_params = serde_json::from_str(&p)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(17, Type::Text, e.into()))?;
    }
    if let Some(c) = row.get::<_, Option<String>>(18)? {
        task.updated_configs = serde_json::from_str(&c)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(18, Type::Text, e.into()))?;
    }
    Ok((task, checkpoint))
}

pub(crate) fn params_json(p: &Params) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn load_alive_job(conn: &Connection, ns: &str, key: &JobKey) -> Result<Option<(Job, i64)>> {
    let row = conn
        .prepare_cached("SELECT body, version FROM jobs WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?
        .query_row(params![ns, key.job_name, key.trigger], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    row.map(|(body, version)| Ok((job_from_body(&body)?, version))).transpose()
}

/// [`load_alive_job`], but `kept` (a job with the version it was written at) is used as it is
/// when that is still the job's version: no body is read or parsed. The flag says it was.
pub(crate) fn load_alive_job_unless(
    conn: &Connection,
    ns: &str,
    key: &JobKey,
    kept: Option<(i64, Job)>,
) -> Result<Option<(Job, i64, bool)>> {
    let read = |conn| Ok(load_alive_job(conn, ns, key)?.map(|(job, version)| (job, version, false)));
    let Some((version, job)) = kept else {
        return read(conn);
    };
    match job_version(conn, ns, key)? {
        Some(v) if v == version => {
            // What the tests run: the kept job must be exactly what its body says.
            #[cfg(debug_assertions)]
            if let Some((stored, _)) = load_alive_job(conn, ns, key)? {
                debug_assert_eq!(stored, job, "a kept job differs from its stored body");
            }
            Ok(Some((job, version, true)))
        }
        Some(_) => read(conn),
        None => Ok(None),
    }
}

/// An alive job's version (bumped by every write of it), `None` if it is not alive.
pub(crate) fn job_version(conn: &Connection, ns: &str, key: &JobKey) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT version FROM jobs WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?
        .query_row(params![ns, key.job_name, key.trigger], |r| r.get(0))
        .optional()?)
}

pub(crate) fn load_archived_job(conn: &Connection, ns: &str, key: &JobKey) -> Result<Option<Job>> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM archive_jobs WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?
        .query_row(params![ns, key.job_name, key.trigger], |r| r.get(0))
        .optional()?;
    body.map(|b| job_from_body(&b)).transpose()
}

/// Tasks of a job matching an extra SQL condition, by task name.
pub(crate) fn job_tasks_where(conn: &Connection, ns: &str, key: &JobKey, condition: &str) -> Result<Vec<Task>> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND ({condition}) \
         ORDER BY task_name"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![ns, key.job_name, key.trigger], |r| task_from_row(r).map(|t| t.0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Bans that stop picking (TASK_PICK and above), as one claim or monitor round sees them.
#[derive(Default)]
pub(crate) struct PickBans {
    pub(crate) global: bool,
    pub(crate) defines: std::collections::HashSet<String>,
    /// `job/trigger`.
    pub(crate) jobs: std::collections::HashSet<String>,
}

impl PickBans {
    /// Whether tasks of this job may not be picked.
    pub(crate) fn stop(&self, job_name: &str, trigger: &str) -> bool {
        self.global || self.defines.contains(job_name) || self.jobs.contains(&format!("{job_name}/{trigger}"))
    }
}

pub(crate) fn pick_bans(conn: &Connection, ns: &str) -> Result<PickBans> {
    let mut bans = PickBans::default();
    let mut stmt = conn.prepare_cached("SELECT scope, target FROM bans WHERE ns = ?1 AND level >= ?2")?;
    let rows = stmt.query_map(params![ns, crate::BanLevel::TaskPick as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (scope, target) = row?;
        match scope.as_str() {
            "global" => bans.global = true,
            "jobDefine" => {
                bans.defines.insert(target);
            }
            _ => {
                bans.jobs.insert(target);
            }
        }
    }
    Ok(bans)
}
