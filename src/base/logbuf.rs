//! In-memory capture of recent log lines for the browser console.
//!
//! [`LogBuffer`] keeps the last [`DEFAULT_CAPACITY`] formatted lines (time, level,
//! target, span scope, message, fields) in a ring and broadcasts each new line.
//! [`LogLayer`] is the `tracing_subscriber` layer that fills it; the web layer
//! (`web::logs`) serves the ring as JSON and as a Server-Sent Events stream.
//!
//! This module must not log (a line logged from inside the layer would recurse)
//! and never blocks: the lock is held only to push one line or to copy the ring.
//! It holds what the stderr log shows, so the same rule applies: no secrets in
//! log fields.
//!
//! ```
//! use ring_bridge::base::logbuf::LogBuffer;
//! use tracing_subscriber::prelude::*;
//!
//! let buf = LogBuffer::new(100);
//! let sub = tracing_subscriber::registry().with(buf.layer());
//! tracing::subscriber::with_default(sub, || tracing::info!(camera = 10001, "hello"));
//! let lines = buf.snapshot();
//! assert_eq!(lines[0].message, "hello");
//! assert_eq!(lines[0].fields, vec![("camera".to_string(), "10001".to_string())]);
//! ```

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use serde::ser::SerializeMap;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Lines kept by the process-wide buffer.
pub const DEFAULT_CAPACITY: usize = 2000;

/// Longest message or field value kept, in bytes; longer ones are cut (with `…`).
const MAX_VALUE_LEN: usize = 2048;

/// New lines a slow stream reader may fall behind before it is told it lagged.
const BROADCAST_CAPACITY: usize = 1024;

/// One captured log line.
#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    /// Increasing sequence number, starting at 1 for the first line of the process.
    pub seq: u64,
    /// UTC time, RFC 3339 with milliseconds.
    pub time: String,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    /// The event's target (usually the module path).
    pub target: String,
    /// The span scope, outermost first, like the stderr format:
    /// `ring_call{method=GET path=/x}:ring_session`. Empty outside spans.
    pub spans: String,
    /// The `message` field.
    pub message: String,
    /// The other fields in the order they were recorded, `Debug`-formatted
    /// (strings without quotes). Serialized as a JSON object.
    #[serde(serialize_with = "fields_as_map")]
    pub fields: Vec<(String, String)>,
}

impl LogLine {
    /// Severity rank: 1 = error … 5 = trace (smaller is more severe).
    pub fn rank(&self) -> u8 {
        level_rank(self.level)
    }
}

fn fields_as_map<S: serde::Serializer>(
    fields: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(fields.len()))?;
    for (k, v) in fields {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// Rank of a level name as used in [`LogLine::level`] (1 = error … 5 = trace);
/// 0 for an unknown name.
pub fn level_rank(level: &str) -> u8 {
    match level {
        "error" => 1,
        "warn" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        _ => 0,
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    next_seq: u64,
}

struct Inner {
    capacity: usize,
    boot: u32,
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<LogLine>>,
}

/// A bounded ring of recent log lines plus a broadcast of new ones. Cheap to
/// clone (an `Arc`).
#[derive(Clone)]
pub struct LogBuffer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

impl LogBuffer {
    /// An empty buffer keeping the last `capacity` lines (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        LogBuffer {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                boot: rand::random(),
                ring: Mutex::new(Ring {
                    lines: VecDeque::with_capacity(capacity.clamp(1, DEFAULT_CAPACITY)),
                    next_seq: 1,
                }),
                tx,
            }),
        }
    }

    /// The process-wide buffer ([`DEFAULT_CAPACITY`] lines) that
    /// [`crate::base::tracing_setup::install`] fills. Empty when tracing was set
    /// up some other way (e.g. in tests).
    pub fn global() -> LogBuffer {
        static GLOBAL: OnceLock<LogBuffer> = OnceLock::new();
        GLOBAL
            .get_or_init(|| LogBuffer::new(DEFAULT_CAPACITY))
            .clone()
    }

    /// A `tracing_subscriber` layer that appends every event it sees.
    pub fn layer(&self) -> LogLayer {
        LogLayer { buf: self.clone() }
    }

    /// Lines kept at most.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// A random id of this buffer (one per process for [`LogBuffer::global`]).
    /// Stream readers pair it with `seq` to notice a restarted daemon, whose
    /// `seq` starts again at 1.
    pub fn boot_id(&self) -> u32 {
        self.inner.boot
    }

    /// Appends a line, assigning its `seq`, and broadcasts it.
    pub fn push(&self, mut line: LogLine) {
        let mut ring = self
            .inner
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        line.seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.lines.len() >= self.inner.capacity {
            ring.lines.pop_front();
        }
        let line = Arc::new(line);
        ring.lines.push_back(line.clone());
        // Sent under the lock so `subscribe` sees each line exactly once. No
        // receivers is fine.
        let _ = self.inner.tx.send(line);
    }

    /// A copy of the lines kept, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<LogLine>> {
        let ring = self
            .inner
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.lines.iter().cloned().collect()
    }

    /// The lines kept (oldest first) and a receiver of every later line, taken
    /// atomically: no line is missed or seen twice between the two.
    pub fn subscribe(&self) -> (Vec<Arc<LogLine>>, broadcast::Receiver<Arc<LogLine>>) {
        let ring = self
            .inner
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rx = self.inner.tx.subscribe();
        (ring.lines.iter().cloned().collect(), rx)
    }
}

