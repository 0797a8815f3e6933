//! The `script` param: a small action language, parsed and looked up without any host calls so
//! that it is unit-tested on the native target.
//!
//! ```json
//! {"calc.pack-3": ["FAIL", "OK"], "calc": [{"do": "OK", "sleepMs": 200}], "*": ["OK"]}
//! ```

use serde_json::{Map, Value};

/// What an action finally does, after its optional sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Fail,
    Err,
    Retry,
    NonRetry,
    Panic,
    Spin,
    Hog,
    Probe,
}

impl Kind {
    /// Action names are matched ASCII case-insensitively; `NON_RETRY` is an alias of `NONRETRY`.
    pub fn parse(name: &str) -> Option<Kind> {
        let kind = match name.to_ascii_uppercase().as_str() {
            "OK" => Kind::Ok,
            "FAIL" => Kind::Fail,
            "ERR" => Kind::Err,
            "RETRY" => Kind::Retry,
            "NONRETRY" | "NON_RETRY" => Kind::NonRetry,
            "PANIC" => Kind::Panic,
            "SPIN" => Kind::Spin,
            "HOG" => Kind::Hog,
            "PROBE" => Kind::Probe,
            _ => return None,
        };
        Some(kind)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ok => "OK",
            Kind::Fail => "FAIL",
            Kind::Err => "ERR",
            Kind::Retry => "RETRY",
            Kind::NonRetry => "NONRETRY",
            Kind::Panic => "PANIC",
            Kind::Spin => "SPIN",
            Kind::Hog => "HOG",
            Kind::Probe => "PROBE",
        }
    }
}

/// One scripted attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub kind: Kind,
    pub reason: Option<String>,
    /// `updatedParams`, values as given (non-string JSON values as their JSON text).
    pub updated_params: Vec<(String, String)>,
    /// `updatedConfigs`: step -> the JSON text of its config object.
    pub updated_configs: Vec<(String, String)>,
    /// `sleepMs`: sleep this long before acting (after `untilMs`).
    pub sleep_ms: u64,
    /// `untilMs`: sleep until this wall-clock time (epoch ms) before acting.
    pub until_ms: Option<u64>,
}

impl Action {
    pub fn plain(kind: Kind) -> Action {
        Action {
            kind,
            reason: None,
            updated_params: Vec::new(),
            updated_configs: Vec::new(),
            sleep_ms: 0,
            until_ms: None,
        }
    }
}

/// A parsed `script` param: key (task name, step name or `*`) -> actions by attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    entries: Vec<(String, Vec<Action>)>,
}

impl Script {
    /// The whole script is validated, not only the entry a task would use, so a typo anywhere
    /// fails every task of a dry run rather than only the one it affects.
    pub fn parse(text: &str) -> Result<Script, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err(format!(
                "must be a JSON object from task name, step name or \"*\" to a list of actions, got {}",
                type_name(&value)
            ));
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, actions) in map {
            let list = match actions {
                Value::Array(items) => items,
                // A lone action stands for a list of one.
                single @ (Value::String(_) | Value::Object(_)) => vec![single],
                other => {
                    return Err(format!("{key:?}: must be a list of actions, got {}", type_name(&other)));
                }
            };
            if list.is_empty() {
                return Err(format!("{key:?}: empty list of actions"));
            }
            let actions = list
                .iter()
                .enumerate()
                .map(|(i, a)| parse_action(a).map_err(|e| format!("{key:?}[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            entries.push((key, actions));
        }
        Ok(Script { entries })
    }

    fn get(&self, key: &str) -> Option<&[Action]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, a)| a.as_slice())
    }

    /// The action for an attempt: the list for the exact task name, else the step name, else
    /// `*`; in it the entry at `tried_times`, the last one repeating. `OK` when nothing matches.
    pub fn action_for(&self, task_name: &str, step_name: &str, tried_times: u32) -> Action {
        let list = self.get(task_name).or_else(|| self.get(step_name)).or_else(|| self.get("*"));
        match list {
            Some(list) => {
                let i = usize::try_from(tried_times).unwrap_or(usize::MAX);
                list.get(i).unwrap_or(&list[list.len() - 1]).clone()
            }
            None => Action::plain(Kind::Ok),
        }
    }
}

