//! A write deadline for HTTP connections: a client that stops reading (pipelined requests
//! whose responses it never reads, a slow reader) would otherwise hold its connection,
//! and its place under the caps, for as long as it likes. hyper bounds how long a request
//! may take to arrive (`header_read_timeout`), not how long a response may take to
//! leave; [`Deadline`] fails a write that makes no progress for `--write-timeout`, which
//! ends the connection.
//!
//! A WebSocket session takes the bare socket back after the upgrade
//! ([`Deadline::into_inner`]) and bounds its writes itself.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A byte stream whose writes fail after `limit` without progress.
#[derive(Debug)]
pub(crate) struct Deadline<S> {
    inner: S,
    limit: Duration,
    /// Armed when a write could not go on; disarmed by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> Deadline<S> {
    /// `inner` with writes bounded by `limit`.
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Deadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// The bare stream.
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }

    /// After a write that is not ready: fails once the stall lasts `limit`.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client accepted nothing for the write timeout",
        )))
    }

    fn progress<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => match self.poll_stall(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(poll, cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_without_progress_fails_after_the_limit() {
        // A peer that reads nothing: the pipe fills, then the write stalls.
        let (near, _far) = tokio::io::duplex(16);
        let mut io = Deadline::new(near, Duration::from_secs(5));
        io.write_all(&[0; 16]).await.expect("fits the pipe");
        let started = tokio::time::Instant::now();
        let error = io.write_all(&[0; 16]).await.expect_err("stalled");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
