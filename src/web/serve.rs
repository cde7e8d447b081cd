//! The HTTP accept loop: one hyper connection task per client, with the
//! connection-level limits `axum::serve` lacks (`limits.http_header_timeout`,
//! `limits.http_idle_timeout`), so slow-header and idle clients cannot hold
//! connections (and memory) forever.
//!
//! Every connection task is owned by a `TaskTracker`; on shutdown the loop
//! stops accepting, asks each connection to finish gracefully (idle keep-alive
//! connections close at once) and waits for them, bounded.
//!
//! hyper answers a request it cannot parse (a 1 MB header, a request line
//! without a path) itself, with an empty 400/431, before any handler runs. The
//! connection's writer recognises such an answer — a 4xx/5xx head written
//! while no handler answer is pending — and sends the project's JSON error
//! shape in its place (see [`HyperErrors`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

/// Connection-level limits of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Longest time to receive a request's header section.
    pub header_timeout: Duration,
    /// A connection with no bytes read or written for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ServeOptions {
    /// 10 s for headers, 60 s idle (the `[limits]` defaults).
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// How long shutdown waits for open connections (a slow download) to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `cancel` fires, then drains connections.
/// Requests carry `ConnectInfo<SocketAddr>` like `into_make_service_with_connect_info`.
pub(super) async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    opts: ServeOptions,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let conns = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(err = %e, "accepting an HTTP connection failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        conns.spawn(connection(stream, peer, app.clone(), opts, cancel.clone()));
    }
    conns.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, conns.wait())
        .await
        .is_err()
    {
        debug!(
            open = conns.len(),
            "HTTP connections still open at shutdown; dropped"
        );
    }
    Ok(())
}

/// Serves one connection until it ends, idles out, or shutdown finishes it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    opts: ServeOptions,
    cancel: CancellationToken,
) {
    let activity = Arc::new(LastActivity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
        replacement: None,
    });
    let busy = Arc::clone(&activity);
    let answers = Arc::clone(&activity);
    let svc = app
        .map_request(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(axum::body::Body::new)
        })
        // A request being answered is not idleness, however long the
        // handler takes (a WHEP answer waits for the stream's first key
        // frame); the guard also counts down if the handler is dropped.
        .map_future(move |fut| {
            let guard = InFlight::enter(Arc::clone(&busy));
            let answers = Arc::clone(&answers);
            async move {
                let response = fut.await;
                answers.answered.fetch_add(1, Ordering::Relaxed);
                drop(guard);
                response
            }
        });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let mut tick = tokio::time::interval((opts.idle_timeout / 4).max(Duration::from_millis(250)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(%peer, err = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = cancel.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                if activity.in_flight() == 0 && activity.idle() >= opts.idle_timeout {
                    debug!(%peer, idle_s = opts.idle_timeout.as_secs(), "closing idle HTTP connection");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte, as milliseconds since it opened, how
/// many of its requests are being answered, and how many handler answers are
/// on their way to the wire.
struct LastActivity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Answers the service produced whose status line is not written yet.
    answered: AtomicUsize,
}

/// Counts one request as being answered until dropped.
struct InFlight(Arc<LastActivity>);

impl InFlight {
    fn enter(activity: Arc<LastActivity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl LastActivity {
    fn new() -> Self {
        LastActivity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
        }
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A TCP stream that records when bytes last went either way and puts
/// hyper's own error answers into the JSON shape.
struct Tracked {
    inner: TcpStream,
    activity: Arc<LastActivity>,
    /// A JSON error answer still to be written in place of hyper's.
    replacement: Option<HyperErrors>,
}

/// hyper's answer to a request it could not parse, rewritten.
///
/// hyper writes a response head only for an answer of the service, for an
/// interim `100 Continue`, or for its own parse errors (then it closes the
/// connection). So a write that starts with an HTTP/1 status line of 4xx or
/// 5xx while no service answer is pending is hyper's own: it is swallowed and
/// `{"error", "message"}` with the same status goes out instead.
struct HyperErrors {
    bytes: Vec<u8>,
    written: usize,
}

impl HyperErrors {
    /// The status of an HTTP/1 response head at the start of `data`.
    fn status_of(data: &[u8]) -> Option<u16> {
        let rest = data
            .strip_prefix(b"HTTP/1.1 ")
            .or_else(|| data.strip_prefix(b"HTTP/1.0 "))?;
        let code = std::str::from_utf8(rest.get(..3)?).ok()?;
        code.parse().ok()
    }

    /// Classifies a write: `Some(replacement)` when it is hyper's own error.
    fn check(activity: &LastActivity, data: &[u8]) -> Option<HyperErrors> {
        let status = Self::status_of(data)?;
        if status < 200 && status != 101 {
            return None; // 100 Continue; 101 is a handler's (WebSocket) answer
        }
        let ours = activity
            .answered
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if ours || status < 400 {
            return None;
        }
        let status = axum::http::StatusCode::from_u16(status).ok()?;
        let message = match status.as_u16() {
            431 => "request header section too large",
            400 => "malformed HTTP request (request line or header)",
            _ => status.canonical_reason().unwrap_or("error"),
        };
        let body = super::error::error_body(status, message).to_string();
        debug!(
            status = status.as_u16(),
            "HTTP request refused before routing"
        );
        let bytes = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        Some(HyperErrors { bytes, written: 0 })
    }
}

impl Tracked {
    /// Writes what is left of a replacement answer; `Ready(Ok)` once it is out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let Some(r) = self.replacement.as_mut() {
            if r.written == r.bytes.len() {
                self.replacement = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    r.written += n;
                    self.activity.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.poll_replacement(cx))?;
        if let Some(r) = HyperErrors::check(&self.activity, data) {
            self.replacement = Some(r);
            return Poll::Ready(Ok(data.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.poll_replacement(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(r) = HyperErrors::check(&self.activity, first)
        {
            self.replacement = Some(r);
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heads_without_a_pending_answer_are_rewritten() {
        let a = LastActivity::new();
        // hyper's own 431: rewritten, JSON body with the same status.
        let r = HyperErrors::check(&a, b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
            .expect("rewritten");
        let text = String::from_utf8(r.bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "headers_too_large");
        // A handler's 404 (one answer pending) passes, once.
        a.answered.store(1, Ordering::Relaxed);
        assert!(HyperErrors::check(&a, b"HTTP/1.1 404 Not Found\r\n").is_none());
        assert_eq!(a.answered.load(Ordering::Relaxed), 0);
        // Interim answers and bodies are never touched.
        assert!(HyperErrors::check(&a, b"HTTP/1.1 100 Continue\r\n\r\n").is_none());
        assert!(HyperErrors::check(&a, b"{\"error\":1}").is_none());
        assert!(HyperErrors::check(&a, b"HTTP/1.1 200 OK\r\n").is_none());
    }
}
