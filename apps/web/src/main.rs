//! `forklift-web`: parse configuration, bind, build, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use forklift_config::WebConfig;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    forklift_serve::without_huge_pages();
    if let Err(e) = run().await {
        eprintln!("forklift-web: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cfg: WebConfig = match forklift_config::parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forklift-web: {e}");
            std::process::exit(2);
        }
    };
    forklift_config::init_logging(cfg.common.log_format, &cfg.common.log)?;
    // Before anything announces readiness: a SIGTERM from now on shuts down cleanly.
    let shutdown = forklift_serve::shutdown_signal();
    let http = TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("FORKLIFT_HTTP_ADDR: cannot listen on {}", cfg.http_addr))?;
    let grpc =
        match cfg.jobs_url {
            None => Some(TcpListener::bind(cfg.grpc_addr).await.with_context(|| {
                format!("FORKLIFT_GRPC_ADDR: cannot listen on {}", cfg.grpc_addr)
            })?),
            Some(_) => None,
        };
    let app = forklift_web::build(&cfg).await?;
    let http_addr = http.local_addr()?;
    match &grpc {
        Some(g) => {
            let grpc_addr = g.local_addr()?;
            println!(
                "Forklift {} is running in unified mode (web app, gRPC API and workers in one process).",
                env!("CARGO_PKG_VERSION")
            );
            println!("  Web:   http://{http_addr}  (health: http://{http_addr}/healthz)");
            println!("  gRPC:  {grpc_addr}  (try: grpcurl -plaintext {grpc_addr} list)");
            println!("  Data:  {}", cfg.common.data_dir.display());
        }
        None => {
            println!(
                "Forklift {} web app (extracted mode).",
                env!("CARGO_PKG_VERSION")
            );
            println!("  Web:   http://{http_addr}  (health: http://{http_addr}/healthz)");
            println!("  Jobs:  {}", cfg.jobs_url.as_deref().unwrap_or_default());
        }
    }
    if let Some(f) = app.admin_token_file() {
        println!(
            "  First start: sign in as admin@localhost with the password in {}",
            f.with_file_name("admin-password").display()
        );
        println!("  (an admin API token is in {})", f.display());
    }
    println!("Press Ctrl-C to stop.");
    forklift_web::serve(app, http, grpc, shutdown).await
}
