//! The `ring-bridge` command line: `run` (default), `sim`, `auth`, `check-config`,
//! `doctor`, `healthcheck`, `bench`.
//!
//! Only CLI parsing, config loading, signal handling and exit codes live here;
//! the work is in `ring_bridge::app`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use ring_bridge::app;
use ring_bridge::config;

/// Bridges Ring doorbells and cameras into the home: WebRTC console, RTSP, MQTT
/// with Home Assistant discovery.
#[derive(Parser)]
#[command(name = "ring-bridge", version, about)]
struct Cli {
    /// Configuration file (TOML). Default: none (defaults + environment).
    #[arg(long, global = true, env = "RING_BRIDGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default). Without a Ring token it runs in demo mode
    /// on the built-in simulator.
    Run,
    /// Run the Ring cloud simulator standalone.
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Live-session cap (e.g. "600s", "20s").
        #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
        session_cap: std::time::Duration,
        /// Directory of H.264 MP4 files; each becomes an extra simulated camera.
        #[arg(long)]
        media: Option<PathBuf>,
        /// Extra wired cameras streaming the generated clip (ids from 10301), for
        /// benchmarks.
        #[arg(long, default_value_t = 0)]
        cameras: usize,
        /// Stamp every live video frame with an SEI (frame counter + send time)
        /// for `ring-bridge bench`.
        #[arg(long)]
        stamp_frames: bool,
        /// Lose the first transmission of every N-th live video packet (its
        /// retransmission after a NACK gets through), to see loss recovery.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
        video_loss_every: Option<u32>,
        /// Opus packets the cameras send back to back each time audio is due
        /// (1: Ring's one per 20 ms; N: N every N × 20 ms; 0: no audio). For
        /// measurements only (`bench --sim-audio-per-send`).
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(0..=10))]
        audio_per_send: u32,
        /// Origin of the URLs the simulator hands out (recordings, thumbnails),
        /// e.g. "https://ring.example:8443/" behind a TLS reverse proxy. Default:
        /// from Forwarded / X-Forwarded-Proto / Host.
        #[arg(long)]
        public_url: Option<url::Url>,
        /// Serve clients API calls without a prior `POST /clients_api/session`
        /// (Ring and the default refuse them with a 404 naming the hardware id).
        #[arg(long)]
        no_session_required: bool,
        /// How long a requested snapshot (`snapshots/timestamps`) takes, e.g. "1s".
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        snapshot_delay: std::time::Duration,
    },
    /// Log in to Ring interactively (e-mail, password, 2FA code) and store the
    /// refresh token in the state directory.
    Auth {
        /// E-mail (prompted when absent).
        #[arg(long)]
        email: Option<String>,
    },
    /// Load and validate the configuration, print it with secrets redacted.
    CheckConfig,
    /// Check everything ring-bridge needs (configuration, GStreamer elements
    /// with the Debian package for each, state directory, tools) and print
    /// each check with ✓/✗. Exits 1 when the daemon lacks something.
    Doctor,
    /// Ask the running daemon's `/healthz` on the port of the effective
    /// configuration (file + environment, as `run` reads them); exit 0 when
    /// healthy, 1 otherwise. For container health checks.
    Healthcheck {
        /// How long to wait for the answer.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Benchmark: simulator + daemon as child processes, RTSP and WebRTC viewers,
    /// latency / CPU / memory report (see docs/PERFORMANCE.md).
    Bench(ring_bridge::bench::BenchOptions),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Before any TLS connection (matters only with the `fcm` feature).
    ring_bridge::base::tls::install_default_provider();
    ring_bridge::base::tracing_setup::install();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(cli));
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            let cfg = config::load(cli.config.as_deref())?;
            if let Err(e) = cfg.check_access() {
                eprintln!("warning: `ring-bridge run` would refuse to start: {e}");
            }
            let elements = ring_bridge::codec::elements::check();
            for d in elements.degraded(&ring_bridge::codec::elements::DAEMON_PARTS) {
                for line in elements.lines_for(d.part) {
                    eprintln!("warning: {line}");
                }
            }
            println!("# effective configuration (secrets redacted)");
            print!("{}", cfg.to_redacted_toml());
            Ok(())
        }
        Command::Doctor => {
            let report = app::doctor::diagnose(&config::load(cli.config.as_deref()));
            print!("{}", report.text);
            if report.ok {
                Ok(())
            } else {
                anyhow::bail!("ring-bridge lacks something it needs (the ✗ lines above)")
            }
        }
        Command::Healthcheck { timeout } => {
            let cfg = config::load(cli.config.as_deref())?;
            app::healthcheck::check(&cfg, timeout).await?;
            Ok(())
        }
        Command::Run => {
            let cfg = config::load(cli.config.as_deref())?;
            let cancel = shutdown_on_signals();
            Ok(app::run_daemon(cfg, cancel).await?)
        }
        Command::Sim {
            listen,
            session_cap,
            media,
            cameras,
            stamp_frames,
            video_loss_every,
            audio_per_send,
            public_url,
            no_session_required,
            snapshot_delay,
        } => {
            let cancel = shutdown_on_signals();
            let mut opts = ring_bridge::sim::SimOptions {
                session_cap,
                media_dir: media,
                extra_cameras: cameras,
                public_url,
                require_session: !no_session_required,
                snapshot_delay,
                ..Default::default()
            };
            opts.live.stamp_frames = stamp_frames;
            opts.live.video_loss_every = video_loss_every;
            opts.live.audio_per_send = audio_per_send;
            app::run_simulator(listen, opts, cancel).await
        }
        Command::Bench(opts) => {
            let report = ring_bridge::bench::run(opts, shutdown_on_signals()).await?;
            println!("{report}");
            Ok(())
        }
        Command::Auth { email } => {
            let cfg = config::load(cli.config.as_deref())?;
            app::auth::interactive(cfg, email).await
        }
    }
}

/// First SIGINT/SIGTERM cancels the returned token (graceful shutdown); a second
/// one exits at once.
fn shutdown_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(err = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                tracing::info!("shutting down; send the signal again to exit immediately");
                c.cancel();
            } else {
                tracing::warn!("second signal: exiting immediately");
                std::process::exit(130);
            }
        }
    });
    cancel
}
