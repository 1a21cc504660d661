//! A progress bar on standard error, shown only for large inputs when standard error is a
//! terminal and `-q` was not given.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Inputs smaller than this many values finish too fast for a bar to help.
const MIN_VALUES_FOR_BAR: u64 = 8 << 20;

/// A bar counting f32 values, or a hidden one.
pub fn values_bar(total: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || total < MIN_VALUES_FOR_BAR || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total * 4);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// Streams smaller than this many bytes finish too fast for a bar to help.
const MIN_BYTES_FOR_BAR: u64 = 32 << 20;

/// A bar counting bytes read from a file of `total` bytes, or a hidden one.
pub fn bytes_bar(total: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || total < MIN_BYTES_FOR_BAR || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}
