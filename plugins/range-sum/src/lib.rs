//! `range-sum`: a realistic PACK/SHARD executor doing work proportional to its range.
//!
//! - pack task: sums `start..=end` of its pack;
//! - shard task: sums its slice of `0..=end` (param `end`, default 1 000 000), slice `i` of `n`
//!   being the contiguous `i`-th of `n` nearly equal parts (the first `len % n` are one longer);
//! - plain task: sums `0..=end`.
//!
//! Publishes `sum.<task-name>` = the decimal sum.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

const DEFAULT_END: u64 = 1_000_000;

/// The inclusive bounds of slice `index` of `total` of `0..=end`; `None` when it is empty.
fn shard_slice(end: u64, total: u32, index: u32) -> Result<Option<(u64, u64)>, String> {
    if total == 0 || index >= total {
        return Err(format!("bad shard: index {index} of total {total}"));
    }
    let len = u128::from(end) + 1;
    let (n, i) = (u128::from(total), u128::from(index));
    let (base, rem) = (len / n, len % n);
    let lo = i * base + i.min(rem);
    let size = base + u128::from(i < rem);
    if size == 0 {
        return Ok(None);
    }
    // Both bounds are at most `end`, so they fit in u64.
    Ok(Some((lo as u64, (lo + size - 1) as u64)))
}

/// `start + .. + end` by an honest loop (one step per integer; empty when `start > end`).
fn sum_range(start: u64, end: u64) -> u128 {
    let mut sum: u128 = 0;
    if start > end {
        return 0;
    }
    for i in start..=end {
        // black_box keeps the optimiser from replacing the loop by the closed form.
        sum = sum.wrapping_add(u128::from(std::hint::black_box(i)));
    }
    sum
}

fn end_param(value: Option<&str>) -> Result<u64, String> {
    match value {
        None => Ok(DEFAULT_END),
        Some(v) => v.trim().parse::<u64>().map_err(|_| format!("bad param end: {v:?} is not a non-negative integer")),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "executor", path: "../../wit" });

    use tascreed::executor::types::Status;

    struct RangeSum;

    impl Guest for RangeSum {
        fn describe() -> Manifest {
            Manifest {
                name: "range-sum".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                bindings: Vec::new(),
                checkpoint: false,
            }
        }

        fn execute(task: Task) -> Result<Outcome, TaskError> {
            let sum = if let Some(pack) = &task.pack {
                super::sum_range(pack.start, pack.end)
            } else {
                let end_value = task.params.iter().rev().find(|(k, _)| k == "end").map(|(_, v)| v.as_str());
                let end = super::end_param(end_value).map_err(TaskError::NonRetry)?;
                match &task.shard {
                    Some(shard) => {
                        match super::shard_slice(end, shard.total, shard.index).map_err(TaskError::NonRetry)? {
                            Some((lo, hi)) => super::sum_range(lo, hi),
                            None => 0,
                        }
                    }
                    None => super::sum_range(0, end),
                }
            };
            Ok(Outcome {
                status: Status::Success,
                reason: None,
                updated_params: vec![(format!("sum.{}", task.task_name), sum.to_string())],
                updated_configs: Vec::new(),
            })
        }

        fn execute_round(_task: Task, _checkpoint: Option<Vec<u8>>) -> Result<Round, TaskError> {
            Err(TaskError::NonRetry("range-sum is not a checkpoint executor".into()))
        }
    }

    export!(RangeSum);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(start: u64, end: u64) -> u128 {
        let (s, e) = (u128::from(start), u128::from(end));
        if s > e { 0 } else { (s + e) * (e - s + 1) / 2 }
    }

    #[test]
    fn sums() {
        assert_eq!(sum_range(0, 0), 0);
        assert_eq!(sum_range(1, 100), 5050);
        assert_eq!(sum_range(5, 4), 0);
        assert_eq!(sum_range(0, 1_000_000), closed(0, 1_000_000));
        assert_eq!(sum_range(u64::MAX - 2, u64::MAX), closed(u64::MAX - 2, u64::MAX));
    }

    #[test]
    fn slices_cover_the_range_exactly() {
        for end in [0u64, 1, 9, 10, 99, 1_000_000] {
            for total in 1..=13u32 {
                let mut next = 0u64;
                let mut sum = 0u128;
                let mut sizes = Vec::new();
                for index in 0..total {
                    if let Some((lo, hi)) = shard_slice(end, total, index).unwrap() {
                        assert_eq!(lo, next, "end {end} total {total} index {index}");
                        next = hi + 1;
                        sizes.push(hi - lo + 1);
                        sum += sum_range(lo, hi);
                    } else {
                        sizes.push(0);
                    }
                }
                assert_eq!(next, end + 1);
                assert_eq!(sum, closed(0, end));
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "nearly equal parts: {sizes:?}");
            }
        }
    }

    #[test]
    fn slice_examples_and_errors() {
        assert_eq!(shard_slice(9, 3, 0), Ok(Some((0, 3))));
        assert_eq!(shard_slice(9, 3, 1), Ok(Some((4, 6))));
        assert_eq!(shard_slice(9, 3, 2), Ok(Some((7, 9))));
        assert_eq!(shard_slice(u64::MAX, 2, 1), Ok(Some((1 << 63, u64::MAX))));
        assert_eq!(shard_slice(0, 2, 1), Ok(None));
        assert!(shard_slice(9, 0, 0).is_err());
        assert!(shard_slice(9, 3, 3).is_err());
    }

    #[test]
    fn end_param_default_and_errors() {
        assert_eq!(end_param(None), Ok(DEFAULT_END));
        assert_eq!(end_param(Some("42")), Ok(42));
        assert!(end_param(Some("x")).unwrap_err().contains("end"));
    }
}
