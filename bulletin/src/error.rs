/// A storage failure. Domain refusals (validation, duplicates) are values, not errors.
#[derive(Debug, thiserror::Error)]
pub enum BulletinError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("invalid stored value: {0}")]
    Invalid(String),
}

impl BulletinError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt { what: what.into(), detail: detail.to_string() }
    }

    /// Whether another writer held the database (worth retrying).
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Database(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }
}
