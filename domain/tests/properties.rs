//! Property tests: pack tiling, the alive-task bound, termination of acyclic jobs, and
//! done-range merging.

#![allow(clippy::type_complexity)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use tascreed_domain::*;

const T0: i64 = 1_634_000_000_000;

fn job_of(define_json: &str, request_json: &str) -> Job {
    let d = JobDefine::load(define_json, ValidateOptions::default()).expect("define valid");
    build_job(&d, &JobRequest::parse(request_json).expect("request"), T0).expect("job builds")
}

fn finish(tasks: &[Task], state_of: impl Fn(usize) -> TaskState) -> Vec<FinishedTask> {
    tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut t = t.clone();
            t.finish(state_of(i), None, T0);
            FinishedTask::from(&t)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Packs of a finite PACK step tile [start, end] exactly, ids consecutive from startPackId.
    #[test]
    fn packs_tile_the_range(size in 1i64..60, start in 0i64..400, len in -20i64..500, start_id in prop::option::of(0i64..20), max in -2i64..70) {
        let end = (start + len).max(0);
        let id = start_id.map_or(String::new(), |i| format!(r#","startPackId":{i}"#));
        let mut job = job_of(
            &format!(r#"{{"jobName":"p","steps":[{{"stepName":"s","stepType":"PACK","packConf":{{"size":{size},"start":{start},"end":{end},"maxTaskCount":{max}{id}}}}}]}}"#),
            r#"{"jobName":"p","trigger":"t"}"#,
        );
        let mut packs = Vec::new();
        for _ in 0..1000 {
            let c = job.create_tasks(T0, CREATION_BUDGET_PER_PASS);
            if c.tasks.is_empty() { break; }
            packs.extend(c.tasks.iter().filter_map(|t| t.pack_conf));
            job.fold(&finish(&c.tasks, |_| TaskState::Success), T0);
        }
        prop_assert_eq!(job.state, JobState::Success);
        if start > end {
            prop_assert!(packs.is_empty());
        } else {
            let first_id = start_id.unwrap_or(0);
            let mut next = start;
            for (k, p) in packs.iter().enumerate() {
                prop_assert_eq!(p.id, first_id + k as i64);
                prop_assert_eq!(p.start, next);
                prop_assert!(p.end >= p.start && p.end - p.start < size);
                next = p.end + 1;
            }
            prop_assert_eq!(next, end + 1);
            let done = &job.steps[0].pack_done_range.as_ref().unwrap().offsets;
            prop_assert_eq!(done.intervals(), &[(start, end)][..]);
        }
    }

    /// A step never holds more UNDONE tasks than its effective maxTaskCount.
    #[test]
    fn alive_tasks_bounded(shard in 1i64..300, max in -3i64..80, pack in any::<bool>(), outcomes in prop::collection::vec(0u8..4, 1..64)) {
        let conf = if pack {
            format!(r#""stepType":"PACK","packConf":{{"size":3,"start":0,"end":{},"maxTaskCount":{max}}}"#, shard * 3 - 1)
        } else {
            format!(r#""stepType":"SHARD","shardConf":{{"shard":{shard},"maxTaskCount":{max}}}"#)
        };
        let mut job = job_of(&format!(r#"{{"jobName":"a","steps":[{{"stepName":"s",{conf}}}]}}"#), r#"{"jobName":"a","trigger":"t"}"#);
        let limit = if max > 0 { max } else { 50 };
        let mut todo: Vec<Task> = Vec::new();
        for round in 0..2000usize {
            let c = job.create_tasks(T0, CREATION_BUDGET_PER_PASS);
            todo.extend(c.tasks);
            prop_assert!(job.steps[0].undone_count() <= limit);
            if todo.is_empty() { break; }
            // finish a varying prefix with varying outcomes; the rest stay running
            let n = 1 + outcomes[round % outcomes.len()] as usize % todo.len();
            let done: Vec<Task> = todo.drain(..n).collect();
            let states = finish(&done, |i| match outcomes[(round + i) % outcomes.len()] { 0 => TaskState::Failed, 1 => TaskState::Error, _ => TaskState::Success });
            job.fold(&states, T0);
        }
        prop_assert!(job.state.is_done());
    }

    /// A job of an acyclic define driven by random outcomes ends SUCCESS, FAILED or ERROR.
    #[test]
    fn acyclic_jobs_always_finish(
        steps in prop::collection::vec((0u8..3, 0i64..3, prop::collection::vec(any::<prop::sample::Index>(), 0..3), any::<bool>(), any::<bool>(), 1i64..6), 1..8),
        outcomes in prop::collection::vec(0u8..8, 1..50),
    ) {
        let mut defs = Vec::new();
        let mut ignores = Vec::new();
        let mut phases = Vec::new();
        for (i, (kind, phase_up, deps, can_fail, ignore, n)) in steps.iter().enumerate() {
            let phase = phases.last().copied().unwrap_or(0) + if *phase_up == 0 { 1 } else { 0 };
            phases.push(phase);
            let mut dep_names: Vec<String> = if i == 0 { vec![] } else { deps.iter().map(|d| format!("s{}", d.index(i))).collect() };
            dep_names.sort();
            dep_names.dedup();
            let conf = match kind {
                0 => String::new(),
                1 => format!(r#","stepType":"SHARD","shardConf":{{"shard":{n},"maxTaskCount":2}}"#),
                _ => format!(r#","stepType":"PACK","packConf":{{"size":2,"start":0,"end":{},"maxTaskCount":2}}"#, n * 2 - 1),
            };
            let traits = if *can_fail { r#","traits":["canFail","canIgnore"]"# } else { "" };
            defs.push(format!(r#"{{"stepName":"s{i}","dependency":{{"steps":{},"phase":{phase}}}{conf}{traits}}}"#, serde_json::to_string(&dep_names).unwrap()));
            if *ignore { ignores.push(format!(r#"{{"stepName":"s{i}","ignore":true}}"#)); }
        }
        let mut job = job_of(
            &format!(r#"{{"jobName":"r","steps":[{}]}}"#, defs.join(",")),
            &format!(r#"{{"jobName":"r","trigger":"t","steps":[{}]}}"#, ignores.join(",")),
        );
        let mut todo: Vec<Task> = Vec::new();
        for round in 0..500usize {
            let c = job.create_tasks(T0, CREATION_BUDGET_PER_PASS);
            todo.extend(c.tasks);
            prop_assert_ne!(job.state, JobState::Stuck);
            if job.state != JobState::Undone { break; }
            prop_assert!(!todo.is_empty(), "an UNDONE job with nothing to run");
            let n = 1 + outcomes[round % outcomes.len()] as usize % todo.len();
            let done: Vec<Task> = todo.drain(..n).collect();
            let states = finish(&done, |i| match outcomes[(round * 7 + i) % outcomes.len()] { 0 => TaskState::Failed, 1 => TaskState::Error, _ => TaskState::Success });
            job.fold(&states, T0);
        }
        prop_assert!(job.state.is_done(), "ended {:?}", job.state);
        prop_assert!(job.steps.iter().all(|s| s.state.is_done()));
    }

    /// Adding intervals to a range set gives the set union, kept canonical.
    #[test]
    fn range_merge_is_union(items in prop::collection::vec((-50i64..50, 0i64..20), 0..30)) {
        let mut set = RangeSet::new();
        let mut naive = BTreeSet::new();
        for (a, len) in items {
            set.add(a, a + len);
            naive.extend(a..=a + len);
        }
        let got: BTreeSet<i64> = set.intervals().iter().flat_map(|&(a, b)| a..=b).collect();
        prop_assert_eq!(&got, &naive);
        prop_assert_eq!(set.count(), naive.len() as i64);
        for w in set.intervals().windows(2) {
            prop_assert!(w[0].1 + 1 < w[1].0, "intervals disjoint and not adjacent");
        }
        prop_assert_eq!(RangeSet::parse(&set.to_string()), set);
    }
}
