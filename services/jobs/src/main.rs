//! `forklift-jobs`: parse configuration, bind, build, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use forklift_config::JobsConfig;
use forklift_host::{JobsHost, Listeners, Roles};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    forklift_host::without_huge_pages();
    if let Err(e) = run().await {
        eprintln!("forklift-jobs: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cfg: JobsConfig = match forklift_config::parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forklift-jobs: {e}");
            std::process::exit(2);
        }
    };
    forklift_config::init_logging(cfg.common.log_format, &cfg.common.log)?;
    // Before anything announces readiness: a SIGTERM from now on shuts down cleanly.
    let shutdown = forklift_host::shutdown_signal();
    if cfg.migrate_only {
        forklift_store::Store::open(&cfg.common.database_url())
            .await
            .context("FORKLIFT_DATABASE_URL: cannot open the database")?
            .close()
            .await;
        println!(
            "Forklift jobs service {}: migrations applied.",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    let roles = Roles::from(cfg.role);
    let grpc =
        if roles.api {
            Some(TcpListener::bind(cfg.grpc_addr).await.with_context(|| {
                format!("FORKLIFT_GRPC_ADDR: cannot listen on {}", cfg.grpc_addr)
            })?)
        } else {
            None
        };
    let http = TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("FORKLIFT_HTTP_ADDR: cannot listen on {}", cfg.http_addr))?;
    let host = JobsHost::build(&cfg.common, roles.api).await?;
    println!(
        "Forklift jobs service {} ({:?} role).",
        env!("CARGO_PKG_VERSION"),
        cfg.role
    );
    if let Some(g) = &grpc {
        println!("  gRPC:  {}", g.local_addr()?);
    }
    println!(
        "  HTTP:  http://{}  (/healthz, /readyz, /metrics)",
        http.local_addr()?
    );
    if let Some(f) = host.admin_token_file() {
        println!(
            "  First start: an admin API token was written to {}",
            f.display()
        );
    }
    host.run(Listeners { grpc, http }, roles, shutdown).await
}
