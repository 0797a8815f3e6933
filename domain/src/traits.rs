//! Traits and the containers they may live in (spec §2.4).

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};

/// A trait. Declaration order is the order stored lists use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trait {
    /// The step may be ignored by a request (`ignore: true`).
    CanIgnore,
    /// Set only when a job is deleted with archive.
    Deleted,
    /// A failed task makes the step ACCEPTABLE_FAILED instead of FAILED.
    CanFail,
    /// Finished tasks are archived.
    Archive,
}

/// Where a trait list lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A job define.
    JobDefine,
    /// A step define.
    StepDefine,
    /// A job.
    Job,
    /// A step of a job.
    Step,
    /// A task.
    Task,
}

impl Trait {
    /// Reads one of the accepted spellings (case-sensitive).
    pub fn parse(s: &str) -> Option<Trait> {
        Some(match s {
            "CAN_IGNORE" | "canIgnore" | "can-ignore" | "ignorable" => Trait::CanIgnore,
            "DELETED" | "deleted" => Trait::Deleted,
            "CAN_FAIL" | "canFail" | "can-fail" => Trait::CanFail,
            "ARCHIVE" | "archive" => Trait::Archive,
            _ => return None,
        })
    }

    /// Users may set it (DELETED is reserved to the framework).
    pub fn configurable(self) -> bool {
        self != Trait::Deleted
    }

    /// Whether the trait may be kept by `container`.
    pub fn fits(self, container: Container) -> bool {
        use Container::*;
        match self {
            Trait::CanIgnore => container == StepDefine,
            Trait::Deleted => matches!(container, Job | JobDefine),
            Trait::CanFail => matches!(container, Step | StepDefine),
            Trait::Archive => matches!(container, Task | Step | StepDefine),
        }
    }
}

/// A set of traits, serialized as a list of canonical names.
pub type TraitSet = BTreeSet<Trait>;

/// Keeps the user-given names that are known, configurable and fit `container`;
/// anything else is dropped silently, as TasCreed does.
pub fn from_user<'a>(names: impl IntoIterator<Item = &'a str>, container: Container) -> TraitSet {
    names.into_iter().filter_map(Trait::parse).filter(|t| t.configurable() && t.fits(container)).collect()
}

/// Copies `base` into `container` (dropping what does not fit) and applies a request's
/// enable/disable lists with the same filter.
pub fn inherit(base: &TraitSet, amend: Option<&TraitsAmend>, container: Container) -> TraitSet {
    let mut out: TraitSet = base.iter().copied().filter(|t| t.fits(container)).collect();
    if let Some(amend) = amend {
        out.extend(from_user(amend.enable.iter().map(String::as_str), container));
        for t in from_user(amend.disable.iter().map(String::as_str), container) {
            out.remove(&t);
        }
    }
    out
}

/// A request's `traits {enable, disable}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraitsAmend {
    /// Names to add.
    #[serde(default, deserialize_with = "null_list")]
    pub enable: Vec<String>,
    /// Names to remove.
    #[serde(default, deserialize_with = "null_list")]
    pub disable: Vec<String>,
}

fn null_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn user_list<'de, D: Deserializer<'de>>(d: D, container: Container) -> Result<TraitSet, D::Error> {
    let names = null_list(d)?;
    Ok(from_user(names.iter().map(String::as_str), container))
}

/// Serde reader for a job define's `traits`.
pub(crate) fn de_job_define<'de, D: Deserializer<'de>>(d: D) -> Result<TraitSet, D::Error> {
    user_list(d, Container::JobDefine)
}

/// Serde reader for a step define's `traits`.
pub(crate) fn de_step_define<'de, D: Deserializer<'de>>(d: D) -> Result<TraitSet, D::Error> {
    user_list(d, Container::StepDefine)
}

/// Serde reader for traits stored by us: every known name is kept (DELETED included).
pub(crate) fn de_stored<'de, D: Deserializer<'de>>(d: D) -> Result<TraitSet, D::Error> {
    Ok(null_list(d)?.iter().filter_map(|s| Trait::parse(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_container() {
        let names = ["canIgnore", "canFail", "deleted", "ARCHIVE", "unknown", "CanFail"];
        let sd = from_user(names, Container::StepDefine);
        assert_eq!(sd, [Trait::CanIgnore, Trait::CanFail, Trait::Archive].into());
        assert_eq!(inherit(&sd, None, Container::Step), [Trait::CanFail, Trait::Archive].into());
        assert_eq!(inherit(&sd, None, Container::Task), [Trait::Archive].into());
        assert!(from_user(names, Container::Job).is_empty());
    }
}
