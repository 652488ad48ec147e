//! The terminal side of [`Reporter`]: an indicatif bar on stderr, hidden when
//! stderr is not a terminal or with `--quiet`.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

use crate::util::report::Reporter;

pub struct BarReporter {
    bar: Mutex<Option<ProgressBar>>,
    quiet: bool,
    bytes: bool,
}

impl BarReporter {
    /// `bytes`: units are bytes (else items).
    pub fn new(quiet: bool, bytes: bool) -> BarReporter {
        BarReporter {
            bar: Mutex::new(None),
            quiet,
            bytes,
        }
    }
}

impl Reporter for BarReporter {
    fn start(&self, what: &str, total: u64) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let tpl = if self.bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} [{bar:30}] {pos}/{len} eta {eta}"
        };
        bar.set_style(
            ProgressStyle::with_template(tpl)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        *self.bar.lock().unwrap() = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.inc(n);
        }
    }
    fn message(&self, msg: &str) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.set_message(msg.to_string());
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
    fn note(&self, msg: &str) {
        match &*self.bar.lock().unwrap() {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None if !self.quiet => eprintln!("{msg}"),
            None => {}
        }
    }
}
