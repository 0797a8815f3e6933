//! Jobs: submit, advance (fold + create + archive), admin operations.

use rusqlite::{Connection, OptionalExtension, params};
use tascreed_domain::{Binding, FinishedTask, Job, JobRequest, StepType, Task, resolve_executor};

use super::SqliteBulletin;
use super::rows::{self, job_from_body, load_alive_job, load_archived_job};
use crate::{Advanced, BanLevel, BulletinError, FoldedTask, JobKey, JobOpFailure, Result, StoredJob, Submitted};

fn type_order(t: StepType) -> i64 {
    match t {
        StepType::Simple => 0,
        StepType::Shard => 1,
        StepType::Pack => 2,
    }
}

pub(super) fn insert_job(tx: &Connection, ns: &str, job: &Job, unique_alive: bool, wake_at: Option<i64>) -> Result<()> {
    let body = job_body(job)?;
    tx.prepare_cached(
        "INSERT INTO jobs (ns, job_name, trig, state, unique_alive, version, wake_at, create_time, modify_time, body, \
         duration) VALUES (?1, ?2, ?3, ?4, ?5, ?11, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        ns,
        job.job_name,
        job.trigger,
        job.state.as_str(),
        unique_alive.then_some(1),
        wake_at,
        job.create_time,
        job.modify_time,
        body,
        job.duration,
        first_version()
    ])?;
    Ok(())
}

/// A job's first version: random, not 1. An advance checks the version it read before it
/// writes; if the job were deleted and submitted again meanwhile, a new job starting at 1
/// could carry the very version the stale advance expects and be overwritten by it.
fn first_version() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    // std's RandomState is randomly keyed per process and per instance: enough to make a
    // collision with a stale snapshot's version as unlikely as guessing a 62-bit number.
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    i64::try_from(bits >> 2).unwrap_or(1)
}

/// The stored body of a job; one that cannot be serialized is refused, never stored empty.
fn job_body(job: &Job) -> Result<String> {
    job.to_json()
        .map_err(|e| BulletinError::Invalid(format!("job {}/{} not serializable: {e}", job.job_name, job.trigger)))
}

fn save_job(tx: &Connection, ns: &str, job: &Job, version: i64, wake_at: Option<i64>) -> Result<bool> {
    save_job_body(tx, ns, job, &job_body(job)?, version, wake_at)
}

/// [`save_job`] with the body serialized beforehand (outside the write lock).
fn save_job_body(tx: &Connection, ns: &str, job: &Job, body: &str, version: i64, wake_at: Option<i64>) -> Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE jobs SET state = ?4, version = version + 1, wake_at = ?5, modify_time = ?6, body = ?7 \
             WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND version = ?8",
        )?
        .execute(params![ns, job.job_name, job.trigger, job.state.as_str(), wake_at, job.modify_time, body, version])?;
    Ok(n == 1)
}

fn archive_job(tx: &Connection, ns: &str, job: &Job, now: i64) -> Result<()> {
    archive_job_body(tx, ns, job, &job_body(job)?, now)
}

fn archive_job_body(tx: &Connection, ns: &str, job: &Job, body: &str, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO archive_jobs (ns, job_name, trig, state, archived_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![ns, job.job_name, job.trigger, job.state.as_str(), now, body])?;
    tx.prepare_cached("DELETE FROM jobs WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?.execute(params![
        ns,
        job.job_name,
        job.trigger
    ])?;
    Ok(())
}

fn insert_task(tx: &Connection, ns: &str, task: &Task, executor: Option<&str>) -> Result<()> {
    let body = serde_json::to_string(task).map_err(|e| crate::BulletinError::Invalid(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO tasks (ns, job_name, trig, task_name, step_name, type_order, position, priority, state, folded, \
         executor, modify_time, body, create_time, duration) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'UNDONE', 1, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        ns,
        task.job_name,
        task.trigger,
        task.task_name,
        task.step_name,
        type_order(task.step_type),
        task.index(),
        task.priority.unwrap_or(0),
        executor,
        task.modify_time,
        body,
        task.create_time,
        task.duration
    ])?;
    Ok(())
}

