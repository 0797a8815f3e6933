//! On-disk cache of compiled components, keyed by the component's sha256 and the engine's
//! compatibility hash (wasmtime version and every setting that changes generated code).
//!
//! Each artifact ends with the sha256 of what precedes it, checked before deserializing: a torn
//! or corrupted file is recompiled, never trusted (deserializing bad machine code would be UB).

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

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
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        Self { dir, engine_key }
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
        let target = self.path(sha256);
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&bytes)?;
        tmp.1.sync_all()?;
        fs::rename(&tmp.0, &target)?;
        Ok(())
    }
}

fn verify(bytes: &[u8]) -> Option<&[u8]> {
    let split = bytes.len().checked_sub(DIGEST_LEN)?;
    let (body, digest) = bytes.split_at(split);
    (Sha256::digest(body).as_slice() == digest).then_some(body)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = format!(".tmp-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let path = dir.join(name);
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}
