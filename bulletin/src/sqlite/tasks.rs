//! Tasks: claiming under a lease, fenced writes by the lease holder, and the state lists.

use rusqlite::{OptionalExtension, params, params_from_iter, types::Value};
use tascreed_domain::{Binding, JobState, Task};

use super::SqliteBulletin;
use super::rows::{self, TASK_COLUMNS, params_json, task_from_row};
use crate::{ClaimRequest, Claimed, Counts, Finish, JobKey, Lease, Release, Result, TaskFilter, TaskKey, TaskList};

/// `WHERE` clause of a fenced write: the row is the lease holder's only while owner and epoch
/// still match.
const FENCE: &str =
    "ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4 AND lease_owner = ?5 AND lease_epoch = ?6";

fn fence_params(ns: &str, lease: &Lease) -> Vec<Value> {
    vec![
        Value::Text(ns.to_string()),
        Value::Text(lease.task.job.job_name.clone()),
        Value::Text(lease.task.job.trigger.clone()),
        Value::Text(lease.task.task_name.clone()),
        Value::Text(lease.owner.clone()),
        Value::Integer(lease.epoch),
    ]
}

impl SqliteBulletin {
    pub(super) fn claim_impl(&self, req: &ClaimRequest, max: usize) -> Result<Vec<Claimed>> {
        if req.executors.is_empty() || max == 0 {
            return Ok(Vec::new());
        }
        self.write(|tx, ns, now| {
            let leased: i64 =
                tx.prepare_cached("SELECT COUNT(*) FROM tasks WHERE ns = ?1 AND lease_owner IS NOT NULL")?.query_row(
                    params![ns],
                    |r| r.get(0),
                )?;
            let room = usize::try_from(req.max_overall.saturating_sub(leased)).unwrap_or(0).min(max);
            if room == 0 {
                return Ok(Vec::new());
            }
            let bans = rows::pick_bans(tx, ns)?;
            if bans.global {
                return Ok(Vec::new());
            }
            // Steps in pick order (spec §10.3): priority, then empty rate (the share of the
            // step's todo tasks nobody holds), then names; then each step's tasks by position.
            let steps: Vec<(String, String, String)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT job_name, trig, step_name FROM step_load WHERE ns = ?1 AND todo > adopted \
                     ORDER BY priority DESC, (todo - adopted) * 1000 / todo DESC, job_name, trig, type_order, step_name",
                )?;
                let rows = stmt.query_map(params![ns], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut picked: Vec<(String, String, String)> = Vec::new();
            for (job_name, trigger, step_name) in steps {
                if picked.len() >= room {
                    break;
                }
                if bans.stop(&job_name, &trigger) {
                    continue;
                }
                let mut args: Vec<Value> = vec![
                    Value::Text(ns.to_string()),
                    Value::Text(job_name.clone()),
                    Value::Text(trigger.clone()),
                    Value::Text(step_name),
                    Value::Integer(now),
                    Value::Integer(i64::try_from(room - picked.len()).unwrap_or(1)),
                ];
                let sql = format!(
                    "SELECT task_name FROM tasks WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND step_name = ?4 \
                     AND state = 'UNDONE' AND lease_owner IS NULL AND after_ms <= ?5 AND executor IN ({}) \
                     ORDER BY position LIMIT ?6",
                    placeholders(&mut args, &req.executors)
                );
                let mut stmt = tx.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(0))?;
                for task in rows {
                    picked.push((job_name.clone(), trigger.clone(), task?));
                }
            }
            let owner = format!("{}/{}", req.node, req.worker);
            let mut claimed = Vec::with_capacity(picked.len());
            for (job_name, trigger, task_name) in picked {
                let epoch: i64 = tx
                    .prepare_cached(
                        "UPDATE tasks SET lease_owner = ?5, lease_expiry = ?6, lease_epoch = lease_epoch + 1, node = ?7, \
                         start_time = ?8, modify_time = ?8 \
                         WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4 RETURNING lease_epoch",
                    )?
                    .query_row(
                        params![ns, job_name, trigger, task_name, owner, now + req.lease_ms, req.node, now],
                        |r| r.get(0),
                    )?;
                let key = TaskKey::new(job_name, trigger, task_name);
                let (task, checkpoint) = read_task(tx, ns, &key)?
                    .ok_or_else(|| crate::BulletinError::Invalid(format!("claimed task {key} vanished")))?;
                claimed.push(Claimed { task, checkpoint, lease: Lease { task: key, owner: owner.clone(), epoch } });
            }
            Ok(claimed)
        })
    }

    fn fenced_update(&self, lease: &Lease, set: &str, extra: Vec<Value>) -> Result<bool> {
        self.write(|tx, ns, now| {
            let mut args = fence_params(ns, lease);
            args.push(Value::Integer(now));
            args.extend(extra);
            let sql = format!("UPDATE tasks SET modify_time = ?7, {set} WHERE {FENCE}");
            Ok(tx.prepare_cached(&sql)?.execute(params_from_iter(args))? == 1)
        })
    }

    pub(super) fn renew_impl(&self, lease: &Lease, lease_ms: i64) -> Result<bool> {
        self.fenced_update(lease, "lease_expiry = ?7 + ?8", vec![Value::Integer(lease_ms)])
    }

    pub(super) fn save_checkpoint_impl(
        &self,
        lease: &Lease,
        checkpoint: &[u8],
        progress: Option<u8>,
        lease_ms: i64,
    ) -> Result<bool> {
        self.fenced_update(
            lease,
            "checkpoint = ?8, progress = COALESCE(?9, progress), lease_expiry = ?7 + ?10",
            vec![
                Value::Blob(checkpoint.to_vec()),
                progress.map_or(Value::Null, |p| Value::Integer(p.into())),
                Value::Integer(lease_ms),
            ],
        )
    }

    pub(super) fn record_attempt_impl(&self, lease: &Lease, tried_times: u32, reason: &str) -> Result<bool> {
        self.fenced_update(
            lease,
            "tried_times = ?8, reason = ?9",
            vec![Value::Integer(tried_times.into()), Value::Text(reason.to_string())],
        )
    }

    pub(super) fn release_impl(&self, lease: &Lease, r: &Release) -> Result<bool> {
        self.fenced_update(
            lease,
            "picked_times = ?8, tried_times = ?9, after_ms = ?10, reason = ?11, lease_owner = NULL, lease_expiry = NULL",
            vec![
                Value::Integer(r.picked_times.into()),
                Value::Integer(r.tried_times.into()),
                Value::Integer(r.after_ms.unwrap_or(0)),
                r.reason.clone().map_or(Value::Null, Value::Text),
            ],
        )
    }

    pub(super) fn unclaim_impl(&self, lease: &Lease) -> Result<bool> {
        self.fenced_update(lease, "lease_owner = NULL, lease_expiry = NULL", vec![])
    }

    pub(super) fn finish_impl(&self, finishes: &[(Lease, Finish)]) -> Result<Vec<bool>> {
        if finishes.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx, ns, now| {
            let sql = format!(
                "UPDATE tasks SET modify_time = ?7, state = ?8, reason = ?9, updated_params = ?10, updated_configs = ?11, \
                 picked_times = ?12, tried_times = ?13, folded = 0, lease_owner = NULL, lease_expiry = NULL, \
                 executor_sha = ?14, fuel = ?15, wall_ms = ?16, peak_memory = ?17, start_time = ?18, finish_time = ?7, \
                 progress = COALESCE(?19, progress), checkpoint = COALESCE(?20, checkpoint) WHERE {FENCE}"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut out = Vec::with_capacity(finishes.len());
            for (lease, f) in finishes {
                let configs: std::collections::BTreeMap<&str, &tascreed_domain::UpdatedConfig> =
                    f.updated_configs.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let configs = serde_json::to_string(&configs).unwrap_or_else(|_| "{}".into());
                let mut args = fence_params(ns, lease);
                args.extend([
                    Value::Integer(now),
                    Value::Text(f.state.as_str().to_string()),
                    f.reason.clone().map_or(Value::Null, Value::Text),
                    Value::Text(params_json(&f.updated_params)),
                    Value::Text(configs),
                    Value::Integer(f.picked_times.into()),
                    Value::Integer(f.tried_times.into()),
                    f.run.executor_sha256.clone().map_or(Value::Null, Value::Text),
                    Value::Integer(i64::try_from(f.run.fuel).unwrap_or(i64::MAX)),
                    Value::Integer(f.run.wall_ms),
                    Value::Integer(i64::try_from(f.run.peak_memory).unwrap_or(i64::MAX)),
                    Value::Integer(f.run.start_ms),
                    f.run.progress.map_or(Value::Null, |p| Value::Integer(p.into())),
                    f.checkpoint.clone().map_or(Value::Null, Value::Blob),
                ]);
                out.push(stmt.execute(params_from_iter(args))? == 1);
            }
            Ok(out)
        })
    }

    pub(super) fn expire_leases_impl(&self) -> Result<usize> {
        self.write(|tx, ns, now| {
            Ok(tx
                .prepare_cached(
                    "UPDATE tasks SET lease_owner = NULL, lease_expiry = NULL \
                     WHERE ns = ?1 AND lease_owner IS NOT NULL AND lease_expiry < ?2",
                )?
                .execute(params![ns, now])?)
        })
    }

    pub(super) fn resolve_waiting_impl(&self, bindings: &[Binding]) -> Result<usize> {
        self.write(|tx, ns, _| {
            let mut n = 0;
            // Later bindings win (as in resolution at creation): apply them first.
            for b in bindings.iter().rev() {
                n += tx
                    .prepare_cached(
                        "UPDATE tasks SET executor = ?4 WHERE ns = ?1 AND executor IS NULL AND state = 'UNDONE' \
                         AND job_name = ?2 AND step_name = ?3",
                    )?
                    .execute(params![ns, b.job_name, b.step_name, b.executor])?;
            }
            Ok(n)
        })
    }

    pub(super) fn job_tasks_impl(&self, key: &JobKey) -> Result<Vec<Task>> {
        self.read(|conn, ns, _| rows::job_tasks_where(conn, ns, key, "1 = 1"))
    }

    pub(super) fn task_impl(&self, key: &TaskKey) -> Result<Option<Task>> {
        self.read(|conn, ns, _| Ok(read_task(conn, ns, key)?.map(|t| t.0)))
    }

    pub(super) fn tasks_impl(&self, list: TaskList, filter: &TaskFilter) -> Result<Vec<Task>> {
        let condition = match list {
            TaskList::Todo => "t.state = 'UNDONE'",
            TaskList::Done => "t.folded = 0",
            TaskList::Error => {
                "t.state = 'ERROR' AND EXISTS (SELECT 1 FROM jobs j WHERE j.ns = t.ns AND j.job_name = t.job_name \
                 AND j.trig = t.trig)"
            }
        };
        self.read(|conn, ns, _| {
            let columns = TASK_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT {columns} FROM tasks t WHERE t.ns = ?1 AND {condition} AND (?2 IS NULL OR t.job_name = ?2) \
                 AND (?3 IS NULL OR t.trig = ?3) AND (?4 IS NULL OR t.step_name = ?4) \
                 ORDER BY t.job_name, t.trig, t.task_name"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![ns, filter.job_name, filter.trigger, filter.step_name], |r| {
                task_from_row(r).map(|t| t.0)
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub(super) fn adoptions_impl(&self, filter: Option<&str>) -> Result<Vec<(String, String)>> {
        self.read(|conn, ns, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT job_name || '/' || trig || '/' || task_name, lease_owner FROM tasks \
                 WHERE ns = ?1 AND lease_owner IS NOT NULL ORDER BY 1",
            )?;
            let rows = stmt.query_map(params![ns], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let all = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(all.into_iter().filter(|(k, _)| filter.is_none_or(|f| k.contains(f))).collect())
        })
    }

    pub(super) fn delete_todo_task_impl(&self, key: &TaskKey) -> Result<Option<Task>> {
        self.write(|tx, ns, now| {
            let Some((task, _)) = read_task(tx, ns, key)? else {
                return Ok(None);
            };
            if task.state.is_done() {
                return Ok(None);
            }
            // D14: the step must still be able to finish, so the task ends ERROR (retryable).
            tx.prepare_cached(
                "UPDATE tasks SET state = 'ERROR', reason = 'deleted by request', folded = 0, lease_owner = NULL, \
                 lease_expiry = NULL, finish_time = ?5, modify_time = ?5 \
                 WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4",
            )?
            .execute(params![ns, key.job.job_name, key.job.trigger, key.task_name, now])?;
            Ok(Some(task))
        })
    }

    pub(super) fn release_node_impl(&self, node: &str) -> Result<usize> {
        self.write(|tx, ns, _| {
            // Owners read `node/worker`; a prefix match would also catch `node2/…`, so compare
            // the node part exactly.
            Ok(tx
                .prepare_cached(
                    "UPDATE tasks SET lease_owner = NULL, lease_expiry = NULL WHERE ns = ?1 AND lease_owner IS NOT NULL \
                     AND substr(lease_owner, 1, length(?2) + 1) = ?2 || '/'",
                )?
                .execute(params![ns, node])?)
        })
    }

    pub(super) fn release_adoption_impl(&self, key: &TaskKey) -> Result<Option<String>> {
        self.write(|tx, ns, _| {
            let owner: Option<String> = tx
                .prepare_cached(
                    "SELECT lease_owner FROM tasks WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4",
                )?
                .query_row(params![ns, key.job.job_name, key.job.trigger, key.task_name], |r| r.get(0))
                .optional()?
                .flatten();
            if owner.is_some() {
                // Clearing the owner is enough to fence the holder out: every write of its lease
                // checks owner and epoch, and the next claim moves the epoch on.
                tx.prepare_cached(
                    "UPDATE tasks SET lease_owner = NULL, lease_expiry = NULL \
                     WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4",
                )?
                .execute(params![ns, key.job.job_name, key.job.trigger, key.task_name])?;
            }
            Ok(owner)
        })
    }

    pub(super) fn counts_impl(&self) -> Result<Counts> {
        self.read(|conn, ns, _| {
            let mut counts = Counts::default();
            let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM jobs WHERE ns = ?1 GROUP BY state")?;
            let rows = stmt.query_map(params![ns], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                let state: JobState = serde_json::from_value(serde_json::Value::String(state.clone()))
                    .map_err(|e| crate::BulletinError::corrupt("job state", format!("{state}: {e}")))?;
                counts.alive_jobs.push((state, n.max(0) as u64));
            }
            let one = |sql: &str| -> Result<u64> {
                Ok(conn.prepare_cached(sql)?.query_row(params![ns], |r| r.get::<_, i64>(0))?.max(0) as u64)
            };
            counts.todo_tasks = one("SELECT COUNT(*) FROM tasks WHERE ns = ?1 AND state = 'UNDONE'")?;
            counts.leased_tasks = one("SELECT COUNT(*) FROM tasks WHERE ns = ?1 AND lease_owner IS NOT NULL")?;
            counts.done_tasks = one("SELECT COUNT(*) FROM tasks WHERE ns = ?1 AND folded = 0")?;
            counts.error_tasks = one(
                "SELECT COUNT(*) FROM tasks t WHERE t.ns = ?1 AND t.state = 'ERROR' AND EXISTS (SELECT 1 FROM jobs j \
                 WHERE j.ns = t.ns AND j.job_name = t.job_name AND j.trig = t.trig)",
            )?;
            counts.unresolved =
                one("SELECT COUNT(*) FROM tasks WHERE ns = ?1 AND executor IS NULL AND state = 'UNDONE'")?;
            Ok(counts)
        })
    }
}

fn placeholders(args: &mut Vec<Value>, values: &[String]) -> String {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        args.push(Value::Text(v.clone()));
        out.push(format!("?{}", args.len()));
    }
    out.join(", ")
}

fn read_task(conn: &rusqlite::Connection, ns: &str, key: &TaskKey) -> Result<Option<(Task, Option<Vec<u8>>)>> {
    let sql =
        format!("SELECT {TASK_COLUMNS} FROM tasks WHERE ns = ?1 AND job_name = ?2 AND trig = ?3 AND task_name = ?4");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![ns, key.job.job_name, key.job.trigger, key.task_name], task_from_row)
        .optional()?)
}
