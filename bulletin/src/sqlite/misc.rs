//! Bans, node registrations, uploads, and the [`Bulletin`] implementation.

use rusqlite::{OptionalExtension, params};
use tascreed_domain::{Binding, Job, JobRequest, Task};

use super::SqliteBulletin;
use crate::{
    Advanced, BanLevel, BanScope, Bulletin, ClaimRequest, Claimed, Counts, Finish, JobKey, JobOpFailure, Lease,
    NodeExecutor, Release, Result, StoredJob, Submitted, TaskFilter, TaskKey, TaskList, Upload,
};

fn scope_columns(scope: &BanScope) -> (&'static str, String) {
    match scope {
        BanScope::Global => ("global", String::new()),
        BanScope::JobDefine(name) => ("jobDefine", name.clone()),
        BanScope::Job(key) => ("job", format!("{}/{}", key.job_name, key.trigger)),
    }
}

impl SqliteBulletin {
    fn heartbeat_node_impl(&self, node: &str, executors: &[NodeExecutor]) -> Result<()> {
        self.write(|tx, ns, now| {
            tx.prepare_cached("INSERT OR REPLACE INTO nodes (ns, node, last_seen) VALUES (?1, ?2, ?3)")?
                .execute(params![ns, node, now])?;
            tx.prepare_cached("DELETE FROM node_executors WHERE ns = ?1 AND node = ?2")?.execute(params![ns, node])?;
            for e in executors {
                let bindings = serde_json::to_string(&e.bindings).unwrap_or_else(|_| "[]".into());
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO node_executors (ns, node, name, sha256, bindings) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![ns, node, e.name, e.sha256, bindings])?;
            }
            Ok(())
        })
    }

    fn live_bindings_impl(&self, live_ms: i64) -> Result<Vec<Binding>> {
        self.read(|conn, ns, now| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.name, e.bindings FROM node_executors e JOIN nodes n ON n.ns = e.ns AND n.node = e.node \
                 WHERE e.ns = ?1 AND n.last_seen >= ?2 ORDER BY e.name",
            )?;
            let rows =
                stmt.query_map(params![ns, now - live_ms], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out: Vec<Binding> = Vec::new();
            for row in rows {
                let (executor, json) = row?;
                let pairs: Vec<(String, String)> =
                    serde_json::from_str(&json).map_err(|e| crate::BulletinError::corrupt("executor bindings", e))?;
                for (job_name, step_name) in pairs {
                    let b = Binding { executor: executor.clone(), job_name, step_name };
                    if !out.contains(&b) {
                        out.push(b);
                    }
                }
            }
            Ok(out)
        })
    }

    fn put_upload_impl(&self, name: &str, sha256: &str, bytes: &[u8]) -> Result<()> {
        self.write(|tx, ns, now| {
            tx.prepare_cached("INSERT OR IGNORE INTO blobs (sha256, bytes) VALUES (?1, ?2)")?
                .execute(params![sha256, bytes])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO uploads (ns, name, sha256, size, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![ns, name, sha256, bytes.len() as i64, now])?;
            Ok(())
        })
    }

    fn uploads_impl(&self) -> Result<Vec<Upload>> {
        self.read(|conn, ns, _| {
            let mut stmt =
                conn.prepare_cached("SELECT name, sha256, size, created_ms FROM uploads WHERE ns = ?1 ORDER BY name")?;
            let rows = stmt.query_map(params![ns], |r| {
                Ok(Upload {
                    name: r.get(0)?,
                    sha256: r.get(1)?,
                    size: r.get::<_, i64>(2)?.max(0) as u64,
                    created_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn upload_bytes_impl(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.read(|conn, _, _| {
            Ok(conn
                .prepare_cached("SELECT bytes FROM blobs WHERE sha256 = ?1")?
                .query_row(params![sha256], |r| r.get(0))
                .optional()?)
        })
    }

    fn delete_upload_impl(&self, name: &str) -> Result<bool> {
        self.write(|tx, ns, _| {
            let n = tx.prepare_cached("DELETE FROM uploads WHERE ns = ?1 AND name = ?2")?.execute(params![ns, name])?;
            // Blobs no upload names any more are garbage.
            tx.prepare_cached("DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM uploads)")?.execute([])?;
            Ok(n == 1)
        })
    }

    fn set_ban_impl(&self, scope: &BanScope, level: BanLevel) -> Result<()> {
        let (kind, target) = scope_columns(scope);
        self.write(|tx, ns, _| {
            tx.prepare_cached("INSERT OR REPLACE INTO bans (ns, scope, target, level) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![ns, kind, target, level as i64])?;
            Ok(())
        })
    }

    fn remove_ban_impl(&self, scope: &BanScope) -> Result<()> {
        let (kind, target) = scope_columns(scope);
        self.write(|tx, ns, _| {
            tx.prepare_cached("DELETE FROM bans WHERE ns = ?1 AND scope = ?2 AND target = ?3")?
                .execute(params![ns, kind, target])?;
            Ok(())
        })
    }

    fn bans_impl(&self) -> Result<Vec<(BanScope, BanLevel)>> {
        self.read(|conn, ns, _| {
            let mut stmt =
                conn.prepare_cached("SELECT scope, target, level FROM bans WHERE ns = ?1 ORDER BY scope, target")?;
            let rows = stmt.query_map(params![ns], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (kind, target, level) = row?;
                let scope = match kind.as_str() {
                    "global" => BanScope::Global,
                    "jobDefine" => BanScope::JobDefine(target),
                    _ => {
                        let (job, trigger) = target.split_once('/').unwrap_or((target.as_str(), ""));
                        BanScope::Job(JobKey::new(job, trigger))
                    }
                };
                let level =
                    BanLevel::from_rank(level).ok_or_else(|| crate::BulletinError::corrupt("ban level", level))?;
                out.push((scope, level));
            }
            Ok(out)
        })
    }
}

impl Bulletin for SqliteBulletin {
    fn now_ms(&self) -> Result<i64> {
        self.read(|_, _, now| Ok(now))
    }
    fn submit(&self, job: &Job, unique_alive: bool) -> Result<Submitted> {
        self.submit_impl(job, unique_alive)
    }
    fn job(&self, key: &JobKey) -> Result<Option<StoredJob>> {
        self.job_impl(key)
    }
    fn alive_jobs(&self, job_name: Option<&str>, trigger: Option<&str>) -> Result<Vec<Job>> {
        self.alive_jobs_impl(job_name, trigger)
    }
    fn advance(&self, key: &JobKey, bindings: &[Binding], budget: usize) -> Result<Advanced> {
        self.advance_impl(key, bindings, budget)
    }
    fn jobs_to_advance(&self) -> Result<Vec<JobKey>> {
        self.jobs_to_advance_impl()
    }
    fn delete_alive_job(&self, key: &JobKey, archive: bool) -> Result<Option<Job>> {
        self.delete_alive_job_impl(key, archive)
    }
    fn update_alive_job(&self, request: &JobRequest) -> Result<Result<Job, JobOpFailure>> {
        self.update_alive_job_impl(request)
    }
    fn retry_job(&self, key: &JobKey) -> Result<Result<Job, JobOpFailure>> {
        self.retry_job_impl(key)
    }
    fn purge_archive(&self, before_ms: i64) -> Result<usize> {
        self.purge_archive_impl(before_ms)
    }
    fn job_tasks(&self, key: &JobKey) -> Result<Vec<Task>> {
        self.job_tasks_impl(key)
    }
    fn task(&self, key: &TaskKey) -> Result<Option<Task>> {
        self.task_impl(key)
    }
    fn tasks(&self, list: TaskList, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.tasks_impl(list, filter)
    }
    fn adoptions(&self, filter: Option<&str>) -> Result<Vec<(String, String)>> {
        self.adoptions_impl(filter)
    }
    fn delete_todo_task(&self, key: &TaskKey) -> Result<Option<Task>> {
        self.delete_todo_task_impl(key)
    }
    fn release_adoption(&self, key: &TaskKey) -> Result<Option<String>> {
        self.release_adoption_impl(key)
    }
    fn claim_batch(&self, request: &ClaimRequest, max: usize) -> Result<Vec<Claimed>> {
        self.claim_impl(request, max)
    }
    fn renew(&self, lease: &Lease, lease_ms: i64) -> Result<bool> {
        self.renew_impl(lease, lease_ms)
    }
    fn save_checkpoint(&self, lease: &Lease, checkpoint: &[u8], progress: Option<u8>, lease_ms: i64) -> Result<bool> {
        self.save_checkpoint_impl(lease, checkpoint, progress, lease_ms)
    }
    fn record_attempt(&self, lease: &Lease, tried_times: u32, reason: &str) -> Result<bool> {
        self.record_attempt_impl(lease, tried_times, reason)
    }
    fn release(&self, lease: &Lease, release: &Release) -> Result<bool> {
        self.release_impl(lease, release)
    }
    fn finish_batch(&self, finishes: &[(Lease, Finish)]) -> Result<Vec<bool>> {
        self.finish_impl(finishes)
    }
    fn unclaim(&self, lease: &Lease) -> Result<bool> {
        self.unclaim_impl(lease)
    }
    fn release_node(&self, node: &str) -> Result<usize> {
        self.release_node_impl(node)
    }
    fn expire_leases(&self) -> Result<usize> {
        self.expire_leases_impl()
    }
    fn resolve_waiting(&self, bindings: &[Binding]) -> Result<usize> {
        self.resolve_waiting_impl(bindings)
    }
    fn counts(&self) -> Result<Counts> {
        self.counts_impl()
    }
    fn monitor(&self, now_ms: i64, live_ms: i64, local: &[String], limit: usize) -> Result<crate::MonitorSnapshot> {
        self.monitor_impl(now_ms, live_ms, local, limit)
    }
    fn heartbeat_node(&self, node: &str, executors: &[NodeExecutor]) -> Result<()> {
        self.heartbeat_node_impl(node, executors)
    }
    fn live_bindings(&self, live_ms: i64) -> Result<Vec<Binding>> {
        self.live_bindings_impl(live_ms)
    }
    fn put_upload(&self, name: &str, sha256: &str, bytes: &[u8]) -> Result<()> {
        self.put_upload_impl(name, sha256, bytes)
    }
    fn uploads(&self) -> Result<Vec<Upload>> {
        self.uploads_impl()
    }
    fn upload_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.upload_bytes_impl(sha256)
    }
    fn delete_upload(&self, name: &str) -> Result<bool> {
        self.delete_upload_impl(name)
    }
    fn set_ban(&self, scope: &BanScope, level: BanLevel) -> Result<()> {
        self.set_ban_impl(scope, level)
    }
    fn remove_ban(&self, scope: &BanScope) -> Result<()> {
        self.remove_ban_impl(scope)
    }
    fn bans(&self) -> Result<Vec<(BanScope, BanLevel)>> {
        self.bans_impl()
    }
}
