//! The conformance suite against SQLite, one fresh database file per test.

use std::sync::Arc;

use tascreed_bulletin::{Bulletin, SqliteBulletin, SqliteOptions};

fn fresh() -> Arc<dyn Bulletin> {
    // The store outlives this function; its folder stays under target/tmp, not /tmp.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir").keep();
    Arc::new(SqliteBulletin::open(&SqliteOptions::new(dir.join("bulletin.db"))).expect("open"))
}

tascreed_bulletin::conformance_tests!(fresh);
