//! The monitor's read: one snapshot per round, from indexed columns only.

use rusqlite::params;

use super::SqliteBulletin;
use crate::{JobKey, MonitorSnapshot, Result, StepRetries, TaskKey};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteBulletin {
    pub(super) fn monitor_impl(&self, now: i64, limit: usize) -> Result<MonitorSnapshot> {
        let counts = self.counts_impl()?;
        self.read(|conn, ns, db_now| {
            let mut snap = MonitorSnapshot { counts, ..MonitorSnapshot::default() };
            let mut stmt = conn.prepare_cached(
                "SELECT job_name, trig FROM jobs WHERE ns = ?1 AND duration IS NOT NULL AND ?2 - create_time > duration \
                 ORDER BY job_name, trig",
            )?;
            let rows = stmt.query_map(params![ns, now], |r| Ok(JobKey::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            snap.slow_jobs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
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
            snap.claimable = count(
                conn.prepare_cached(
                    "SELECT COUNT(*) FROM tasks WHERE ns = ?1 AND state = 'UNDONE' AND lease_owner IS NULL \
                     AND executor IS NOT NULL AND after_ms <= ?2",
                )?
                .query_row(params![ns, db_now], |r| r.get(0))?,
            );
            Ok(snap)
        })
    }
}
