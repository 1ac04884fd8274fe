//! `dashboard`: outband-web's pages over the daemon's backend.
//!
//! It listens on loopback unless told otherwise: an address that other
//! hosts can reach needs an access token, or `--insecure` to say that
//! whoever reaches the port may retry, delete and flush.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::cli::{CliResult, DashboardOptions};

/// The address to listen on, or why the options refuse it.
fn address(options: &DashboardOptions) -> Result<SocketAddr, String> {
    let address = options
        .bind
        .to_socket_addrs()
        .map_err(|error| format!("--bind {}: {error}", options.bind))?
        .next()
        .ok_or_else(|| format!("--bind {}: names no address", options.bind))?;
    let token = options.token.as_deref().is_some_and(|t| !t.is_empty());
    if !address.ip().is_loopback() && !token && !options.insecure {
        return Err(format!(
            "refusing to serve the dashboard on {address} without an access token: \
             other hosts can reach it. Give --token TOKEN (or OUTBAND_DASHBOARD_TOKEN), \
             or --insecure to let anyone who reaches the port use it; \
             the default, {}, is reachable from this host only",
            DashboardOptions::DEFAULT_BIND
        ));
    }
    Ok(address)
}

/// Serves the dashboard until SIGINT or SIGTERM.
#[cfg(feature = "dashboard")]
pub(crate) fn run(url: &str, options: &DashboardOptions) -> CliResult {
    let address = address(options)?;
    let backend = outband::open(url)?;
    let dashboard = outband_web::Dashboard::new(backend)
        .read_only(options.read_only)
        .token(options.token.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("outband-dashboard")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let mode = if options.read_only { ", read-only" } else { "" };
        crate::consumer::say(&format!("dashboard on http://{bound}/{mode}"));
        dashboard.serve(listener).await
    })?;
    Ok(0)
}

/// `dashboard` in a binary built without the feature: says how to get it.
#[cfg(not(feature = "dashboard"))]
pub(crate) fn run(_url: &str, options: &DashboardOptions) -> CliResult {
    address(options)?;
    Err(
        "this binary was built without outband-daemon's `dashboard` feature, \
         which links outband-web"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(bind: &str, token: Option<&str>, insecure: bool) -> DashboardOptions {
        DashboardOptions {
            bind: bind.to_owned(),
            token: token.map(str::to_owned),
            insecure,
            read_only: false,
        }
    }

    #[test]
    fn loopback_needs_nothing_and_other_addresses_need_a_token_or_insecure() {
        assert!(address(&options("127.0.0.1:0", None, false)).is_ok());
        assert!(address(&options("[::1]:0", None, false)).is_ok());
        let refused = address(&options("0.0.0.0:0", None, false)).unwrap_err();
        assert!(
            refused.contains("--token") && refused.contains("--insecure"),
            "{refused}"
        );
        assert!(address(&options("0.0.0.0:0", Some(""), false)).is_err());
        assert!(address(&options("0.0.0.0:0", Some("t"), false)).is_ok());
        assert!(address(&options("0.0.0.0:0", None, true)).is_ok());
        assert!(address(&options("nowhere", None, false)).is_err());
    }
}
