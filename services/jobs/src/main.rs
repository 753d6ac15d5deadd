//! `forklift-jobs`: parse configuration, bind, build, serve until Ctrl-C or SIGTERM;
//! or run one of the operators' commands (`forklift-jobs admin …`) and exit.

use anyhow::Context;
use forklift_config::{AdminCommand, JobsCommand, JobsConfig};
use forklift_host::{Duties, JobsHost, Listeners};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    forklift_serve::without_huge_pages();
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
    if let Some(JobsCommand::Admin(command)) = &cfg.command {
        // An operator's terminal: PostgreSQL's notices (e.g. "relation already exists,
        // skipping" from the migrations check) are not news there.
        forklift_config::init_logging(
            cfg.common.log_format,
            &format!("{},sqlx=warn", cfg.common.log),
        )?;
        return admin(&cfg, command).await;
    }
    forklift_config::init_logging(cfg.common.log_format, &cfg.common.log)?;
    // Before anything announces readiness: a SIGTERM from now on shuts down cleanly.
    let shutdown = forklift_serve::shutdown_signal();
    if cfg.migrate_only {
        forklift_db::Db::open(&cfg.common.database_url())
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
    let roles = Duties::from(cfg.role);
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
    // No first admin here: a deployment's processes have no disk to leave its
    // credentials on for the operator; `forklift-jobs admin create-user` makes one.
    let host = JobsHost::build(&cfg.common, false).await?;
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
    if roles.api && host.accounts().count_users().await? == 0 {
        println!(
            "  No accounts yet: create the first admin with \
             `forklift-jobs admin create-user --email YOU --admin`"
        );
    }
    host.run(Listeners { grpc, http }, roles, shutdown).await
}

/// `forklift-jobs admin …`: secrets go to standard output alone (so scripts can take
/// them), explanations to standard error.
async fn admin(cfg: &JobsConfig, command: &AdminCommand) -> anyhow::Result<()> {
    use forklift_host::accounts;
    if let AdminCommand::Migrate {
        from_database,
        from_storage,
        to_database,
        to_storage,
        dry_run,
    } = command
    {
        let args = forklift_host::migrate::MigrateArgs {
            from_database: from_database.clone(),
            from_storage: from_storage.clone(),
            to_database: to_database.clone(),
            to_storage: to_storage.clone(),
            dry_run: *dry_run,
        };
        forklift_host::migrate::migrate(&args, |line| eprintln!("{line}")).await?;
        return Ok(());
    }
    let accounts = forklift_accounts::Accounts::open(&cfg.common.database_url())
        .await
        .context("FORKLIFT_DATABASE_URL: cannot open the database")?;
    let result = match command {
        AdminCommand::CreateUser {
            email,
            admin,
            password_stdin,
        } => {
            let password = if *password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            match accounts::create_user(&accounts, email, *admin, password.as_deref()).await? {
                None => Err(anyhow::anyhow!("an account {email:?} exists already")),
                Some(created) => {
                    let role = if *admin { "admin" } else { "user" };
                    eprintln!("Created {role} account {}.", created.user.email);
                    if let Some(password) = created.password {
                        eprintln!("Its password (shown once; sign in and keep it safe):");
                        println!("{password}");
                    }
                    Ok(())
                }
            }
        }
        AdminCommand::CreateToken { email, name } => {
            let token = accounts::create_token(&accounts, email, name).await?;
            eprintln!("API token for {email} (shown once; send it as `authorization: Bearer …`):");
            println!("{token}");
            Ok(())
        }
        AdminCommand::Migrate { .. } => unreachable!("handled above"),
    };
    accounts.close().await;
    result
}
