//! The monitor's read: one snapshot per round, from indexed columns only (no body is parsed).

use std::collections::HashSet;

use rusqlite::params;

use super::{SqliteBulletin, rows};
use crate::{JobKey, MonitorSnapshot, Result, StepRetries, TaskKey};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteBulletin {
    pub(super) fn monitor_impl(
        &self,
        now: i64,
        live_ms: i64,
        local: &[String],
        limit: usize,
    ) -> Result<MonitorSnapshot> {
        let counts = self.counts_impl()?;
        self.read(|conn, ns, db_now| {
            let mut snap = MonitorSnapshot { counts, ..MonitorSnapshot::default() };
            // Slow jobs (§12): every job in the bulletin — UNDONE, STUCK or ERROR; SUCCESS and
            // FAILED ones are archived in the transaction that finishes them — with a duration
            // it has outlived. The API's `slow` applies the same rule.
            let mut stmt = conn.prepare_cached(
                "SELECT job_name, trig FROM jobs WHERE ns = ?1 AND duration IS NOT NULL AND ?2 - create_time > duration \
                 ORDER BY job_name, trig",
            )?;
            let rows = stmt.query_map(params![ns, now], |r| Ok(JobKey::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            snap.slow_jobs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            // Slow tasks: todo ones (leased or not), queueing time included (tasks_slow index).
            let slow = "ns = ?1 AND state = 'UNDONE' AND duration IS NOT NULL AND ?2 - create_time > duration";
            snap.slow_task_count = count(
                conn.prepare_cached(&format!("SELECT COUNT(*) FROM tasks WHERE {slow}"))?
                    .query_row(params![ns, now], |r| r.get(0))?,
            );
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT job_name, trig, task_name FROM tasks WHERE {slow} ORDER BY create_time LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![ns, now, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(TaskKey::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            snap.slow_tasks = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT job_name, step_name, SUM(picked_times), SUM(tried_times), SUM(picked_times > 0), \
                 SUM(tried_times > 0), MAX(picked_times), MAX(tried_times) FROM tasks \
                 WHERE ns = ?1 AND state = 'UNDONE' AND (picked_times > 0 OR tried_times > 0) \
                 GROUP BY job_name, step_name ORDER BY job_name, step_name",
            )?;
            let rows = stmt.query_map(params![ns], |r| {
                Ok(StepRetries {
                    job_name: r.get(0)?,
                    step_name: r.get(1)?,
                    picked_sum: count(r.get(2)?),
                    tried_sum: count(r.get(3)?),
                    picked_tasks: count(r.get(4)?),
                    tried_tasks: count(r.get(5)?),
                    picked_max: count(r.get(6)?),
                    tried_max: count(r.get(7)?),
                })
            })?;
            snap.retries = rows.collect::<rusqlite::Result<Vec<_>>>()?;

            // Queue depth and tasks waiting for an executor. Available executors: those
            // advertised by nodes seen within `live_ms` (as `live_bindings` decides) plus the
            // caller's own. Both tables are small: one row per node and per node executor.
            let mut available: HashSet<String> = local.iter().cloned().collect();
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT e.name FROM node_executors e JOIN nodes n ON n.ns = e.ns AND n.node = e.node \
                 WHERE e.ns = ?1 AND n.last_seen >= ?2",
            )?;
            for name in stmt.query_map(params![ns, db_now.saturating_sub(live_ms)], |r| r.get::<_, String>(0))? {
                available.insert(name?);
            }
            let bans = rows::pick_bans(conn, ns)?;
            // One pass over the unleased todo tasks (the partial index tasks_claimable_by_step),
            // grouped so the rows returned are per job and executor, not per task.
            let mut stmt = conn.prepare_cached(
                "SELECT job_name, trig, executor, COUNT(*), SUM(after_ms <= ?2) FROM tasks \
                 WHERE ns = ?1 AND state = 'UNDONE' AND lease_owner IS NULL GROUP BY job_name, trig, executor",
            )?;
            let rows = stmt.query_map(params![ns, db_now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    count(r.get(3)?),
                    count(r.get::<_, Option<i64>>(4)?.unwrap_or(0)),
                ))
            })?;
            let (mut waiting, mut claimable) = (0u64, 0u64);
            for row in rows {
                let (job_name, trigger, executor, todo, due) = row?;
                match executor {
                    Some(name) if available.contains(&name) => {
                        // Banned tasks are not counted: no worker would pick them now.
                        if !bans.stop(&job_name, &trigger) {
                            claimable += due;
                        }
                    }
                    // None named and none bound, or named but loaded by no live node.
                    _ => waiting += todo,
                }
            }
            snap.claimable = claimable;
            snap.waiting_for_executor = waiting;
            Ok(snap)
        })
    }
}
