//! The embedded bulletin on SQLite (WAL). One writer connection and a few reader connections per
//! process; several processes may share the file (SQLite's locks and a busy timeout serialize
//! their writes). Every write is one `BEGIN IMMEDIATE` transaction.

mod jobs;
mod misc;
mod monitor;
mod rows;
mod tasks;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::Result;

/// Durability of commits (`storage.sync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sync {
    /// WAL with `synchronous=NORMAL`: a committed transaction survives a crash of the process
    /// (the OS has it), but the last ones may be lost on power loss.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it returns; survives power loss.
    Full,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub namespace: String,
    pub sync: Sync,
    /// How long a writer waits for another process's transaction.
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            namespace: "default".into(),
            sync: Sync::Normal,
            busy_timeout: Duration::from_secs(30),
        }
    }
}

/// Reader connections per process.
const READERS: usize = 4;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;
/// Page cache per connection, in KiB.
const CACHE_KIB: i64 = 16 * 1024;

/// The SQLite [`crate::Bulletin`].
pub struct SqliteBulletin {
    ns: String,
    writer: Mutex<Connection>,
    /// WAL lets readers run beside the writer and each other; several connections keep API
    /// reads, submits and the advancer's snapshots from queueing behind one another.
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    /// Jobs as this process's last advance wrote them, with the version written. The next
    /// advance of an unchanged job takes it from here instead of parsing its body again: the
    /// body of a step with many alive tasks carries as many task states, and parsing it was
    /// the largest cost of advancing such a job. Any other write bumps the version, so a stale
    /// entry is never used.
    advanced: Mutex<std::collections::HashMap<crate::JobKey, (i64, tascreed_domain::Job)>>,
    /// Advances that used a kept job (for tests and curiosity).
    kept_hits: std::sync::atomic::AtomicU64,
}

/// Jobs kept in [`SqliteBulletin::advanced`]; past this the map starts over.
const ADVANCED_JOBS_KEPT: usize = 128;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("schema.sql")),
        M::up(include_str!("schema_v2.sql")),
        M::up(include_str!("schema_v3.sql")),
    ])
}

