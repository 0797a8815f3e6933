//! On-disk cache of compiled components, keyed by the component's sha256 and the engine's
//! compatibility hash (wasmtime version and every setting that changes generated code).
//!
//! Each artifact ends with the sha256 of what precedes it, checked before deserializing: a torn
//! or corrupted file is recompiled, never trusted (deserializing bad machine code would be UB).

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const DIGEST_LEN: usize = 32;

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        // sha256 rather than `DefaultHasher`, whose output may change between Rust releases
        // and would then orphan every artifact.
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        let cache = Self { dir, engine_key };
        cache.sweep();
        cache
    }

    /// Removes what earlier processes left behind: temporary files of writes they did not
    /// finish (old enough that no live writer owns them) and artifacts of other engine settings
    /// or wasmtime versions, which this engine can never use.
    fn sweep(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        let suffix = format!("-{}.cwasm", self.engine_key);
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = if name.starts_with(".tmp") {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(600))
            } else {
                name.ends_with(".cwasm") && !name.ends_with(&suffix)
            };
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// A cached artifact, or `None` when absent, stale or damaged (damaged files are removed).
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        let bytes = fs::read(&path).ok()?;
        match verify(&bytes) {
            Some(body) => {
                // SAFETY: the artifact was produced by `Component::serialize` of an engine with
                // the same compatibility hash (it is in the file name) and its digest matches.
                match unsafe { Component::deserialize(engine, body) } {
                    Ok(component) => return Some(component),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "stale compiled artifact, recompiling")
                    }
                }
            }
            None => {
                tracing::warn!(path = %path.display(), "corrupt compiled artifact, recompiling")
            }
        }
        let _ = fs::remove_file(&path);
        None
    }

    /// Writes the artifact atomically (temp file + rename); failures are logged, never fatal.
    pub(crate) fn store(&self, sha256: &str, component: &Component) {
        if let Err(e) = self.try_store(sha256, component) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot cache compiled artifact");
        }
    }

    fn try_store(&self, sha256: &str, component: &Component) -> anyhow::Result<()> {
        let mut bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp").tempfile_in(&self.dir)?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(sha256))?;
        Ok(())
    }
}

fn verify(bytes: &[u8]) -> Option<&[u8]> {
    let split = bytes.len().checked_sub(DIGEST_LEN)?;
    let (body, digest) = bytes.split_at(split);
    (Sha256::digest(body).as_slice() == digest).then_some(body)
}

/// Feeds `Hash` into sha256.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Unused: the digest is read from the inner state.
        0
    }
}
