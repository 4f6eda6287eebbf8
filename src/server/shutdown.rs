//! Waiting for the signal to stop: Ctrl-C (SIGINT) or SIGTERM, in one place.
//!
//! The handlers are installed when [`shutdown_signal`] is called, not when its future is
//! first polled: a SIGTERM that arrives after the start banner but before serving begins
//! must stop the server gracefully, not kill it with the default action.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Install the SIGINT and SIGTERM handlers now; the future resolves on the first of them.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            _ = received(interrupt) => tracing::info!("received SIGINT"),
            _ = received(terminate) => tracing::info!("received SIGTERM"),
        }
    }
}

fn listen(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind)
        .inspect_err(|e| tracing::warn!("cannot listen for {name}: {e}"))
        .ok()
}

/// Resolves when the signal arrives; never, when its handler could not be installed.
async fn received(signal: Option<Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