/// The highest ban level covering a job, if any.
pub(super) fn ban_level(tx: &rusqlite::Connection, ns: &str, key: &JobKey) -> Result<Option<BanLevel>> {
    let target = format!("{}/{}", key.job_name, key.trigger);
    let rank: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(level) FROM bans WHERE ns = ?1 AND ((scope = 'global') OR (scope = 'jobDefine' AND target = ?2) \
             OR (scope = 'job' AND target = ?3))",
        )?
        .query_row(params![ns, key.job_name, target], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(rank.and_then(BanLevel::from_rank))
}

/// Applies finished tasks to the job (no I/O); true if the job changed.
fn apply_finished(job: &mut Job, finished: &[Task], now: i64, out: &mut Advanced) -> bool {
    if finished.is_empty() {
        return false;
    }
    let list: Vec<FinishedTask> = finished.iter().map(FinishedTask::from).collect();
    let report = job.fold(&list, now);
    out.folded = finished.len();
    out.folded_tasks = finished
        .iter()
        .map(|t| FoldedTask {
            step_name: t.step_name.clone(),
            state: t.state,
            create_ms: t.create_time,
            finish_ms: t.finish_time,
        })
        .collect();
    out.warnings.extend(report.warnings);
    report.changed
}

/// Marks exactly these finished tasks folded (others may have finished since they were read).
fn mark_folded(tx: &Connection, ns: &str, finished: &[Task]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE tasks SET folded = 1 WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4 AND folded = 0",
    )?;
    for t in finished {
        stmt.execute(params![ns, t.job_name, t.trigger, t.task_name])?;
    }
    Ok(())
}

/// Folds the job's unfolded finished tasks into it and marks them folded, inside `tx`.
fn fold_finished(tx: &Connection, ns: &str, job: &mut Job, now: i64, out: &mut Advanced) -> Result<bool> {
    let finished = rows::job_tasks_where(tx, ns, &JobKey::of(job), "folded = 0")?;
    let changed = apply_finished(job, &finished, now, out);
    mark_folded(tx, ns, &finished)?;
    Ok(changed)
}

/// What an advance reads before it computes.
struct Snapshot {
    job: Job,
    version: i64,
    finished: Vec<Task>,
    create_banned: bool,
    now: i64,
}

impl SqliteBulletin {
    pub(super) fn submit_impl(&self, job: &Job, unique_alive: bool) -> Result<Submitted> {
        let key = JobKey::of(job);
        self.write(|tx, ns, _now| {
            if let Some((existing, _)) = load_alive_job(tx, ns, &key)? {
                return Ok(Submitted::Existing(StoredJob { job: existing, archived: false }));
            }
            if let Some(existing) = load_archived_job(tx, ns, &key)? {
                return Ok(Submitted::Existing(StoredJob { job: existing, archived: true }));
            }
            if unique_alive {
                let alive: Option<String> = tx
                    .prepare_cached("SELECT trig FROM jobs WHERE ns = ?1 AND job_name = ?2 AND unique_alive = 1")?
                    .query_row(params![ns, key.job_name], |r| r.get(0))
                    .optional()?;
                if let Some(trigger) = alive {
                    return Ok(Submitted::UniqueAliveTaken(JobKey::new(key.job_name.clone(), trigger)));
                }
            }
            insert_job(tx, ns, job, unique_alive, job.next_wake_ms(job.create_time))?;
            Ok(Submitted::Created(job.clone()))
        })
    }

    pub(super) fn job_impl(&self, key: &JobKey) -> Result<Option<StoredJob>> {
        self.read(|conn, ns, _| {
            if let Some((job, _)) = load_alive_job(conn, ns, key)? {
                return Ok(Some(StoredJob { job, archived: false }));
            }
            Ok(load_archived_job(conn, ns, key)?.map(|job| StoredJob { job, archived: true }))
        })
    }

