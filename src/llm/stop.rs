//! Stop sequences over streamed text: pieces are passed on as they come, except a tail that could
//! still turn into a stop sequence, which is held back until the next piece decides it.

/// Watches a stream of text pieces for any of a set of stop strings.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released (a possible start of a stop string).
    held: String,
    /// Everything released so far.
    released: String,
    stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Self::default() }
    }

    /// Takes a piece; returns what may be shown now. After a stop string is seen, returns the
    /// text before it and nothing ever again.
    pub fn push(&mut self, piece: &str) -> String {
        if self.stopped {
            return String::new();
        }
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            self.stopped = true;
            return self.release(at);
        }
        let keep = self.stops.iter().map(|s| partial_suffix(&self.held, s)).max().unwrap_or(0);
        self.release(self.held.len() - keep)
    }

    /// Ends the stream: whatever is held is released.
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        self.release(self.held.len())
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// All text released (the generation, cut before any stop string).
    pub fn text(&self) -> &str {
        &self.released
    }

    fn release(&mut self, upto: usize) -> String {
        let out: String = self.held[..upto].to_owned();
        self.held.drain(..upto);
        if self.stopped {
            self.held.clear();
        }
        self.released.push_str(&out);
        out
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `stop`.
fn partial_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && stop.is_char_boundary(n) && text.ends_with(&stop[..n])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut shown: Vec<String> = pieces.iter().map(|p| m.push(p)).collect();
        shown.push(m.finish());
        (shown, m.text().to_owned(), m.stopped())
    }

    #[test]
    fn cuts_at_a_stop_split_across_pieces() {
        let (shown, text, stopped) = run(&["\nQuestion:"], &["6.2 % [3].", "\nQues", "tion: what", " next"]);
        assert_eq!(text, "6.2 % [3].");
        assert!(stopped);
        assert_eq!(shown.concat(), text);
    }

    #[test]
    fn releases_a_false_start() {
        let (shown, text, stopped) = run(&["\n\n"], &["a\n", "b\n", "c"]);
        assert_eq!(text, "a\nb\nc");
        assert!(!stopped);
        // The newline was held until the next piece showed it was not a stop.
        assert_eq!(shown[0], "a");
    }

    #[test]
    fn without_stops_everything_passes() {
        let (shown, text, _) = run(&[], &["x", "y"]);
        assert_eq!(shown, vec!["x", "y", ""]);
        assert_eq!(text, "xy");
    }
}
