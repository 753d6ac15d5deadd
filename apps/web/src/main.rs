//! `forklift-web`: parse configuration, bind, build, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use forklift_config::WebConfig;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
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
    let http = TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("FORKLIFT_HTTP_ADDR: cannot listen on {}", cfg.http_addr))?;
    let grpc = TcpListener::bind(cfg.grpc_addr)
        .await
        .with_context(|| format!("FORKLIFT_GRPC_ADDR: cannot listen on {}", cfg.grpc_addr))?;
    let app = forklift_web::build(&cfg).await?;
    let (http_addr, grpc_addr) = (http.local_addr()?, grpc.local_addr()?);
    let data = cfg.common.data_dir.display();
    println!(
        "Forklift {} is running in unified mode (web app, gRPC API and workers in one process).",
        env!("CARGO_PKG_VERSION")
    );
    println!("  Web:   http://{http_addr}  (health: http://{http_addr}/healthz)");
    println!("  gRPC:  {grpc_addr}  (try: grpcurl -plaintext {grpc_addr} list)");
    println!("  Data:  {data}");
    if let Some(f) = app.admin_token_file() {
        println!(
            "  First start: an admin API token was written to {}",
            f.display()
        );
    }
    println!("Press Ctrl-C to stop.");
    forklift_web::serve(app, http, grpc, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
