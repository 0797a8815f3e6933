//! Domain task → the WIT `task` record an executor receives.

use tascreed_domain::Task;
use tascreed_runtime as rt;

pub(crate) fn wit_task(task: &Task) -> rt::Task {
    let states = |m: &Option<std::collections::BTreeMap<String, tascreed_domain::StepState>>| {
        m.iter().flatten().map(|(k, v)| (k.clone(), v.as_str().to_string())).collect()
    };
    rt::Task {
        job_name: task.job_name.clone(),
        trigger: task.trigger.clone(),
        step_name: task.step_name.clone(),
        task_name: task.task_name.clone(),
        params: task.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        shard: task.shard_conf.map(|s| rt::Shard {
            total: u32::try_from(s.total).unwrap_or(u32::MAX),
            index: u32::try_from(s.index).unwrap_or(u32::MAX),
        }),
        pack: task.pack_conf.map(|p| rt::Pack {
            id: u64::try_from(p.id).unwrap_or_default(),
            start: u64::try_from(p.start).unwrap_or_default(),
            end: u64::try_from(p.end).unwrap_or_default(),
        }),
        dependent_step_states: states(&task.dependent_step_states),
        prev_phase_step_states: states(&task.prev_phase_step_states),
        picked_times: task.picked_times,
        tried_times: task.tried_times,
    }
}
