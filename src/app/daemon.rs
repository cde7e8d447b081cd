//! One run of `ring-bridge run`: decides the mode (Ring, simulator, demo),
//! builds the Ring client, the camera services and the outputs, and shuts them
//! down in order. `super::lifecycle` loops over runs.
//!
//! Every component a run starts is recorded in [`Started`] as soon as it runs,
//! so the ordered shutdown covers a start-up that fails half-way as well as a
//! normal stop: nothing started is left running.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::AppError;
use super::carry::Carry;
use super::restart::Restart;
use crate::base::error::chain;
use crate::cameras::{
    AccountOptions, Cameras, CamerasOptions, Credentials, Directory, DirectoryOptions, LoginStep,
    PublicUrls, RingMode, login,
};
use crate::codec::elements::Part;
use crate::config::Config;
use crate::events::push::{FcmConfig, PushRegistrar, SimTransportOptions, TransportChoice};
use crate::events::replay::{Replay, ReplayOptions};
use crate::media::{Hub, HubOptions, Keeper};
use crate::ring::client::{RingClient, RingOptions};
use crate::ring::live::{LiveOptions, RingOpener};
use crate::ring::state::TokenStore;
use crate::ring::{RingApi, RingHosts};
use crate::rtsp::{EventStreams, RtspHandle, RtspOptions, RtspServer};
use crate::web::{self, Metrics, WebState};

use super::mqtt_events::{Deps as OutputDeps, MqttAndEvents};

/// Where ring-bridge gets its Ring from.
enum Mode {
    /// The real Ring cloud.
    Ring,
    /// A simulator the user runs (`RING_SIMULATOR_URL`).
    Simulator(url::Url),
    /// No token anywhere: the built-in simulator, in-process.
    Demo,
}

fn has_saved_token(cfg: &Config) -> bool {
    cfg.ring.refresh_token.is_some() || TokenStore::has_saved_token(&cfg.ring.state_dir)
}

fn decide_mode(cfg: &Config) -> Mode {
    match &cfg.ring.simulator_url {
        Some(u) => Mode::Simulator(u.clone()),
        None if has_saved_token(cfg) => Mode::Ring,
        None => Mode::Demo,
    }
}

/// Runs the daemon until the run's token (`restart`) is cancelled: by shutdown
/// or by a restart request. Whether it served or failed to start, everything it
/// started is stopped and joined before it returns.
pub(super) async fn run_once(
    cfg: &Config,
    carry: &mut Carry,
    restart: Restart,
) -> Result<(), AppError> {
    let mut started = Started::default();
    let result = start_and_serve(cfg, carry, &restart, &mut started).await;
    if result.is_err() {
        // The error itself is reported once, by the caller.
        info!("the run failed; stopping what it started");
    }
    started.shutdown(restart.token()).await;
    if result.is_err() {
        info!("everything the failed run started has stopped");
    } else if !restart.is_requested() {
        info!("ring-bridge stopped");
    }
    result
}

/// What one run has started so far, in start order.
#[derive(Default)]
pub(super) struct Started {
    /// The built-in simulator (demo mode).
    pub(super) sim: Option<crate::sim::SimHandle>,
    /// Directory, URLs, account.
    pub(super) cameras: Option<Cameras>,
    /// The media hub.
    pub(super) hub: Option<Hub>,
    /// Bounded stream holds.
    pub(super) keeper: Option<Keeper>,
    /// Browser WebRTC.
    pub(super) whep: Option<crate::webrtc::WhepServer>,
    /// Announcements on camera speakers.
    pub(super) announcer: Option<crate::announce::Announcer>,
    /// The RTSP server.
    pub(super) rtsp: Option<RtspHandle>,
    /// Event intake and MQTT.
    pub(super) outputs: Option<MqttAndEvents>,
}

impl Started {
    /// The ordered shutdown over whatever was started: cancel the run (intake
    /// stops), end media (holds, browser sessions, RTSP, Ring calls), then MQTT
    /// (`offline`), the camera services and the simulator, each joined.
    pub(super) async fn shutdown(self, run: &CancellationToken) {
        run.cancel();
        if let Some(keeper) = &self.keeper {
            keeper.shutdown().await;
        }
        if let Some(whep) = self.whep {
            whep.shutdown().await;
        }
        if let Some(announcer) = self.announcer {
            announcer.shutdown().await;
        }
        if let Some(rtsp) = self.rtsp {
            rtsp.shutdown().await;
        }
        if let Some(hub) = self.hub {
            hub.shutdown().await;
        }
        if let Some(outputs) = self.outputs {
            outputs.shutdown().await;
        }
        if let Some(cameras) = self.cameras {
            cameras.shutdown().await;
        }
        if let Some(sim) = self.sim
            && let Err(e) = sim.join().await
        {
            warn!(err = %format!("{e:#}"), "built-in simulator stopped with an error");
        }
    }
}

