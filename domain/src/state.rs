//! The states of tasks, steps and jobs (spec §8) and what each state implies.

use serde::{Deserialize, Serialize};

/// Whether something is finished, and how it came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished.
    Unknown,
    /// Finished well (SUCCESS, IGNORED, ACCEPTABLE_FAILED).
    Success,
    /// Finished with a business failure.
    Failed,
    /// Finished with an error; retryable by a job retry.
    Error,
}

/// State of a task (spec §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Created, not finished.
    #[default]
    Undone,
    /// The executor returned success.
    Success,
    /// The executor returned failure.
    Failed,
    /// The executor returned an error, or the pick limit was exceeded.
    Error,
}

impl TaskState {
    /// The outcome this state stands for.
    pub fn outcome(self) -> Outcome {
        match self {
            TaskState::Undone => Outcome::Unknown,
            TaskState::Success => Outcome::Success,
            TaskState::Failed => Outcome::Failed,
            TaskState::Error => Outcome::Error,
        }
    }

    /// True for every state but UNDONE.
    pub fn is_done(self) -> bool {
        self != TaskState::Undone
    }

    /// TasCreed's enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Undone => "UNDONE",
            TaskState::Success => "SUCCESS",
            TaskState::Failed => "FAILED",
            TaskState::Error => "ERROR",
        }
    }
}

/// State of a step (spec §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    /// No task created yet.
    #[default]
    Dormant,
    /// Creating tasks.
    Start,
    /// Every task created; waiting for them to finish.
    Ready,
    /// Every task succeeded.
    Success,
    /// Ignored on request (its dependencies succeeded).
    Ignored,
    /// Some task failed but the step carries CAN_FAIL.
    AcceptableFailed,
    /// Some task failed.
    Failed,
    /// Some task ended in ERROR.
    Error,
    /// Skipped because a dependency failed.
    SkipByFailed,
    /// Skipped because a dependency ended in error.
    SkipByError,
}

impl StepState {
    /// The outcome this state stands for.
    pub fn outcome(self) -> Outcome {
        use StepState::*;
        match self {
            Dormant | Start | Ready => Outcome::Unknown,
            Success | Ignored | AcceptableFailed => Outcome::Success,
            Failed | SkipByFailed => Outcome::Failed,
            Error | SkipByError => Outcome::Error,
        }
    }

    /// Finished, whatever the result.
    pub fn is_done(self) -> bool {
        self.outcome() != Outcome::Unknown
    }

    /// Finished with a result dependants may build on.
    pub fn is_success(self) -> bool {
        self.outcome() == Outcome::Success
    }

    /// DORMANT and START may still create tasks.
    pub fn can_create_task(self) -> bool {
        matches!(self, StepState::Dormant | StepState::Start)
    }

    /// TasCreed's enum name.
    pub fn as_str(self) -> &'static str {
        use StepState::*;
        match self {
            Dormant => "DORMANT",
            Start => "START",
            Ready => "READY",
            Success => "SUCCESS",
            Ignored => "IGNORED",
            AcceptableFailed => "ACCEPTABLE_FAILED",
            Failed => "FAILED",
            Error => "ERROR",
            SkipByFailed => "SKIP_BY_FAILED",
            SkipByError => "SKIP_BY_ERROR",
        }
    }
}

/// State of a job (spec §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Running.
    #[default]
    Undone,
    /// Can never progress (a dependency cycle); final.
    Stuck,
    /// Every step finished with a success result.
    Success,
    /// Some step failed and none errored.
    Failed,
    /// Some step errored; retryable, stays alive.
    Error,
}

impl JobState {
    /// The outcome this state stands for (STUCK counts as an unfinished error).
    pub fn outcome(self) -> Outcome {
        match self {
            JobState::Undone => Outcome::Unknown,
            JobState::Stuck | JobState::Error => Outcome::Error,
            JobState::Success => Outcome::Success,
            JobState::Failed => Outcome::Failed,
        }
    }

    /// SUCCESS, FAILED or ERROR.
    pub fn is_done(self) -> bool {
        matches!(self, JobState::Success | JobState::Failed | JobState::Error)
    }

    /// SUCCESS and FAILED jobs leave the bulletin for the archive.
    pub fn can_auto_archive(self) -> bool {
        matches!(self, JobState::Success | JobState::Failed)
    }

    /// TasCreed's enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Undone => "UNDONE",
            JobState::Stuck => "STUCK",
            JobState::Success => "SUCCESS",
            JobState::Failed => "FAILED",
            JobState::Error => "ERROR",
        }
    }
}
