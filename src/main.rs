//! The `trackgate` binary: parse the command line, run, map errors to exit
//! codes (1: runtime failure, 2: bad usage or config).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use trackgate::cli::{AuditCommand, Cli, Command, ServeArgs};
use trackgate::config::Config;

/// The gateway allocates per message and per request (frames, positions,
/// JSON answers) from many threads; mimalloc's thread-local free lists
/// serve that with less contention and fragmentation than glibc's arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Decode(args)) => {
            let mut stdin = std::io::stdin();
            let mut hex = args.messages;
            hex.extend(args.hex);
            match trackgate::decode::run(
                &args.protocol,
                args.transport.into(),
                &hex,
                args.raw,
                &mut stdin,
            ) {
                Ok(out) => {
                    for l in out.lines {
                        println!("{l}");
                    }
                    match out.error {
                        None => ExitCode::SUCCESS,
                        Some(e) => {
                            eprintln!("trackgate decode: {e}");
                            ExitCode::from(1)
                        }
                    }
                }
                Err(e) => {
                    eprintln!("trackgate decode: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Simulate(opts)) => simulate(opts),
        Some(Command::Audit {
            command: AuditCommand::Verify { expect },
        }) => audit_verify(
            cli.serve
                .data_dir
                .as_deref()
                .unwrap_or(std::path::Path::new("data")),
            expect.as_ref(),
        ),
        None => serve(cli.serve),
    }
}

fn simulate(opts: trackgate::simulate::SimOptions) -> ExitCode {
    init_tracing();
    let summary = format!(
        "simulating {} {} devices ({} packets/s each, {} records per packet, {} s)",
        opts.devices, opts.protocol, opts.rate, opts.records, opts.duration
    );
    let plan = match trackgate::simulate::Plan::new(opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("trackgate simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trackgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let s2 = stop.clone();
    let report = runtime.block_on(async move {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s2.cancel();
        });
        println!("{summary} against {}", plan.target());
        if let Some(f) = plan.clock_ahead() {
            println!(
                "note: the wire's time stamps carry whole seconds, so fix times run {f:.0}x ahead of the clock"
            );
        }
        trackgate::simulate::run(plan, stop).await
    });
    println!("{}", report.summary());
    if report.unacked > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(h) = args.http {
        config.http.listen = h;
    }
    for l in &args.listen {
        config.set_listen(l)?;
    }
    config.validate()?;
    Ok(config)
}

fn serve(args: ServeArgs) -> ExitCode {
    init_tracing();
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trackgate: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trackgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trackgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Handlers are installed before anything is announced: whoever reads the
    // listing may signal at once, and an uninstalled handler means death by
    // signal instead of a clean shutdown.
    let signals = Signals::install()?;
    let running = trackgate::app::start(&config)
        .await
        .context("start-up failed")?;
    if let Some(token) = &running.new_admin_token {
        println!(
            "admin token (shown once; only its hash is kept in {}): {token}",
            config.data_dir.display()
        );
    }
    println!(
        "trackgate {} listening:\n{}",
        env!("CARGO_PKG_VERSION"),
        running.listing()
    );
    tracing::info!(http = %running.http, "started");
    signals.wait().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT and SIGTERM, registered with the OS when created.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("TRACKGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TRACKGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `trackgate audit verify`: exit 0 when the chain is intact, 1 when broken.
fn audit_verify(
    dir: &std::path::Path,
    expect: Option<&trackgate::access::verify::Anchor>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trackgate audit verify: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        use trackgate::store::Store;
        if !dir.join("trackgate.db").exists() {
            eprintln!(
                "trackgate audit verify: no trackgate.db in {}",
                dir.display()
            );
            return ExitCode::from(2);
        }
        let store = match trackgate::store::SqliteStore::open_for_audit(dir).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("trackgate audit verify: {e}");
                return ExitCode::from(2);
            }
        };
        let entries = match store.all_log().await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("trackgate audit verify: {e}");
                return ExitCode::from(2);
            }
        };
        match trackgate::access::verify::verify_with(&entries, expect) {
            Ok(v) => {
                println!(
                    "access log intact: {} entries, head {} (keep it; `--expect` it next time)",
                    v.entries, v.head
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("access log BROKEN: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
