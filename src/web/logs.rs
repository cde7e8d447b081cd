//! The server log for the console's Logs tab:
//! `GET /api/logs` (JSON) and `GET /api/logs/stream` (Server-Sent Events).
//!
//! Both read the [`LogBuffer`] in [`WebState::logs`]; neither logs per line it
//! sends (that would feed itself). The stream ends when the server shuts down
//! (the [`Shutdown`] extension), so an open browser tab never holds up a
//! graceful shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{ApiError, Shutdown, WebState};
use crate::base::logbuf::{LogLine, level_rank};

/// Lines `GET /api/logs` returns by default, and at most.
const DEFAULT_LIMIT: usize = 500;

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/logs", get(list))
        .route("/api/logs/stream", get(stream))
}

/// Parsed query: `level` (least severe level shown), `after` (only lines with a
/// larger `seq`) and, for the JSON list, `limit` (newest lines kept).
struct Filter {
    max_rank: u8,
    after: u64,
    limit: usize,
}

impl Filter {
    /// `boot` is [`crate::base::logbuf::LogBuffer::boot_id`]: a `Last-Event-ID`
    /// (`<boot hex>-<seq>`) from another boot means "everything".
    fn parse(
        q: &HashMap<String, String>,
        headers: &HeaderMap,
        boot: u32,
    ) -> Result<Filter, ApiError> {
        let max_rank = match q.get("level").map(|s| s.to_ascii_lowercase()) {
            None => level_rank("trace"),
            Some(l) => match level_rank(&l) {
                0 => {
                    return Err(ApiError::bad_request(format!(
                        "level={l:?} is invalid; allowed: error, warn, info, debug, trace"
                    )));
                }
                r => r,
            },
        };
        // `after` wins over the `Last-Event-ID` an EventSource sends when it
        // reconnects by itself; both mean "lines after this seq".
        let after_text = q.get("after").cloned().or_else(|| {
            let id = headers.get("last-event-id")?.to_str().ok()?;
            match id.split_once('-') {
                Some((b, seq)) if u32::from_str_radix(b, 16) == Ok(boot) => Some(seq.to_owned()),
                // Another boot of the daemon (or a foreign id): send everything.
                _ => None,
            }
        });
        let after = match after_text.filter(|s| !s.is_empty()) {
            None => 0,
            Some(s) => s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("after={s:?} is invalid; expected a line seq"))
            })?,
        };
        let limit = match q.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=crate::base::logbuf::DEFAULT_CAPACITY).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit={v:?} is invalid; allowed: an integer 1..={}",
                        crate::base::logbuf::DEFAULT_CAPACITY
                    )));
                }
            },
        };
        Ok(Filter {
            max_rank,
            after,
            limit,
        })
    }

    fn accepts(&self, l: &LogLine) -> bool {
        l.seq > self.after && l.rank() <= self.max_rank
    }
}

#[derive(serde::Serialize)]
struct ListBody<'a> {
    capacity: usize,
    lines: Vec<&'a LogLine>,
}

/// `GET /api/logs?level=info&limit=500&after=<seq>` →
/// `{"capacity": N, "lines": [LogLine, ...]}`, oldest first.
async fn list(
    State(st): State<WebState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let f = Filter::parse(&q, &headers, st.logs.boot_id())?;
    let mut lines: Vec<Arc<LogLine>> = st
        .logs
        .snapshot()
        .into_iter()
        .filter(|l| f.accepts(l))
        .collect();
    if lines.len() > f.limit {
        lines.drain(..lines.len() - f.limit);
    }
    let body = ListBody {
        capacity: st.logs.capacity(),
        lines: lines.iter().map(AsRef::as_ref).collect(),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// One `log` event; its id is `<boot hex>-<seq>` (see [`Filter::parse`]).
fn line_event(l: &LogLine, boot: u32) -> Event {
    Event::default()
        .event("log")
        .id(format!("{boot:08x}-{}", l.seq))
        .json_data(l)
        .unwrap_or_else(|_| Event::default().event("log").comment("unserializable line"))
}

/// `GET /api/logs/stream?level=info&after=<seq>`: an SSE stream of `log` events
/// (`id` = `<boot>-<seq>`, `data` = one [`LogLine`] as JSON): first the kept lines, then
/// each new one. A reader that falls too far behind gets a `lagged` event
/// `{"dropped": N}` and continues with the newest lines.
async fn stream(
    State(st): State<WebState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    shutdown: Option<Extension<Shutdown>>,
) -> Result<Response, ApiError> {
    let boot = st.logs.boot_id();
    let f = Arc::new(Filter::parse(&q, &headers, boot)?);
    let (backlog, rx) = st.logs.subscribe();
    let f2 = f.clone();
    let backlog = futures::stream::iter(
        backlog
            .into_iter()
            .filter(move |l| f2.accepts(l))
            .map(move |l| Ok::<_, Infallible>(line_event(&l, boot))),
    );
    let live = BroadcastStream::new(rx).filter_map(move |r| {
        let ev = match r {
            Ok(l) if f.accepts(&l) => Some(line_event(&l, boot)),
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(
                Event::default()
                    .event("lagged")
                    .data(format!("{{\"dropped\":{n}}}")),
            ),
        };
        futures::future::ready(ev.map(Ok::<_, Infallible>))
    });
    let cancel = shutdown.map(|Extension(Shutdown(c))| c).unwrap_or_default();
    let events = backlog
        .chain(live)
        .take_until(cancel.cancelled_owned())
        .boxed();
    Ok(sse(events).into_response())
}

fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Reverse proxies (nginx, HA ingress) must not buffer the stream.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: u32 = 0xabc;

    fn filter(pairs: &[(&str, &str)], last_id: Option<&str>) -> Result<Filter, ApiError> {
        let q = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut h = HeaderMap::new();
        if let Some(id) = last_id {
            h.insert("last-event-id", id.parse().unwrap());
        }
        Filter::parse(&q, &h, BOOT)
    }

    fn line(seq: u64, level: &'static str) -> LogLine {
        LogLine {
            seq,
            time: String::new(),
            level,
            target: "t".into(),
            spans: String::new(),
            message: "m".into(),
            fields: vec![],
        }
    }

    #[test]
    fn level_filter_keeps_that_level_and_more_severe() {
        let f = filter(&[("level", "INFO")], None).unwrap();
        assert!(f.accepts(&line(1, "error")));
        assert!(f.accepts(&line(1, "info")));
        assert!(!f.accepts(&line(1, "debug")));
        let all = filter(&[], None).unwrap();
        assert!(all.accepts(&line(1, "trace")));
    }

    #[test]
    fn after_and_last_event_id() {
        let f = filter(&[], Some("00000abc-7")).unwrap();
        assert!(!f.accepts(&line(7, "info")));
        assert!(f.accepts(&line(8, "info")));
        let f = filter(&[("after", "2")], Some("00000abc-7")).unwrap();
        assert!(f.accepts(&line(3, "info")), "query wins over the header");
        let f = filter(&[], Some("00000def-7")).unwrap();
        assert!(f.accepts(&line(1, "info")), "another boot: everything");
        let f = filter(&[], Some("7")).unwrap();
        assert!(f.accepts(&line(1, "info")), "foreign id: everything");
    }

    #[test]
    fn bad_values_are_400() {
        for q in [
            ("level", "loud"),
            ("after", "x"),
            ("limit", "0"),
            ("limit", "99999"),
        ] {
            let e = filter(&[q], None).err().expect("rejected");
            assert_eq!(e.kind, crate::base::ErrorKind::InvalidArgument, "{q:?}");
        }
    }
}
