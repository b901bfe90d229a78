//! HTTP requests of bootc (verify, downloads of artifacts): one agent
//! setup, every wait bounded, and errors in words.

use std::time::Duration;

/// The agent for one run: `timeout` bounds connecting, waiting for the
/// response headers and each read of a body.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .user_agent(format!("bootc/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A duration in seconds for messages: `30 s`, `2.5 s`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A ureq error in words, the timeouts named by what did not come.
pub fn describe(e: &ureq::Error, timeout: Duration, body: Duration) -> String {
    use ureq::Timeout as T;
    match e {
        ureq::Error::Timeout(t) => match t {
            T::Resolve => format!("the name did not resolve within {}", secs(timeout)),
            T::Connect => format!("could not connect within {}", secs(timeout)),
            T::SendRequest | T::SendBody | T::PerWrite => {
                format!(
                    "the server took the request for more than {}",
                    secs(timeout)
                )
            }
            T::RecvResponse => format!(
                "the server sent no response headers within {}",
                secs(timeout)
            ),
            T::PerRead => format!(
                "the server stalled: nothing received for {} (--timeout)",
                secs(timeout)
            ),
            T::RecvBody => format!("the body did not arrive within {} (too slow)", secs(body)),
            other => format!("timed out ({other})"),
        },
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
