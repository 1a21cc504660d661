//! Progress bars on standard error, shown only for large inputs when standard error is a
//! terminal and `-q` was not given.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Inputs smaller than this many bytes finish too fast for a bar to help.
const MIN_BYTES_FOR_BAR: u64 = 32 << 20;

/// A bar over `total_bytes`, labelled `what`, or a hidden one.
fn bar(total_bytes: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || total_bytes < MIN_BYTES_FOR_BAR || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// A bar counting f32 values (shown in bytes), or a hidden one.
pub fn values_bar(total_values: u64, quiet: bool, what: &str) -> ProgressBar {
    bar(total_values.saturating_mul(4), quiet, what)
}

/// A bar counting bytes read from a file of `total` bytes, or a hidden one.
pub fn bytes_bar(total: u64, quiet: bool, what: &str) -> ProgressBar {
    bar(total, quiet, what)
}
