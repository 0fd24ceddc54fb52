//! What the executor writes, and where: the output mode, notices above the bar, the
//! result line (or the final record as JSON).

use std::io::{self, Write};

use parking_lot::Mutex;

use super::{Execution, OperationExecutor};
use crate::ProgressDisplay;

/// What the executor shows. Lines go to the writers the caller gives
/// ([`OperationExecutor::with_writer`], [`OperationExecutor::with_notices`]); without
/// them nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Output {
    /// The progress bar on stderr when stderr is a terminal; notices to the notice
    /// writer, the result line to the writer.
    #[default]
    Terminal,
    /// No bar; the final [`OperationInfo`](crate::OperationInfo) as one JSON document to the writer, notices
    /// to the notice writer.
    Json,
    /// Nothing at all: read the returned [`Execution`].
    Silent,
}

/// A writer the executor shares between its calls.
pub(super) type Writer = Mutex<Box<dyn io::Write + Send>>;

impl<S> OperationExecutor<S> {
    /// Writes `line` to the notice writer, above the bar.
    pub(super) fn notice(&self, display: Option<&ProgressDisplay>, line: &str) {
        let Some(notices) = self
            .notices
            .as_ref()
            .filter(|_| self.output != Output::Silent)
        else {
            return;
        };
        let write = || {
            let mut w = notices.lock();
            // Best effort: a notice that cannot be written is not worth ending the run.
            let _ = writeln!(w, "{line}").and_then(|()| w.flush());
        };
        match display {
            Some(display) => display.suspend(write),
            None => write(),
        }
    }

    pub(super) fn report(&self, execution: &Execution) -> io::Result<()> {
        let Some(writer) = self
            .writer
            .as_ref()
            .filter(|_| self.output != Output::Silent)
        else {
            return Ok(());
        };
        let mut w = writer.lock();
        match (self.output, &execution.info) {
            (Output::Json, Some(info)) => {
                serde_json::to_writer_pretty(&mut *w, info)?;
                writeln!(w)?;
            }
            _ => writeln!(w, "{}", execution.message)?,
        }
        w.flush()
    }
}
