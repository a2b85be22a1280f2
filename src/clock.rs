//! "Now", in UTC seconds since the Unix epoch: one place, so every layer reads the clock alike.

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
