//! A tiny in-memory advancer for the acceptance cases: it plays the bulletin and the
//! workers, calling only the pure domain API.
#![allow(dead_code, clippy::type_complexity)]

use std::collections::{BTreeMap, HashMap, VecDeque};

use tascreed_domain::*;

pub const T0: i64 = 1_634_000_000_000;

/// Executor behaviour for one execution.
#[derive(Debug, Clone)]
pub enum Act {
    Ok,
    Fail,
    Err,
    OkParams(&'static [(&'static str, &'static str)]),
    FailParams(&'static [(&'static str, &'static str)]),
    OkCfg(&'static str, &'static str),
    Block,
}

pub struct Sim {
    pub job: Job,
    /// Every task ever created, in creation order.
    pub created: Vec<Task>,
    /// Names of tasks still todo.
    pub todo: Vec<String>,
    /// Per creation pass, the names created.
    pub passes: Vec<Vec<String>>,
    pub now: i64,
    pub acts: HashMap<String, VecDeque<Act>>,
    pub executions: Vec<String>,
    /// Max UNDONE entries seen per step after any pass.
    pub max_undone: BTreeMap<String, i64>,
    pub pending: Vec<FinishedTask>,
}

pub fn define(json: &str) -> JobDefine {
    JobDefine::load(json, ValidateOptions::default()).unwrap_or_else(|e| panic!("define rejected: {e}"))
}

pub fn reject(json: &str) -> String {
    match JobDefine::load(json, ValidateOptions::default()) {
        Ok(_) => panic!("define accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

impl Sim {
    pub fn new(define_json: &str, request_json: &str) -> Sim {
        Sim::with_define(define(define_json), request_json)
    }

    pub fn with_define(d: JobDefine, request_json: &str) -> Sim {
        let req = JobRequest::parse(request_json).expect("request parses");
        let job = build_job(&d, &req, T0).unwrap_or_else(|e| panic!("build failed: {e}"));
        Sim {
            job,
            created: vec![],
            todo: vec![],
            passes: vec![],
            now: T0,
            acts: HashMap::new(),
            executions: vec![],
            max_undone: BTreeMap::new(),
            pending: vec![],
        }
    }

    pub fn act(&mut self, name: &str, acts: &[Act]) -> &mut Self {
        self.acts.entry(name.to_string()).or_default().extend(acts.iter().cloned());
        self
    }

    /// One advance: fold what finished, then one creation pass.
    pub fn advance(&mut self) -> Creation {
        let finished = std::mem::take(&mut self.pending);
        self.job.fold(&finished, self.now);
        let c = self.job.create_tasks(self.now, CREATION_BUDGET_PER_PASS);
        self.passes.push(c.tasks.iter().map(|t| t.task_name.clone()).collect());
        for t in &c.tasks {
            assert!(self.task(&t.task_name).is_none(), "task {} created twice", t.task_name);
            self.todo.push(t.task_name.clone());
            self.created.push(t.clone());
        }
        for s in &self.job.steps {
            let e = self.max_undone.entry(s.step_name.clone()).or_insert(0);
            *e = (*e).max(s.undone_count());
        }
        c
    }

    fn next_act(&mut self, task: &str, step: &str) -> Act {
        for key in [task, step] {
            if let Some(q) = self.acts.get_mut(key)
                && let Some(a) = q.front().cloned()
            {
                if q.len() > 1 && !matches!(a, Act::Block) {
                    q.pop_front();
                }
                return a;
            }
        }
        Act::Ok
    }

    /// Runs every todo task once (blocked ones stay); true if any finished.
    pub fn work(&mut self) -> bool {
        let mut any = false;
        for name in self.todo.clone() {
            let step = self.task(&name).map(|t| t.step_name.clone()).unwrap_or_default();
            let act = self.next_act(&name, &step);
            let (state, params, cfg): (TaskState, &[(&str, &str)], Option<(&str, &str)>) = match act {
                Act::Block => continue,
                Act::Ok => (TaskState::Success, &[], None),
                Act::Fail => (TaskState::Failed, &[], None),
                Act::Err => (TaskState::Error, &[], None),
                Act::OkParams(p) => (TaskState::Success, p, None),
                Act::FailParams(p) => (TaskState::Failed, p, None),
                Act::OkCfg(s, c) => (TaskState::Success, &[], Some((s, c))),
            };
            self.executions.push(name.clone());
            self.finish(&name, state, params, cfg);
            any = true;
        }
        any
    }

    pub fn finish(&mut self, name: &str, state: TaskState, params: &[(&str, &str)], cfg: Option<(&str, &str)>) {
        let now = self.now;
        let task = self.task_mut(name).expect("task exists");
        task.finish(state, None, now);
        task.updated_params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // Like a worker: the executor's text becomes a typed conf, or is dropped if it is none.
        if let Some(conf) = cfg.and_then(|(s, c)| Some((s.to_string(), UpdatedConfig::parse(c).ok()?))) {
            task.updated_configs.insert(conf.0, conf.1);
        }
        let ft = FinishedTask::from(&*task);
        self.todo.retain(|n| n != name);
        self.pending.push(ft);
    }

    /// Releases a blocked task with `act` and lets it run once.
    pub fn release(&mut self, name: &str, act: Act) {
        self.acts.insert(name.to_string(), VecDeque::from([act]));
        let step = self.task(name).map(|t| t.step_name.clone()).unwrap_or_default();
        let act = self.next_act(name, &step);
        self.acts.remove(name);
        let (state, params): (TaskState, &[(&str, &str)]) = match act {
            Act::Fail => (TaskState::Failed, &[]),
            Act::Err => (TaskState::Error, &[]),
            Act::OkParams(p) => (TaskState::Success, p),
            _ => (TaskState::Success, &[]),
        };
        self.executions.push(name.to_string());
        self.finish(name, state, params, None);
    }

    /// Advance and work until nothing changes.
    pub fn run(&mut self) -> &mut Self {
        for _ in 0..10_000 {
            let c = self.advance();
            let worked = self.work();
            if c.tasks.is_empty() && !worked && self.pending.is_empty() {
                return self;
            }
        }
        panic!("no quiescence");
    }

    pub fn task(&self, name: &str) -> Option<&Task> {
        self.created.iter().find(|t| t.task_name == name)
    }

    pub fn task_mut(&mut self, name: &str) -> Option<&mut Task> {
        self.created.iter_mut().find(|t| t.task_name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.created.iter().map(|t| t.task_name.clone()).collect()
    }

    pub fn step(&self, name: &str) -> &Step {
        self.job.step(name).unwrap_or_else(|| panic!("no step {name}"))
    }

    pub fn state(&self, step: &str) -> StepState {
        self.step(step).state
    }

    /// Position of the first execution of `name`.
    pub fn ran_at(&self, name: &str) -> usize {
        self.executions.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} never ran"))
    }

    /// Index of the pass that created `name`.
    pub fn created_in(&self, name: &str) -> usize {
        self.passes.iter().position(|p| p.iter().any(|n| n == name)).unwrap_or_else(|| panic!("{name} never created"))
    }
}

pub fn params(kv: &[(&str, &str)]) -> Params {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn states(kv: &[(&str, StepState)]) -> BTreeMap<String, StepState> {
    kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub const SAMPLE: &str = r#"{"jobName":"sample","version":1,"priority":1,"params":{"p1":"0"},
 "traits":["canIgnore","canFail","deleted","ARCHIVE","unknown"],
 "steps":[
  {"stepName":"prep","stepType":"SHARD","shardConf":{"shard":4,"maxTaskCount":2},
   "traits":["canIgnore","canFail","deleted","ARCHIVE","unknown"]},
  {"stepName":"calc","stepType":"PACK",
   "packConf":{"size":100,"start":0,"end":1005,"maxTaskCount":6},"dependentStep":"prep"},
  {"stepName":"aggr-1","dependentStep":"calc"},
  {"stepName":"aggr-2","dependentStep":"calc","ignorable":true,"params":{"p1":"2","p2":"4"}}]}"#;

pub const REQ1: &str = r#"{"jobName":"sample","trigger":"20191020","priority":2,"params":{"p1":"1","p2":"2"},
 "steps":[{"stepName":"prep","shardConf":{"shard":6},"packConf":{"size":1000}}]}"#;

pub const REQ2: &str = r#"{"jobName":"sample","trigger":"20191020","traits":{"enable":["canIgnore","deleted"]},
 "params":{"p1":"1","p2":"2"},
 "steps":[{"stepName":"prep","traits":{"disable":["canIgnore","canFail"]},"shardConf":{"maxTaskCount":20}},
          {"stepName":"aggr-2","traits":{"enable":["canIgnore","ARCHIVE"]},"ignore":true}]}"#;

pub const DAG: &str = r#"{"jobName":"dag","steps":[
 {"stepName":"A"},
 {"stepName":"B","dependency":{"steps":["A"]}},
 {"stepName":"C","dependency":{"steps":["A"]}},
 {"stepName":"D","dependency":{"steps":["B","C"]}},
 {"stepName":"E","dependency":{"steps":["C"]}},
 {"stepName":"F","dependency":{"phase":1}},
 {"stepName":"G","dependency":{"phase":1,"steps":["E"]}},
 {"stepName":"H","dependency":{"phase":1,"steps":["F"]}},
 {"stepName":"I","dependency":{"phase":1,"steps":["F","G"]}}]}"#;

pub const CHAIN: &str = r#"{"jobName":"chain","steps":[{"stepName":"A"},
 {"stepName":"B","dependency":{"steps":["A"]}},
 {"stepName":"C","dependency":{"steps":["B"]}}]}"#;

pub fn req(job: &str) -> String {
    format!(r#"{{"jobName":"{job}","trigger":"t"}}"#)
}