fn open(options: &SqliteOptions) -> Result<Connection> {
    let conn = Connection::open(&options.path)?;
    conn.busy_timeout(options.busy_timeout)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let sync = match options.sync {
        Sync::Normal => "NORMAL",
        Sync::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement of the bulletin stays prepared: rusqlite's default cache of 16 is
    // smaller than the set of statements the hot paths cycle through, and re-preparing on
    // every miss costs more than running the statement.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // SQLite's default page cache (2 MiB) is smaller than the pages a busy node cycles through
    // (task rows, their indexes, large job bodies): every miss is a read(2) and a copy. The
    // cache grows only as pages are used, so an idle node stays small.
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(conn)
}

impl SqliteBulletin {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(options: &SqliteOptions) -> Result<Self> {
        let mut writer = open(options)?;
        // Two processes starting together may race on the first migration; the loser's second
        // attempt sees the schema in place.
        if let Err(first) = migrations().to_latest(&mut writer) {
            tracing::debug!(error = %first, "migration raced, retrying");
            std::thread::sleep(Duration::from_millis(50));
            migrations().to_latest(&mut writer)?;
        }
        let readers = (0..READERS).map(|_| open(options).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            ns: options.namespace.clone(),
            writer: Mutex::new(writer),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            advanced: Mutex::new(std::collections::HashMap::new()),
            kept_hits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open (it rolls back on
        // drop), so the connection is still usable.
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) with the database clock.
    fn write<T>(&self, f: impl FnOnce(&Connection, &str, i64) -> Result<T>) -> Result<T> {
        let conn = Self::lock(&self.writer);
        in_transaction(&conn, "BEGIN IMMEDIATE", |conn| {
            let now = now_ms(conn)?;
            f(conn, &self.ns, now)
        })
    }

    /// Runs `f` on the reader connection (a consistent WAL snapshot per statement).
    fn read<T>(&self, f: impl FnOnce(&Connection, &str, i64) -> Result<T>) -> Result<T> {
        // A free connection if there is one, else wait on the next in turn.
        let free = self.readers.iter().find_map(|m| m.try_lock().ok());
        let conn = match free {
            Some(conn) => conn,
            None => {
                let i = self.next_reader.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.readers.len();
                Self::lock(&self.readers[i])
            }
        };
        let now = now_ms(&conn)?;
        f(&conn, &self.ns, now)
    }
}

/// The database clock in epoch ms.
pub(crate) fn now_ms(conn: &Connection) -> Result<i64> {
    Ok(conn.prepare_cached("SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)")?.query_row([], |r| r.get(0))?)
}

/// Runs `f` between `begin` and `COMMIT`, rolling back if it fails, if the commit fails, or if
/// it panics. rusqlite's `Transaction` would parse `BEGIN` and `COMMIT` anew on every use
/// (`execute_batch`); these statements are cached like every other.
pub(crate) fn in_transaction<T>(conn: &Connection, begin: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    /// Rolls back whatever is still open when it is dropped: on an error or a panic in `f`, or
    /// a failed commit.
    struct Open<'c>(&'c Connection);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if !self.0.is_autocommit() {
                let _ = self.0.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
            }
        }
    }
    conn.prepare_cached(begin)?.execute([])?;
    let open = Open(conn);
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    drop(open);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn reopening_keeps_the_schema_and_the_clock_moves() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new(dir.path().join("b.db"));
        let first = SqliteBulletin::open(&options).unwrap();
        let a = first.read(|c, _, now| Ok(now_ms(c)? - now)).unwrap();
        assert!(a >= 0);
        drop(first);
        SqliteBulletin::open(&options).expect("second open sees the schema in place");
    }

    #[test]
    fn a_failed_or_panicking_write_leaves_nothing_and_no_open_transaction() {
        use crate::{BanScope, Bulletin};
        let dir = tempfile::tempdir().unwrap();
        let b = SqliteBulletin::open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
        let insert = |c: &Connection, ns: &str| {
            c.execute("INSERT INTO bans (ns, scope, target, level) VALUES (?1, 'global', '', 1)", [ns]).map(|_| ())
        };
        let failed: Result<()> = b.write(|c, ns, _| {
            insert(c, ns).expect("the insert itself works");
            Err(crate::BulletinError::Invalid("no".into()))
        });
        assert!(failed.is_err());
        assert!(b.bans().unwrap().is_empty(), "rolled back on error");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<()> = b.write(|c, ns, _| {
                insert(c, ns).expect("the insert itself works");
                panic!("inside a write")
            });
        }));
        assert!(panicked.is_err());
        assert!(b.bans().unwrap().is_empty(), "rolled back on panic");
        b.set_ban(&BanScope::Global, crate::BanLevel::TaskPick).expect("the writer is usable again");
        assert_eq!(b.bans().unwrap().len(), 1);
    }

    #[test]
    fn an_unchanged_job_is_advanced_from_memory_and_a_changed_one_is_read_again() {
        use crate::{Bulletin, JobKey};
        use std::sync::atomic::Ordering;
        use tascreed_domain::{JobDefine, JobRequest, JobState, TaskState, build_job};
        let dir = tempfile::tempdir().unwrap();
        let b = SqliteBulletin::open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
        let define = JobDefine::parse(
            r#"{"jobName":"j","steps":[{"stepName":"s","stepType":"SHARD","executor":"x","shardConf":{"shard":3}},
                {"stepName":"t","stepType":"SHARD","executor":"x","shardConf":{"shard":1},"dependentStep":"s"}]}"#,
        )
        .unwrap();
        let request = JobRequest::parse(r#"{"jobName":"j","trigger":"t"}"#).unwrap();
        let job = build_job(&define, &request, b.now_ms().unwrap()).unwrap();
        b.submit(&job, false).unwrap();
        let key = JobKey::of(&job);
        assert_eq!(b.advance(&key, &[], 100).unwrap().created, 3);
        let hits = || b.kept_hits.load(Ordering::Relaxed);
        let run = |b: &SqliteBulletin| {
            let c = crate::conformance::claim(b, "w").expect("a shard to claim");
            assert!(b.finish(&c.lease, &crate::conformance::finish(TaskState::Success)).unwrap());
        };
        run(&b);
        assert_eq!(b.advance(&key, &[], 100).unwrap().folded, 1);
        assert_eq!(hits(), 1, "the job written by the last advance was used as it was");
        // Another writer changes the job: the next advance reads it again.
        let update = r#"{"jobName":"j","trigger":"t","steps":[{"stepName":"t","shardConf":{"maxTaskCount":7}}]}"#;
        b.update_alive_job(&JobRequest::parse(update).unwrap()).unwrap().unwrap();
        run(&b);
        assert_eq!(b.advance(&key, &[], 100).unwrap().folded, 1);
        assert_eq!(hits(), 1, "a job changed by another write is not taken from memory");
        run(&b);
        assert_eq!(b.advance(&key, &[], 100).unwrap().created, 1, "s is done: t's shard is created");
        assert_eq!(hits(), 2);
        run(&b);
        let out = b.advance(&key, &[], 100).unwrap();
        assert_eq!((out.folded, out.archived, out.state), (1, true, Some(JobState::Success)));
        assert_eq!(hits(), 3);
        let done = b.job(&key).unwrap().unwrap().job;
        let max = done.steps[1].shard_conf.as_ref().and_then(|c| c.max_task_count);
        assert_eq!(max, Some(7), "the update was not lost");
    }
}
