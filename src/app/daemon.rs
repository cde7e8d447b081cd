//! One run of `ring-bridge run`: decides the mode (Ring, simulator, demo),
//! builds the Ring client, the camera directory and the web server, and shuts
//! them down in order. `super::restart` loops over runs.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::AppError;
use super::account::{Account, AccountDeps, RingMode};
use super::directory::Directory;
use super::login::{Credentials, LoginStep, login};
use super::restart::{Carry, Restart};
use crate::base::error::chain;
use crate::codec::elements::Part;
use crate::config::Config;
use crate::events::push::{FcmConfig, PushRegistrar, SimTransportOptions, TransportChoice};
use crate::media::{Hub, HubOptions, Keeper};
use crate::ring::client::{RingClient, RingOptions};
use crate::ring::live::LiveOptions;
use crate::ring::state::TokenStore;
use crate::ring::{RingApi, RingHosts};
use crate::rtsp::{MountSpec, RtspHandle, RtspOptions, RtspServer};
use crate::web::{self, Metrics, PublicUrls, WebState};

use super::live::RingLiveOpener;
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
/// or by a restart request.
pub(super) async fn run_once(
    cfg: &Config,
    carry: &mut Carry,
    restart: Restart,
) -> Result<(), AppError> {
    let cancel = restart.token().clone();
    let mut cfg = cfg.clone();
    // A restart rebinds the RTSP port the previous run got (matters with port 0).
    cfg.rtsp.port = carry.rtsp_port.unwrap_or(cfg.rtsp.port);
    let mut state_dir = cfg.ring.state_dir.clone();
    let mut demo_sim = None;
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
            demo_sim = Some(sim);
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
    let account = Account::new(AccountDeps {
        mode: ring_mode,
        cfg: cfg.clone(),
        client: client.clone(),
        limiter: carry.limiter.clone(),
        restart: restart.clone(),
    });
    let ring: Arc<dyn RingApi> = Arc::new(client);

    let (directory, directory_task) = Directory::start(
        ring.clone(),
        cfg.ring.device_poll_interval,
        cfg.ring.location_ids.clone(),
        cancel.child_token(),
    );

    // The media hub: one Ring live call per camera, shared by every viewer.
    let opener = RingLiveOpener {
        ring: ring.clone(),
        signalling,
        opts: live_options(&cfg, on_simulator),
        session_cap: cfg.stream.session_cap,
    };
    let hub = Hub::new(
        Arc::new(opener),
        HubOptions {
            linger: cfg.stream.linger,
            renew_before: cfg.stream.renew_before,
            cap_file: Some(state_dir_used.join("session_caps.json")),
            ..HubOptions::default()
        },
        cancel.child_token(),
    );
    let keeper = Keeper::new(hub.clone());
    let whep_opts = whep_options(&cfg, carry.webrtc_udp.take()).await?;
    // The shared UDP port outlives the run; `restart::run_daemon` closes it.
    carry.webrtc_udp = whep_opts.shared_port.clone();
    let whep = crate::webrtc::WhepServer::new(whep_opts, hub.clone(), cancel.child_token());

    let rtsp = if cfg.rtsp.enabled {
        Some(start_rtsp(&cfg, &hub, &directory, &cancel).await?)
    } else {
        None
    };
    carry.rtsp_port = rtsp.as_ref().map(RtspHandle::port);

    let (listener, http_addr) =
        carry.http_listener(SocketAddr::new(cfg.network.listen_ip, cfg.http.port))?;
    let host_configured = cfg
        .network
        .announced_ip
        .is_some_and(|ip| !ip.is_unspecified())
        || !cfg.network.listen_ip.is_unspecified();
    let public_host = cfg
        .network
        .announced_ip
        .filter(|ip| !ip.is_unspecified())
        .or(Some(cfg.network.listen_ip).filter(|ip| !ip.is_unspecified()))
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let urls = Arc::new(std::sync::RwLock::new(PublicUrls {
        host: public_host,
        host_configured,
        http_port: http_addr.port(),
        rtsp_port: rtsp.as_ref().map(|r| r.port()),
    }));
    let outputs = MqttAndEvents::start(
        &cfg,
        OutputDeps {
            ring: ring.clone(),
            directory: directory.clone(),
            hub: hub.clone(),
            keeper: keeper.clone(),
            urls: urls.clone(),
            registrar,
            push: push_transport,
            state_dir: state_dir_used,
        },
    )
    .await?;
    let state = WebState {
        ring: ring.clone(),
        directory: directory.clone(),
        metrics: Arc::new(Metrics::default()),
        urls,
        hub: hub.clone(),
        keeper: keeper.clone(),
        logs: crate::base::logbuf::LogBuffer::global(),
        whep: whep.clone(),
        access: Arc::new(web::access::Access::from_config(&cfg)),
        account,
        degraded: Arc::new(degraded),
        push: outputs.push.status(),
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
    let served = web::serve(listener, web::router(state), serve_opts, cancel.clone()).await;

    // Shutdown order: intake stopped (serve returned), then background tasks.
    cancel.cancel();
    keeper.stop_all();
    whep.shutdown().await;
    if let Some(rtsp) = rtsp {
        rtsp.shutdown().await;
    }
    hub.shutdown().await;
    outputs.shutdown().await;
    let _ = directory_task.await;
    if let Some(sim) = demo_sim
        && let Err(e) = sim.join().await
    {
        warn!(err = %format!("{e:#}"), "built-in simulator stopped with an error");
    }
    if !restart.is_requested() {
        info!("ring-bridge stopped");
    }
    served.map_err(|source| AppError::Serve {
        what: "HTTP",
        source,
    })
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

/// Starts the RTSP server with one mount per camera known after the first
/// device load (bounded wait).
async fn start_rtsp(
    cfg: &Config,
    hub: &Hub,
    directory: &Directory,
    cancel: &CancellationToken,
) -> Result<RtspHandle, AppError> {
    let snap = directory
        .wait_loaded(std::time::Duration::from_secs(20))
        .await;
    if !snap.loaded {
        warn!("camera list not loaded yet; RTSP starts without camera mounts");
    }
    let mounts: Vec<MountSpec> = snap
        .cameras
        .iter()
        .map(|e| MountSpec {
            camera_id: e.camera.id.to_string(),
            slug: e.slug.clone(),
            device_id: e.camera.device_id.clone(),
        })
        .collect();
    let listen = SocketAddr::new(cfg.network.listen_ip, cfg.rtsp.port);
    let opts = RtspOptions {
        listen,
        username: cfg.rtsp.username.clone(),
        password: cfg.rtsp.password.clone(),
        describe_timeout: cfg.rtsp.describe_timeout,
        auth_failures_per_minute: cfg.limits.rtsp_auth_failures_per_minute,
        shared_media: cfg.rtsp.shared_media,
    };
    let handle = RtspServer::start(opts, hub.clone(), mounts, cancel.child_token())
        .map_err(AppError::Rtsp)?;
    let rtsp_addr = SocketAddr::new(cfg.network.listen_ip, handle.port());
    info!(%rtsp_addr, cameras = snap.cameras.len(), "RTSP server listening");
    Ok(handle)
}