/// The action for a task given its `script` param (absent: `OK`). Errors are the `<what>` of
/// `bad script param: <what>`.
pub fn select(script: Option<&str>, task_name: &str, step_name: &str, tried_times: u32) -> Result<Action, String> {
    match script {
        None => Ok(Action::plain(Kind::Ok)),
        Some(text) => Ok(Script::parse(text)?.action_for(task_name, step_name, tried_times)),
    }
}

fn parse_action(value: &Value) -> Result<Action, String> {
    match value {
        Value::String(name) => parse_kind(name).map(Action::plain),
        Value::Object(obj) => parse_action_object(obj),
        other => Err(format!("an action is a string or an object, got {}", type_name(other))),
    }
}

fn parse_kind(name: &str) -> Result<Kind, String> {
    Kind::parse(name).ok_or_else(|| {
        format!("unknown action {name:?} (expected OK, FAIL, ERR, RETRY, NONRETRY, PANIC, SPIN, HOG or PROBE)")
    })
}

fn parse_action_object(obj: &Map<String, Value>) -> Result<Action, String> {
    let mut action = Action::plain(Kind::Ok);
    for (field, value) in obj {
        match field.as_str() {
            "do" => match value {
                Value::String(name) => action.kind = parse_kind(name)?,
                other => return Err(format!("\"do\" must be a string, got {}", type_name(other))),
            },
            "reason" => match value {
                Value::String(reason) => action.reason = Some(reason.clone()),
                Value::Null => action.reason = None,
                other => {
                    return Err(format!("\"reason\" must be a string, got {}", type_name(other)));
                }
            },
            "updatedParams" => {
                let Value::Object(params) = value else {
                    return Err(format!("\"updatedParams\" must be an object, got {}", type_name(value)));
                };
                action.updated_params = params
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect();
            }
            "updatedConfigs" => {
                let Value::Object(configs) = value else {
                    return Err(format!("\"updatedConfigs\" must be an object, got {}", type_name(value)));
                };
                action.updated_configs = configs
                    .iter()
                    .map(|(step, conf)| match conf {
                        Value::Object(_) => Ok((step.clone(), conf.to_string())),
                        other => {
                            Err(format!("\"updatedConfigs\".{step:?} must be an object, got {}", type_name(other)))
                        }
                    })
                    .collect::<Result<_, _>>()?;
            }
            "sleepMs" => action.sleep_ms = millis(field, value)?,
            "untilMs" => action.until_ms = Some(millis(field, value)?),
            other => {
                return Err(format!(
                    "unknown field {other:?} (expected do, reason, updatedParams, updatedConfigs, sleepMs, untilMs)"
                ));
            }
        }
    }
    Ok(action)
}

