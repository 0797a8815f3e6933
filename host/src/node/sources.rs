//! What the node needs from the define and executor catalogs, as two small traits, so that the
//! node can be driven by the hot-reloading catalogs in the service and by fixed maps in tests.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tascreed_bulletin::NodeExecutor;
use tascreed_domain::{Binding, JobDefine};
use tascreed_runtime::Executor;

/// Job defines by name.
pub trait DefineSource: Send + Sync + 'static {
    fn define(&self, name: &str) -> Option<Arc<JobDefine>>;
}

/// Executors this node has loaded.
pub trait ExecutorSource: Send + Sync + 'static {
    fn executor(&self, name: &str) -> Option<Executor>;
    /// Every loaded executor, by name.
    fn loaded(&self) -> Vec<(String, Executor)>;
}

/// Executors as other nodes see them.
pub(crate) fn advertised(executors: Vec<(String, Executor)>) -> Vec<NodeExecutor> {
    executors
        .into_iter()
        .map(|(name, e)| NodeExecutor { name, sha256: e.sha256().to_string(), bindings: e.manifest().bindings.clone() })
        .collect()
}

/// Bindings of this node's own executors.
pub(crate) fn local_bindings(source: &dyn ExecutorSource) -> Vec<Binding> {
    advertised(source.loaded())
        .into_iter()
        .flat_map(|e| {
            let name = e.name;
            e.bindings.into_iter().map(move |(job_name, step_name)| Binding {
                executor: name.clone(),
                job_name,
                step_name,
            })
        })
        .collect()
}

/// A fixed, editable map: for tests and embedding.
#[derive(Default)]
pub struct StaticDefines(RwLock<BTreeMap<String, Arc<JobDefine>>>);

impl StaticDefines {
    pub fn insert(&self, define: JobDefine) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.insert(define.name().to_string(), Arc::new(define));
    }
}

impl DefineSource for StaticDefines {
    fn define(&self, name: &str) -> Option<Arc<JobDefine>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }
}

/// A fixed, editable map of executors: for tests and embedding.
#[derive(Default)]
pub struct StaticExecutors(RwLock<BTreeMap<String, Executor>>);

impl StaticExecutors {
    pub fn insert(&self, name: &str, executor: Executor) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), executor);
    }

    pub fn remove(&self, name: &str) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).remove(name);
    }
}

impl ExecutorSource for StaticExecutors {
    fn executor(&self, name: &str) -> Option<Executor> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    fn loaded(&self) -> Vec<(String, Executor)> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
