//! Guest stdout/stderr: forwarded line by line to `tracing` inside the task's span, with a bounded
//! tail kept for error reports. Nothing a guest prints can grow host memory without bound, and a
//! chatty guest is never failed for printing (excess lines are counted and dropped).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line forwarded as one event; longer lines are split.
const MAX_LINE: usize = 8 * 1024;
/// Lines forwarded to tracing per call and stream; the rest are only counted.
const MAX_LINES: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

struct State {
    kind: StreamKind,
    span: tracing::Span,
    partial: Vec<u8>,
    tail: VecDeque<u8>,
    tail_cap: usize,
    lines: usize,
    dropped_lines: usize,
}

/// One guest output stream; clones share the same buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<State>>);

impl GuestOutput {
    pub(crate) fn new(kind: StreamKind, span: tracing::Span, tail_cap: usize) -> Self {
        Self(Arc::new(Mutex::new(State {
            kind,
            span,
            partial: Vec::new(),
            tail: VecDeque::new(),
            tail_cap,
            lines: 0,
            dropped_lines: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a logging call panicked; the buffer itself is still sound.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut s = self.lock();
        for &b in bytes {
            if s.tail.len() == s.tail_cap && s.tail_cap > 0 {
                s.tail.pop_front();
            }
            if s.tail_cap > 0 {
                s.tail.push_back(b);
            }
        }
        for &b in bytes {
            if b == b'\n' {
                s.emit_partial();
            } else {
                s.partial.push(b);
                if s.partial.len() >= MAX_LINE {
                    s.emit_partial();
                }
            }
        }
    }

    /// Emits any unterminated last line and returns the kept tail as text.
    pub(crate) fn finish(&self) -> String {
        let mut s = self.lock();
        if !s.partial.is_empty() {
            s.emit_partial();
        }
        if s.dropped_lines > 0 {
            let (kind, dropped) = (s.kind.name(), s.dropped_lines);
            tracing::warn!(parent: &s.span, stream = kind, dropped, "guest output truncated");
            s.dropped_lines = 0;
        }
        let (a, b) = s.tail.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).trim().to_string()
    }
}

impl State {
    fn emit_partial(&mut self) {
        let line = std::mem::take(&mut self.partial);
        if self.lines >= MAX_LINES {
            self.dropped_lines += 1;
            return;
        }
        self.lines += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        match self.kind {
            StreamKind::Stdout => tracing::info!(parent: &self.span, stream = "stdout", "{text}"),
            StreamKind::Stderr => tracing::warn!(parent: &self.span, stream = "stderr", "{text}"),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail_and_splits_lines() {
        let out = GuestOutput::new(StreamKind::Stderr, tracing::Span::none(), 8);
        out.push(b"first line\nsecond");
        out.push(b" part\n");
        assert_eq!(out.finish(), "nd part");
        assert_eq!(out.lock().lines, 2);
    }

    #[test]
    fn counts_lines_past_the_cap_instead_of_failing() {
        let mut out = GuestOutput::new(StreamKind::Stdout, tracing::Span::none(), 16);
        for _ in 0..(MAX_LINES + 5) {
            out.write(Bytes::from_static(b"x\n")).expect("writes never fail");
        }
        assert_eq!(out.lock().dropped_lines, 5);
        out.finish();
        assert_eq!(out.lock().dropped_lines, 0);
    }
}
