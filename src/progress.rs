//! Progress bars for long work (downloads, hashing and copying large
//! artifacts, verifying a remote tree; SPEC section 10): drawn on a
//! terminal, nothing when stderr is piped.

use std::io::IsTerminal;

/// Below this many bytes in all, no progress bar is drawn.
pub const MIN_BYTES: u64 = 16 << 20;

/// A progress bar of `total` bytes on stderr: drawn only on a terminal and
/// for at least [`MIN_BYTES`], hidden otherwise (pipes, CI logs).
pub fn bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() || total < MIN_BYTES {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bytes:>10}/{total_bytes} [{bar:30}] {bytes_per_sec} {eta} {wide_msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}
