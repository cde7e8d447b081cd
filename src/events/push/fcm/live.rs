//! The network half of [`super::FcmTransport`], compiled with the `fcm`
//! cargo feature: registration with FCM and the MCS connection, through the
//! `fcm-push-listener` crate. Untestable here (it needs Google's servers);
//! keep it thin.

use std::sync::Arc;

use fcm_push_listener::{Message, MessageStream, Registration, new_heartbeat_ack};
use futures::{Stream, StreamExt as _};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Mutex;

use super::FcmTransport;
use super::creds::{CredentialStore, FcmConfig, FcmCredentials, blocking};
use crate::events::push::transport::{PushConnection, PushError, PushItem, RawPush};

fn fcm_err(stage: &'static str) -> impl FnOnce(fcm_push_listener::Error) -> PushError {
    move |source| PushError::Fcm { stage, source }
}

fn corrupt(detail: String) -> PushError {
    PushError::CredentialsCorrupt {
        path: super::creds::FCM_CREDENTIALS_FILE.into(),
        detail,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn http() -> Result<reqwest013::Client, PushError> {
    reqwest013::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| fcm_err("http client")(fcm_push_listener::Error::Request("client", e)))
}

/// Registers a new installation with FCM using `config`.
pub(super) async fn register(config: &FcmConfig) -> Result<FcmCredentials, PushError> {
    let http = http()?;
    let reg = fcm_push_listener::register(
        &http,
        &config.app_id,
        &config.project_id,
        &config.api_key,
        None,
    )
    .await
    .map_err(fcm_err("register"))?;
    let registration =
        serde_json::to_value(&reg).map_err(|e| corrupt(format!("cannot serialize: {e}")))?;
    Ok(FcmCredentials {
        version: 1,
        project_id: config.project_id.clone(),
        app_id: config.app_id.clone(),
        fcm_token: reg.fcm_token,
        registration,
        persistent_ids: Vec::new(),
        created_at: unix_now(),
    })
}

/// Checks in with GCM and opens the MCS connection.
pub(super) async fn connect(t: &FcmTransport) -> Result<Box<dyn PushConnection>, PushError> {
    let (mut reg, ids) = {
        let slot = t.creds.lock().await;
        let c = slot
            .as_ref()
            .ok_or_else(|| corrupt("no credentials loaded".into()))?;
        let reg: Registration = serde_json::from_value(c.registration.clone())
            .map_err(|e| corrupt(format!("registration: {e}")))?;
        (reg, c.persistent_ids.clone())
    };
    let http = http()?;
    let session = reg.gcm.checkin(&http).await.map_err(fcm_err("checkin"))?;
    if session.changed(&reg.gcm) {
        reg.gcm = (*session).clone();
        let value = serde_json::to_value(&reg).map_err(|e| corrupt(e.to_string()))?;
        save_with(t, |c| c.registration = value).await?;
    }
    let conn = session
        .new_connection(ids)
        .await
        .map_err(fcm_err("connect"))?;
    Ok(Box::new(FcmConnection {
        stream: MessageStream::wrap(conn, &reg.keys),
        creds: t.creds.clone(),
        store: CredentialStore::open(&t.opts.state_dir)?,
    }))
}

/// Applies `f` to the cached credentials and saves them.
async fn save_with(t: &FcmTransport, f: impl FnOnce(&mut FcmCredentials)) -> Result<(), PushError> {
    let store = CredentialStore::open(&t.opts.state_dir)?;
    save_cached(&t.creds, &store, f).await
}

async fn save_cached(
    creds: &Arc<Mutex<Option<FcmCredentials>>>,
    store: &CredentialStore,
    f: impl FnOnce(&mut FcmCredentials),
) -> Result<(), PushError> {
    let snapshot = {
        let mut slot = creds.lock().await;
        let Some(c) = slot.as_mut() else {
            return Ok(());
        };
        f(c);
        c.clone()
    };
    let store = store.clone();
    blocking(move || store.save(&snapshot)).await
}

/// `S` is the crate's `MessageStream` over its TLS stream (named generically
/// so that we need no direct TLS dependency).
struct FcmConnection<S> {
    stream: S,
    creds: Arc<Mutex<Option<FcmCredentials>>>,
    store: CredentialStore,
}

#[async_trait::async_trait]
impl<S, W> PushConnection for FcmConnection<S>
where
    S: Stream<Item = Result<Message, fcm_push_listener::Error>>
        + std::ops::DerefMut<Target = W>
        + Unpin
        + Send,
    W: AsyncWrite + Unpin + Send,
{
    async fn next(&mut self) -> Result<Option<PushItem>, PushError> {
        loop {
            let Some(msg) = self.stream.next().await else {
                return Ok(None);
            };
            match msg.map_err(fcm_err("read"))? {
                Message::Data(d) => {
                    if let Some(pid) = d.persistent_id.as_deref() {
                        let pid = pid.to_owned();
                        // Losing this only means a possible re-delivery (de-duplicated).
                        if let Err(e) = save_cached(&self.creds, &self.store, |c| {
                            c.remember(&pid);
                        })
                        .await
                        {
                            tracing::warn!(err = %crate::base::error::chain(&e), "saving FCM persistent id failed");
                        }
                    }
                    let v: serde_json::Value =
                        serde_json::from_slice(&d.body).map_err(|e| PushError::Protocol {
                            detail: format!("FCM body is not JSON: {e}"),
                        })?;
                    let mut raw =
                        RawPush::from_fcm_body(&v).ok_or_else(|| PushError::Protocol {
                            detail: "FCM body has no `data` object".into(),
                        })?;
                    if raw.message_id.is_none() {
                        raw.message_id = d.persistent_id;
                    }
                    return Ok(Some(PushItem::Message(raw)));
                }
                Message::HeartbeatPing => {
                    self.stream
                        .write_all(&new_heartbeat_ack())
                        .await
                        .map_err(|e| {
                            fcm_err("heartbeat ack")(fcm_push_listener::Error::Socket(e))
                        })?;
                    return Ok(Some(PushItem::Heartbeat));
                }
                Message::Other(tag, _) => tracing::trace!(tag, "FCM non-data message"),
            }
        }
    }
}
