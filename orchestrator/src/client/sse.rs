//! A bounded reader of the events route's Server-Sent Events.
//!
//! Only what the operations API sends is understood (`event:` and `data:` fields,
//! comments, blank-line dispatch); every line and every event is bounded, so a hostile
//! or broken server costs at most [`MAX_EVENT`] bytes of memory and never a panic.

use std::time::Duration;

use crate::OperationInfo;

/// The largest event (all its lines) accepted; a record is a few KiB.
pub(crate) const MAX_EVENT: usize = 1 << 20;
/// How long the stream may stay silent: the server sends a keep-alive comment every
/// 15 s, so a silence this long means the connection is gone.
pub(crate) const IDLE: Duration = Duration::from_secs(45);

/// One record of the stream and whether it was the last (`done`).
pub(crate) struct Record {
    pub(crate) info: OperationInfo,
    pub(crate) done: bool,
}

/// Why the stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// The connection broke, timed out or ended before `done`.
    #[error("the event stream broke off: {0}")]
    Broken(String),
    /// An event or line over [`MAX_EVENT`], or data that is not a record.
    #[error("the event stream is not the operations API's: {0}")]
    Invalid(String),
}

/// Splits bytes into events; fed chunk by chunk.
#[derive(Default)]
pub(crate) struct Parser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// `event:` of the event being read.
    name: String,
    /// `data:` lines of the event being read, joined by `\n`.
    data: String,
    /// Whether `data` has a line yet (an empty `data:` line still counts).
    has_data: bool,
}

impl Parser {
    /// Feeds `chunk`; pushes every record completed by it onto `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<Record>) -> Result<(), StreamError> {
        for &byte in chunk {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(record) = self.line_done(&line)? {
                    out.push(record);
                }
            } else {
                if self.line.len() + self.data.len() >= MAX_EVENT {
                    return Err(StreamError::Invalid(format!(
                        "an event longer than {MAX_EVENT} bytes"
                    )));
                }
                self.line.push(byte);
            }
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<Record>, StreamError> {
        if line.is_empty() {
            return self.dispatch();
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| StreamError::Invalid("a line that is not UTF-8".to_owned()))?;
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // `id`, `retry` and unknown fields: nothing the client needs.
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Result<Option<Record>, StreamError> {
        let name = std::mem::take(&mut self.name);
        let data = std::mem::take(&mut self.data);
        let had_data = std::mem::replace(&mut self.has_data, false);
        let done = match name.as_str() {
            "done" => true,
            "progress" | "" if had_data => false,
            _ => return Ok(None),
        };
        let info = serde_json::from_str(&data).map_err(|e| {
            StreamError::Invalid(format!("a `{name}` event without a record ({e})"))
        })?;
        Ok(Some(Record { info, done }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> String {
        serde_json::json!({"operation_id": "op_dummy_20261122_160501_9f3a1c2e",
            "operation_type": "DUMMY", "status": "RUNNING", "created_at": "2026-11-22T16:05:01Z"})
        .to_string()
    }

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let text = format!(
            ": keep-alive\r\n\r\nevent: progress\r\nid: 1\r\ndata: {}\r\n\r\nevent: done\ndata: {}\n\n",
            record(),
            record()
        );
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(7) {
            parser.feed(chunk, &mut out).unwrap();
        }
        assert_eq!(
            out.iter().map(|r| r.done).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn hostile_streams_are_errors() {
        let mut out = Vec::new();
        let long = vec![b'a'; MAX_EVENT + 1];
        assert!(matches!(
            Parser::default().feed(&long, &mut out),
            Err(StreamError::Invalid(_))
        ));
        let many_lines = "data: x\n".repeat(MAX_EVENT);
        assert!(
            Parser::default()
                .feed(many_lines.as_bytes(), &mut out)
                .is_err()
        );
        assert!(
            Parser::default()
                .feed(b"event: done\ndata: {nope\n\n", &mut out)
                .is_err()
        );
        assert!(Parser::default().feed(b"data: \xff\n", &mut out).is_err());
        assert!(out.is_empty());
    }
}