/// Starts the run's components one by one, recording each in `started`, then
/// serves HTTP until the run's token is cancelled. Returns at the first
/// failure; the caller shuts down what was started either way.
pub(super) async fn start_and_serve(
    cfg: &Config,
    carry: &mut Carry,
    restart: &Restart,
    started: &mut Started,
) -> Result<(), AppError> {
    let cancel = restart.token().clone();
    let mut cfg = cfg.clone();
    // A restart rebinds the RTSP port the previous run got (matters with port 0).
    cfg.rtsp.port = carry.rtsp_port.unwrap_or(cfg.rtsp.port);
    let mut state_dir = cfg.ring.state_dir.clone();
    let mode = decide_mode(&cfg);
    let on_simulator = !matches!(mode, Mode::Ring);
    let ring_mode = match mode {
        Mode::Ring => RingMode::Ring,
        Mode::Simulator(_) => RingMode::Simulator,
        Mode::Demo => RingMode::Demo,
    };
    let elements = crate::codec::elements::check();
    if matches!(mode, Mode::Demo) {
        let missing = elements.lines_for(Part::Simulator);
        if !missing.is_empty() {
            return Err(AppError::MissingElements(missing));
        }
    }
    let degraded = elements.degraded(&crate::codec::elements::DAEMON_PARTS);
    for d in &degraded {
        for line in elements.lines_for(d.part) {
            warn!(part = %d.part, "{line}");
        }
    }
    let mut push_sim: Option<url::Url> = None;
    let (hosts, auto_login) = match mode {
        Mode::Ring => (RingHosts::real(), false),
        Mode::Simulator(url) => {
            info!(simulator = %url, "using the Ring simulator instead of Ring");
            push_sim = Some(url.clone());
            let auto = carry.sim_auto_login && !has_saved_token(&cfg);
            (RingHosts::simulator(&url), auto)
        }
        Mode::Demo => {
            let sim = crate::sim::Simulator::start(
                crate::sim::SimOptions::default(),
                SocketAddr::from(([127, 0, 0, 1], 0)),
                cancel.child_token(),
            )
            .await
            .map_err(AppError::Simulator)?;
            // Keep the demo account's tokens apart from a real account's.
            state_dir = state_dir.join("demo");
            info!(
                simulator = %sim.url(),
                "demo mode: no Ring token found, running on the built-in Ring simulator; \
                 sign in from the console (account pill) or run `ring-bridge auth` to connect your Ring account"
            );
            let hosts = RingHosts::simulator(&sim.url());
            push_sim = Some(sim.url());
            started.sim = Some(sim);
            (hosts, true)
        }
    };

    let state_dir_used = state_dir.clone();
    let mut opts = RingOptions::new(hosts, state_dir);
    opts.refresh_token_override = cfg.ring.refresh_token.clone();
    opts.device_model = cfg.ring.device_name.clone();
    opts.cancel = cancel.child_token();
    let client = RingClient::new(opts)?;
    let signalling = client.hosts().signalling.clone();
    let push_transport = match &push_sim {
        Some(url) => TransportChoice::Simulator(SimTransportOptions::new(url.clone())),
        None => TransportChoice::Fcm(FcmConfig::ring_android()),
    };
    let registrar: Arc<dyn PushRegistrar> = Arc::new(client.clone());
    if auto_login && let Err(e) = simulator_login(&client).await {
        warn!(err = %chain(&e), "logging in to the simulator's demo account failed");
    }
    let ring: Arc<dyn RingApi> = Arc::new(client.clone());

    let (listener, http_addr) =
        carry.http_listener(SocketAddr::new(cfg.network.listen_ip, cfg.http.port))?;
    let cameras = started.cameras.insert(Cameras::start(
        CamerasOptions {
            directory: DirectoryOptions {
                poll_interval: cfg.ring.device_poll_interval,
                location_ids: cfg.ring.location_ids.clone(),
            },
            urls: public_urls(&cfg, http_addr.port()),
            account: AccountOptions {
                mode: ring_mode,
                login_target: if cfg.ring.simulator_url.is_some() {
                    RingMode::Simulator
                } else {
                    RingMode::Ring
                },
                token_from_env: cfg.ring.refresh_token.is_some(),
                login: super::auth::login_options(&cfg),
            },
        },
        ring.clone(),
        client,
        carry.limiter.clone(),
        &cancel,
    ));
    let directory = cameras.directory.clone();
    let urls = cameras.urls.clone();
    let account = cameras.account.clone();
    let account_changes = cameras.account_changes.clone();

    // The media hub: one Ring live call per camera, shared by every viewer.
    let opener = RingOpener {
        ring: ring.clone(),
        signalling,
        opts: live_options(&cfg, on_simulator),
    };
    let hub = started
        .hub
        .insert(Hub::new(
            Arc::new(opener),
            HubOptions {
                linger: cfg.stream.linger,
                renew_before: cfg.stream.renew_before,
                cap_file: Some(state_dir_used.join("session_caps.json")),
                ..HubOptions::default()
            },
            cancel.child_token(),
        ))
        .clone();
    let keeper = started
        .keeper
        .insert(Keeper::new(hub.clone(), cancel.child_token()))
        .clone();
    let whep_opts = whep_options(&cfg, carry.webrtc_udp.take()).await?;
    // The shared UDP port outlives the run; `lifecycle::run_daemon` closes it.
    carry.webrtc_udp = whep_opts.shared_port.clone();
    let whep = started
        .whep
        .insert(crate::webrtc::WhepServer::new(
            whep_opts,
            hub.clone(),
            cancel.child_token(),
        ))
        .clone();
    let announcer = started
        .announcer
        .insert(crate::announce::Announcer::new(
            hub.clone(),
            crate::announce::AnnounceOptions::default(),
            cancel.child_token(),
        ))
        .clone();

    // Which recording each camera's event stream plays (RTSP, REST, MQTT).
    let replay = Replay::new(
        ring.clone(),
        ReplayOptions {
            loop_default: cfg.rtsp.event_loop,
            ..ReplayOptions::default()
        },
    );
    carry.rtsp_port = if cfg.rtsp.enabled {
        let rtsp = start_rtsp(&cfg, &hub, &directory, &replay, &cancel)?;
        Some(started.rtsp.insert(rtsp).port())
    } else {
        None
    };
    urls.set_rtsp_port(carry.rtsp_port);
    let outputs = MqttAndEvents::start(
        &cfg,
        OutputDeps {
            ring: ring.clone(),
            directory: directory.clone(),
            hub: hub.clone(),
            keeper: keeper.clone(),
            urls: urls.clone(),
            replay: replay.clone(),
            registrar,
            push: push_transport,
            state_dir: state_dir_used,
            announce: announcer.clone(),
        },
        &cancel,
    )
    .await?;
    let push_status = started.outputs.insert(outputs).push.status();
    let state = WebState {
        ring: ring.clone(),
        directory: directory.clone(),
        metrics: Arc::new(Metrics::default()),
        urls,
        hub: hub.clone(),
        keeper: keeper.clone(),
        replay,
        logs: crate::base::logbuf::LogBuffer::global(),
        whep: whep.clone(),
        access: Arc::new(web::access::Access::new(access_options(&cfg))),
        announce: announcer.clone(),
        account,
        degraded: Arc::new(degraded),
        push: push_status,
        guard: Arc::new(web::guard::Guard::new(
            &cfg.http.allowed_hosts,
            cfg.http.ingress_proxy,
        )),
        max_body_bytes: cfg.limits.http_max_body_bytes,
    };
    info!(%http_addr, access = %state.access.describe(), "HTTP API listening");
    let serve_opts = web::ServeOptions {
        header_timeout: cfg.limits.http_header_timeout,
        idle_timeout: cfg.limits.http_idle_timeout,
    };
    let (served, ()) = tokio::join!(
        web::serve(listener, web::router(state), serve_opts, cancel.clone()),
        restart.on_account_change(account_changes),
    );
    // The caller's `Started::shutdown` stops the rest, in order.
    served.map_err(|source| AppError::Serve {
        what: "HTTP",
        source,
    })
}