fn millis(field: &str, value: &Value) -> Result<u64, String> {
    value.as_u64().ok_or_else(|| format!("{field:?} must be a non-negative integer, got {value}"))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(script: &str, task: &str, step: &str, tried: u32) -> Kind {
        select(Some(script), task, step, tried).unwrap().kind
    }

    #[test]
    fn missing_script_is_ok() {
        assert_eq!(select(None, "s", "s", 0).unwrap(), Action::plain(Kind::Ok));
    }

    #[test]
    fn unlisted_task_is_ok() {
        assert_eq!(kind(r#"{"other": ["FAIL"]}"#, "s.shard-1", "s", 0), Kind::Ok);
        assert_eq!(kind("{}", "s", "s", 3), Kind::Ok);
    }

    #[test]
    fn lookup_order_task_then_step_then_star() {
        let s = r#"{"calc.pack-3": ["FAIL"], "calc": ["ERR"], "*": ["RETRY"]}"#;
        assert_eq!(kind(s, "calc.pack-3", "calc", 0), Kind::Fail);
        assert_eq!(kind(s, "calc.pack-4", "calc", 0), Kind::Err);
        assert_eq!(kind(s, "prep", "prep", 0), Kind::Retry);
        // exact task name only: a prefix does not match
        assert_eq!(kind(s, "calc.pack-30", "calc", 0), Kind::Err);
    }

    #[test]
    fn index_by_tried_times_last_repeats() {
        let s = r#"{"*": ["FAIL", "RETRY", "OK"]}"#;
        assert_eq!(kind(s, "s", "s", 0), Kind::Fail);
        assert_eq!(kind(s, "s", "s", 1), Kind::Retry);
        assert_eq!(kind(s, "s", "s", 2), Kind::Ok);
        assert_eq!(kind(s, "s", "s", 9), Kind::Ok);
        assert_eq!(kind(s, "s", "s", u32::MAX), Kind::Ok);
    }

    #[test]
    fn every_action_name() {
        for (name, k) in [
            ("OK", Kind::Ok),
            ("FAIL", Kind::Fail),
            ("ERR", Kind::Err),
            ("RETRY", Kind::Retry),
            ("NONRETRY", Kind::NonRetry),
            ("NON_RETRY", Kind::NonRetry),
            ("PANIC", Kind::Panic),
            ("SPIN", Kind::Spin),
            ("HOG", Kind::Hog),
            ("PROBE", Kind::Probe),
            ("fail", Kind::Fail),
        ] {
            assert_eq!(kind(&format!(r#"{{"*": ["{name}"]}}"#), "s", "s", 0), k);
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
    }

    #[test]
    fn lone_action_is_a_list_of_one() {
        assert_eq!(kind(r#"{"*": "FAIL"}"#, "s", "s", 4), Kind::Fail);
        assert_eq!(kind(r#"{"*": {"do": "ERR"}}"#, "s", "s", 0), Kind::Err);
    }

    #[test]
    fn object_action_fields() {
        let s = r#"{"s.pack-1": [{"do": "FAIL", "reason": "boom",
            "updatedParams": {"k": "v", "n": 3},
            "updatedConfigs": {"calc": {"shardConf": {"shardNum": 4}}},
            "sleepMs": 250, "untilMs": 1700000000000}]}"#;
        let a = select(Some(s), "s.pack-1", "s", 0).unwrap();
        assert_eq!(a.kind, Kind::Fail);
        assert_eq!(a.reason.as_deref(), Some("boom"));
        assert_eq!(a.updated_params, vec![("k".into(), "v".into()), ("n".into(), "3".into())]);
        assert_eq!(a.updated_configs, vec![("calc".into(), r#"{"shardConf":{"shardNum":4}}"#.into())]);
        assert_eq!(a.sleep_ms, 250);
        assert_eq!(a.until_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn object_without_do_is_ok() {
        let a = select(Some(r#"{"*": [{"sleepMs": 10}]}"#), "s", "s", 0).unwrap();
        assert_eq!(a.kind, Kind::Ok);
        assert_eq!(a.sleep_ms, 10);
    }

    #[test]
    fn malformed_scripts() {
        let bad = |s: &str| select(Some(s), "s", "s", 0).unwrap_err();
        assert!(bad("not json").starts_with("not JSON"), "{}", bad("not json"));
        assert!(bad("[]").contains("must be a JSON object"));
        assert!(bad(r#"{"*": 3}"#).contains("must be a list of actions"));
        assert!(bad(r#"{"*": []}"#).contains("empty list"));
        assert!(bad(r#"{"*": ["OK", "EXPLODE"]}"#).contains(r#""*"[1]: unknown action "EXPLODE""#));
        assert!(bad(r#"{"*": [{"do": "NOPE"}]}"#).contains("unknown action"));
        assert!(bad(r#"{"*": [{"do": 1}]}"#).contains("\"do\" must be a string"));
        assert!(bad(r#"{"*": [{"sleepMs": -1}]}"#).contains("\"sleepMs\" must be"));
        assert!(bad(r#"{"*": [{"untilMs": "x"}]}"#).contains("\"untilMs\" must be"));
        assert!(bad(r#"{"*": [{"updatedParam": {}}]}"#).contains("unknown field"));
        assert!(bad(r#"{"*": [{"updatedParams": []}]}"#).contains("must be an object"));
        assert!(bad(r#"{"*": [{"updatedConfigs": {"s": 1}}]}"#).contains("must be an object"));
        assert!(bad(r#"{"*": [{"reason": 1}]}"#).contains("\"reason\" must be a string"));
        assert!(bad(r#"{"*": [null]}"#).contains("string or an object"));
    }

    #[test]
    fn whole_script_is_validated_even_for_unlisted_tasks() {
        let err = select(Some(r#"{"other": ["BAD"]}"#), "s", "s", 0).unwrap_err();
        assert!(err.contains("unknown action"));
    }
}
