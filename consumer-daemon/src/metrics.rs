//! `--metrics ADDR`: the consumer's Prometheus metrics (outband-web's
//! [`metrics`](outband_web::metrics)), served on a thread of their own.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use outband::BaseQueue;

/// Binds `address` and serves `/metrics` there for as long as the process
/// runs; installs the metrics as outband's observer first, so that every
/// claim and attempt of the processor about to start is counted. Returns
/// the address bound.
#[cfg(feature = "dashboard")]
pub(crate) fn serve(
    address: &str,
    backend: &Arc<dyn BaseQueue>,
) -> Result<SocketAddr, Box<dyn Error>> {
    let listener = std::net::TcpListener::bind(address)
        .map_err(|error| format!("--metrics {address}: {error}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    outband_web::metrics::install();
    let backend = Arc::clone(backend);
    std::thread::Builder::new()
        .name("outband-metrics".into())
        .spawn(move || {
            let served = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                outband_web::metrics::serve(listener, backend).await
            });
            if let Err(error) = served {
                log::error!("the metrics server stopped: {error}");
            }
        })?;
    Ok(bound)
}

/// `--metrics` in a binary built without the feature: says how to get it.
#[cfg(not(feature = "dashboard"))]
pub(crate) fn serve(
    address: &str,
    _backend: &Arc<dyn BaseQueue>,
) -> Result<SocketAddr, Box<dyn Error>> {
    Err(format!(
        "--metrics {address}: this binary was built without outband-daemon's `dashboard` \
         feature, which links outband-web and its metrics"
    )
    .into())
}
