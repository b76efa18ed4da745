//! Plugboard's workflow engine, without storage or HTTP: workflow definitions and their
//! validation, templates, jq transforms, and the interpreter that runs an execution step
//! by step against a journal of recorded step results (so a resumed execution replays
//! what was done and continues where it stopped).

pub mod definition;
pub mod interpreter;
pub mod template;
pub mod transform;

pub use definition::{Action, DefinitionError, Step, Trigger, WorkflowDefinition};
pub use interpreter::{
    EffectError, Effects, ExecutionInput, HttpRequest, HttpResponse, Interpreter, Journal,
    JournalError, RunOutcome, StepRecord, scrub, scrub_value,
};