/// The public URLs before RTSP starts: the announced address, else a specific
/// listen address, else 127.0.0.1 (then answers use the client's host name).
fn public_urls(cfg: &Config, http_port: u16) -> PublicUrls {
    let host_configured = cfg
        .network
        .announced_ip
        .is_some_and(|ip| !ip.is_unspecified())
        || !cfg.network.listen_ip.is_unspecified();
    let host = cfg
        .network
        .announced_ip
        .filter(|ip| !ip.is_unspecified())
        .or(Some(cfg.network.listen_ip).filter(|ip| !ip.is_unspecified()))
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    PublicUrls {
        host,
        host_configured,
        http_port,
        rtsp_port: None,
    }
}

/// Who may use the console and API (`[http]`, `network.listen_ip`);
/// [`Config::check_access`] has vetted the combination.
fn access_options(cfg: &Config) -> web::access::AccessOptions {
    web::access::AccessOptions {
        username: cfg.http.username.clone(),
        password: cfg.http.password.clone(),
        api_token: cfg.http.api_token.clone(),
        listen_ip: cfg.network.listen_ip,
        allow_unauthenticated: cfg.http.allow_unauthenticated,
        ingress_proxy: cfg.http.ingress_proxy,
    }
}

/// Logs in to a simulator's demo account (password grant, then the 2FA code).
async fn simulator_login(client: &RingClient) -> Result<(), crate::ring::Error> {
    use crate::base::Secret;
    use crate::sim::{DEMO_2FA_CODE, DEMO_EMAIL, DEMO_PASSWORD};
    let mut creds = Credentials {
        email: DEMO_EMAIL.to_owned(),
        password: Secret::new(DEMO_PASSWORD.to_owned()),
        code: None,
    };
    if login(client, &creds).await? != LoginStep::Linked {
        creds.code = Some(Secret::new(DEMO_2FA_CODE.to_owned()));
        login(client, &creds).await?;
    }
    info!("logged in to the simulator's demo account");
    Ok(())
}