/// The layer behind [`LogBuffer::layer`]. Records span fields in the span's
/// extensions and formats each event into a [`LogLine`].
pub struct LogLayer {
    buf: LogBuffer,
}

/// A span's fields, formatted `k=v k2=v2`, kept in its extensions.
struct SpanFields(String);

impl<S> tracing_subscriber::Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut v = Collect::default();
        attrs.record(&mut v);
        span.extensions_mut().insert(SpanFields(v.joined()));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut v = Collect::default();
        values.record(&mut v);
        let more = v.joined();
        if more.is_empty() {
            return;
        }
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanFields>() {
            Some(SpanFields(s)) if !s.is_empty() => {
                s.push(' ');
                s.push_str(&more);
            }
            Some(SpanFields(s)) => *s = more,
            None => ext.insert(SpanFields(more)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut v = Collect::default();
        event.record(&mut v);
        let mut spans = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if !spans.is_empty() {
                    spans.push(':');
                }
                spans.push_str(span.name());
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>()
                    && !f.is_empty()
                {
                    let _ = write!(spans, "{{{f}}}");
                }
            }
        }
        let meta = event.metadata();
        self.buf.push(LogLine {
            seq: 0,
            time: now_rfc3339(),
            level: level_name(meta.level()),
            target: meta.target().to_owned(),
            spans,
            message: v.message,
            fields: v.fields,
        });
    }
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

/// Cuts `s` to at most [`MAX_VALUE_LEN`] bytes on a char boundary.
fn bounded(mut s: String) -> String {
    if s.len() > MAX_VALUE_LEN {
        let mut end = MAX_VALUE_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Field visitor: `message` apart, the rest in order.
#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(String, String)>,
}

impl Collect {
    fn joined(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            if !s.is_empty() {
                s.push(' ');
            }
            let _ = write!(s, "{k}={v}");
        }
        s
    }

    fn put(&mut self, field: &Field, value: String) {
        let value = bounded(value);
        if field.name() == "message" {
            self.message = value;
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    fn capture(buf: &LogBuffer, f: impl FnOnce()) {
        let sub = tracing_subscriber::registry().with(buf.layer());
        tracing::subscriber::with_default(sub, f);
    }

    #[test]
    fn formats_level_target_fields_and_spans() {
        let buf = LogBuffer::new(10);
        capture(&buf, || {
            let span = tracing::info_span!("camera", id = 10001, name = "Front Door");
            let _g = span.enter();
            let inner = tracing::debug_span!("live", session = tracing::field::Empty);
            inner.record("session", "abc");
            let _g2 = inner.enter();
            tracing::warn!(err = %"boom", attempt = 2, "call failed");
        });
        let l = &buf.snapshot()[0];
        assert_eq!(l.seq, 1);
        assert_eq!(l.level, "warn");
        assert_eq!(l.rank(), 2);
        assert_eq!(l.message, "call failed");
        assert!(l.target.ends_with("logbuf::tests"), "{}", l.target);
        assert_eq!(
            l.fields,
            vec![
                ("err".into(), "boom".into()),
                ("attempt".into(), "2".into())
            ]
        );
        assert_eq!(
            l.spans,
            "camera{id=10001 name=Front Door}:live{session=abc}"
        );
        assert!(l.time.ends_with('Z') && l.time.len() == 24, "{}", l.time);
        let json = serde_json::to_value(l.as_ref()).unwrap();
        assert_eq!(json["fields"]["attempt"], "2");
        assert_eq!(json["level"], "warn");
    }

    #[test]
    fn keeps_only_the_last_capacity_lines() {
        let buf = LogBuffer::new(3);
        capture(&buf, || {
            for i in 0..5 {
                tracing::info!(i, "line");
            }
        });
        let seqs: Vec<u64> = buf.snapshot().iter().map(|l| l.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(buf.capacity(), 3);
    }

    #[test]
    fn subscribe_sees_every_later_line_once() {
        let buf = LogBuffer::new(10);
        capture(&buf, || tracing::info!("before"));
        let (backlog, mut rx) = buf.subscribe();
        capture(&buf, || tracing::info!("after"));
        assert_eq!(backlog.len(), 1);
        let next = rx.try_recv().unwrap();
        assert_eq!((next.seq, next.message.as_str()), (2, "after"));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let buf = LogBuffer::new(2);
        let long = "é".repeat(MAX_VALUE_LEN);
        capture(&buf, || tracing::info!(v = %long, "{long}"));
        let l = &buf.snapshot()[0];
        assert!(l.message.len() <= MAX_VALUE_LEN + '…'.len_utf8());
        assert!(l.message.ends_with('…'));
        assert!(l.fields[0].1.ends_with('…'));
    }

    #[test]
    fn level_ranks() {
        assert!(level_rank("error") < level_rank("info"));
        assert_eq!(level_rank("nope"), 0);
    }
}