    pub(super) fn alive_jobs_impl(&self, job_name: Option<&str>, trigger: Option<&str>) -> Result<Vec<Job>> {
        self.read(|conn, ns, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM jobs WHERE ns = ?1 AND (?2 IS NULL OR job_name = ?2) AND (?3 IS NULL OR trig = ?3) \
                 ORDER BY job_name, trig",
            )?;
            let bodies = stmt.query_map(params![ns, job_name, trigger], |r| r.get::<_, String>(0))?;
            bodies.map(|b| job_from_body(&b?)).collect()
        })
    }

    /// Three phases, so the write lock is held only to write: read a snapshot (job, its
    /// unfolded finished tasks, its bans) on the reader connection; fold, create and serialize
    /// with no lock held (a job of a large step carries a large task-state map, and this is the
    /// costly part); then write in one short transaction that first checks the job's version.
    /// A job that changed meanwhile (another node's advance, an admin call) is read again.
    pub(super) fn advance_impl(&self, key: &JobKey, bindings: &[Binding], budget: usize) -> Result<Advanced> {
        for _ in 0..8 {
            let kept = self.take_advanced(key);
            // One read transaction, so the job, its finished tasks and its bans are one snapshot.
            let snapshot = self.read(|conn, ns, now| {
                super::in_transaction(conn, "BEGIN", |tx| {
                    let Some((job, version, kept)) = rows::load_alive_job_unless(tx, ns, key, kept)? else {
                        return Ok(None);
                    };
                    if kept {
                        self.kept_hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let finished = rows::job_tasks_where(tx, ns, key, "folded = 0")?;
                    let create_banned = ban_level(tx, ns, key)?.is_some_and(|l| l >= BanLevel::TaskCreate);
                    Ok(Some(Snapshot { job, version, finished, create_banned, now }))
                })
            })?;
            let Some(Snapshot { mut job, version, finished, create_banned, now }) = snapshot else {
                return Ok(Advanced::default());
            };
            let mut out = Advanced { found: true, ..Advanced::default() };
            let mut changed = apply_finished(&mut job, &finished, now, &mut out);
            let creation = if create_banned { None } else { Some(job.create_tasks(now, budget)) };
            let mut new_tasks: Vec<(&Task, Option<&str>)> = Vec::new();
            if let Some(creation) = &creation {
                changed |= creation.changed;
                for task in &creation.tasks {
                    let explicit = task.executor.as_ref().map(|e| e.name.as_str());
                    new_tasks.push((task, resolve_executor(explicit, &task.job_name, &task.step_name, bindings)));
                    match out.created_by_step.iter_mut().find(|(s, _)| *s == task.step_name) {
                        Some((_, n)) => *n += 1,
                        None => out.created_by_step.push((task.step_name.clone(), 1)),
                    }
                }
                out.created = creation.tasks.len();
                out.more = creation.tasks.len() >= budget && budget > 0;
            }
            out.wake_at_ms = job.next_wake_ms(now);
            out.state = Some(job.state);
            out.job_times = Some((job.create_time, job.modify_time));
            let archive = job.state.can_auto_archive();
            if !changed && !archive && finished.is_empty() && new_tasks.is_empty() {
                self.keep_advanced(key, version, job);
                return Ok(out);
            }
            let body = job_body(&job)?;
            let committed = self.write(|tx, ns, now| {
                if rows::job_version(tx, ns, key)? != Some(version) {
                    return Ok(false);
                }
                mark_folded(tx, ns, &finished)?;
                for (task, executor) in &new_tasks {
                    insert_task(tx, ns, task, *executor)?;
                }
                if archive {
                    archive_job_body(tx, ns, &job, &body, now)?;
                } else if changed {
                    save_job_body(tx, ns, &job, &body, version, out.wake_at_ms)?;
                }
                Ok(true)
            })?;
            if committed {
                out.archived = archive;
                if !archive {
                    self.keep_advanced(key, if changed { version + 1 } else { version }, job);
                }
                return Ok(out);
            }
        }
        Err(crate::BulletinError::Invalid(format!("job {key} kept changing during advance; try again")))
    }

    fn take_advanced(&self, key: &JobKey) -> Option<(i64, Job)> {
        self.advanced.lock().unwrap_or_else(|e| e.into_inner()).remove(key)
    }

    fn keep_advanced(&self, key: &JobKey, version: i64, job: Job) {
        let mut kept = self.advanced.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= super::ADVANCED_JOBS_KEPT {
            kept.clear();
        }
        kept.insert(key.clone(), (version, job));
    }

    pub(super) fn jobs_to_advance_impl(&self) -> Result<Vec<JobKey>> {
        self.read(|conn, ns, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT job_name, trig FROM jobs WHERE ns = ?1 AND state = 'UNDONE' \
                 UNION SELECT DISTINCT job_name, trig FROM tasks WHERE ns = ?1 AND folded = 0",
            )?;
            let rows =
                stmt.query_map(params![ns], |r| Ok(JobKey::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub(super) fn delete_alive_job_impl(&self, key: &JobKey, archive: bool) -> Result<Option<Job>> {
        self.write(|tx, ns, now| {
            let Some((mut job, _)) = load_alive_job(tx, ns, key)? else {
                return Ok(None);
            };
            let deleted = job.clone();
            if archive {
                job.mark_deleted(now);
                archive_job(tx, ns, &job, now)?;
                // Finished tasks stay queryable with the archived job; unfinished ones never ran
                // to an end and must not be claimed again.
                tx.prepare_cached(
                    "DELETE FROM tasks WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND state = 'UNDONE'",
                )?
                .execute(params![ns, key.job_name, key.trigger])?;
                tx.prepare_cached("UPDATE tasks SET folded = 1 WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?
                    .execute(params![ns, key.job_name, key.trigger])?;
            } else {
                tx.prepare_cached("DELETE FROM jobs WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?
                    .execute(params![ns, key.job_name, key.trigger])?;
                tx.prepare_cached("DELETE FROM tasks WHERE ns = ?1 AND job_name = ?2 AND trig = ?3")?
                    .execute(params![ns, key.job_name, key.trigger])?;
            }
            Ok(Some(deleted))
        })
    }

    pub(super) fn update_alive_job_impl(&self, request: &JobRequest) -> Result<Result<Job, JobOpFailure>> {
        let key =
            JobKey::new(request.job_name.clone().unwrap_or_default(), request.trigger.clone().unwrap_or_default());
        self.write(|tx, ns, now| {
            let Some((mut job, version)) = load_alive_job(tx, ns, &key)? else {
                return Ok(Err(JobOpFailure::NotFound(key.clone())));
            };
            if let Err(e) = job.apply_update(request, now) {
                return Ok(Err(e.into()));
            }
            save_job(tx, ns, &job, version, job.next_wake_ms(now))?;
            Ok(Ok(job))
        })
    }

    pub(super) fn retry_job_impl(&self, key: &JobKey) -> Result<Result<Job, JobOpFailure>> {
        self.write(|tx, ns, now| {
            let Some((mut job, version)) = load_alive_job(tx, ns, key)? else {
                return Ok(Err(JobOpFailure::NotFound(key.clone())));
            };
            let mut scratch = Advanced::default();
            fold_finished(tx, ns, &mut job, now, &mut scratch)?;
            let mut error_tasks = rows::job_tasks_where(tx, ns, key, "state = 'ERROR'")?;
            if let Err(e) = job.retry(&mut error_tasks, now) {
                // Keep what the fold did; only the retry itself is refused.
                save_job(tx, ns, &job, version, job.next_wake_ms(now))?;
                return Ok(Err(e.into()));
            }
            for task in &error_tasks {
                tx.prepare_cached(
                    "UPDATE tasks SET state = 'UNDONE', folded = 1, picked_times = 0, tried_times = 0, after_ms = 0, \
                     reason = NULL, progress = NULL, finish_time = NULL, lease_owner = NULL, lease_expiry = NULL, \
                     modify_time = ?5 WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4",
                )?
                .execute(params![ns, key.job_name, key.trigger, task.task_name, now])?;
            }
            save_job(tx, ns, &job, version, job.next_wake_ms(now))?;
            Ok(Ok(job))
        })
    }

    pub(super) fn purge_archive_impl(&self, before_ms: i64) -> Result<usize> {
        self.write(|tx, ns, _| {
            // Driven by the archive's age index; each expired job's tasks are then found by their
            // primary-key prefix, so the cost follows what is purged, not the size of `tasks`.
            tx.prepare_cached(
                "DELETE FROM tasks WHERE (ns, job_name, trig) IN \
                 (SELECT ns, job_name, trig FROM archive_jobs WHERE ns = ?1 AND archived_at < ?2)",
            )?
            .execute(params![ns, before_ms])?;
            Ok(tx
                .prepare_cached("DELETE FROM archive_jobs WHERE ns = ?1 AND archived_at < ?2")?
                .execute(params![ns, before_ms])?)
        })
    }
}