/// Live-call options from the configuration. Against a simulator on this
/// machine, ICE needs loopback candidates and no STUN.
fn live_options(cfg: &Config, on_simulator: bool) -> LiveOptions {
    let mut o = LiveOptions {
        talk_payload_type: cfg.webrtc.talk_payload_type,
        talk_ssrc: cfg.webrtc.talk_ssrc,
        talkback: true,
        session_cap: Some(cfg.stream.session_cap),
        h265: cfg.stream.h265,
        ..LiveOptions::default()
    };
    // A specific LAN address pins the call's ICE to that interface. A loopback
    // listener says nothing about the route to Ring (nor is 127.0.0.2 an
    // interface address: filtering on it would leave no candidate at all).
    let ip = cfg.network.listen_ip;
    if !ip.is_unspecified() && !ip.is_loopback() {
        o.ice_ips = vec![ip];
    }
    if on_simulator {
        o.ice_servers.clear();
        o.include_loopback = true;
    }
    o
}

/// WHEP (browser WebRTC) options from the configuration, binding the shared UDP
/// port when one is configured (or reusing the one a previous run bound). A
/// loopback listen address needs loopback candidates.
async fn whep_options(
    cfg: &Config,
    bound: Option<crate::webrtc::SharedUdpPort>,
) -> Result<crate::webrtc::WhepOptions, AppError> {
    let shared_port = match cfg.webrtc.udp_port {
        Some(_) if bound.is_some() => bound,
        Some(port) => {
            let addr = SocketAddr::new(cfg.network.listen_ip, port);
            let bound = crate::webrtc::SharedUdpPort::bind(addr)
                .await
                .map_err(|source| AppError::Bind {
                    what: "WebRTC (UDP)",
                    addr,
                    source,
                })?;
            info!(webrtc_udp_addr = %bound.local_addr(), "browser WebRTC uses one UDP port");
            Some(bound)
        }
        None => None,
    };
    Ok(crate::webrtc::WhepOptions {
        listen_ip: cfg.network.listen_ip,
        announced_ip: cfg.network.announced_ip,
        udp_ports: (cfg.webrtc.min_port, cfg.webrtc.max_port),
        shared_port,
        include_loopback: cfg.network.listen_ip.is_loopback(),
        max_sessions: cfg.webrtc.max_sessions,
        h265: cfg.stream.h265,
        talk_floor: match cfg.webrtc.talk_floor {
            crate::config::TalkFloorMode::Voice => crate::webrtc::TalkFloor::Voice,
            crate::config::TalkFloorMode::Explicit => crate::webrtc::TalkFloor::Explicit,
        },
        sdp_limits: crate::webrtc::SdpLimits {
            max_bytes: cfg.limits.whep_max_offer_bytes,
            max_lines: cfg.limits.whep_max_offer_lines,
        },
        ..crate::webrtc::WhepOptions::default()
    })
}

/// Starts the RTSP server; its paths (live, and the event stream of every
/// camera with recordings) follow the camera directory (no wait for the first
/// load).
fn start_rtsp(
    cfg: &Config,
    hub: &Hub,
    directory: &Directory,
    replay: &Replay,
    cancel: &CancellationToken,
) -> Result<RtspHandle, AppError> {
    let listen = SocketAddr::new(cfg.network.listen_ip, cfg.rtsp.port);
    let opts = RtspOptions {
        listen,
        username: cfg.rtsp.username.clone(),
        password: cfg.rtsp.password.clone(),
        describe_timeout: cfg.rtsp.describe_timeout,
        auth_failures_per_minute: cfg.limits.rtsp_auth_failures_per_minute,
        describe_waiters: cfg.limits.rtsp_describe_waiters,
        shared_media: cfg.rtsp.shared_media,
    };
    let events = EventStreams {
        replay: replay.clone(),
        timeout: cfg.rtsp.describe_timeout,
    };
    let handle = RtspServer::start_with_events(
        opts,
        hub.clone(),
        directory.clone(),
        Some(events),
        cancel.child_token(),
    )
    .map_err(AppError::Rtsp)?;
    let rtsp_addr = SocketAddr::new(cfg.network.listen_ip, handle.port());
    info!(%rtsp_addr, "RTSP server listening");
    Ok(handle)
}
