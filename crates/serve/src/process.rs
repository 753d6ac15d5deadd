//! What a Forklift process does at start: memory settings, the shutdown signal.

/// Turns transparent huge pages off for this process; call it first thing in `main`.
///
/// The allocator (mimalloc) asks for huge pages on its arenas, and where the system
/// grants them on request (`madvise`, the usual setting) each barely used 2 MiB page
/// counts in full: a fresh server used 39 MiB resident with them and 30 MiB without,
/// and peaked 10–14 MiB lower through sign-ups and page loads, with no throughput
/// difference we could measure. Elsewhere than Linux this does nothing.
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Only costs memory; nothing to stop for.
        eprintln!("could not turn transparent huge pages off: {e}");
    }
}

/// A future that resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed
/// when this is called, not when the future is first polled: call it before announcing
/// readiness, so that a signal arriving during start-up still shuts down gracefully
/// instead of killing the process.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    tokio::signal::ctrl_c().await.ok();
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        tokio::signal::ctrl_c().await.ok();
    }
}
