//! A terminal progress bar (drawn only when stderr is a terminal).

use indicatif::{ProgressBar, ProgressStyle};

use crate::ingest::Progress;

pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        Self(ProgressBar::hidden())
    }
}

impl Progress for Bar {
    fn start(&self, total: u64, what: &str) {
        self.0.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_length(total);
        let template = if what == "ingest" {
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} [{bar:40}] {pos}/{len} eta {eta}"
        };
        self.0
            .set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
        self.0.set_message(what.to_owned());
    }

    fn advance(&self, done: u64) {
        self.0.inc(done);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
