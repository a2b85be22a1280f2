//! The FHIR servers a service may sync from (`serve --sync-server`): a key cannot make it fetch
//! any other URL. (Where a sync's own requests may go, its server's origin, is `crate::outgoing`.)

use reqwest::Url;

pub use crate::outgoing::Origin;

/// A FHIR server's base URL as compared: scheme and host lower-case, default port dropped, no
/// trailing slash, no query or fragment. `None` for anything else.
pub fn normalise_base(url: &str) -> Option<String> {
    let u = Url::parse(url.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.query().is_some() || u.fragment().is_some() {
        return None;
    }
    if !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    Some(format!("{}{}", u.origin().ascii_serialization(), u.path().trim_end_matches('/')))
}

/// The FHIR servers a service may sync from, named at start-up.
#[derive(Debug, Clone, Default)]
pub struct ServerList(Vec<String>);

impl ServerList {
    /// The list from `--sync-server` values; one that is not a plain http(s) base URL is refused.
    pub fn new(urls: &[String]) -> Result<Self, String> {
        urls.iter()
            .map(|u| {
                normalise_base(u).ok_or_else(|| format!("--sync-server {u:?} is not an http(s) base URL"))
            })
            .collect::<Result<_, _>>()
            .map(ServerList)
    }

    pub fn allows(&self, server: &str) -> bool {
        normalise_base(server).is_some_and(|s| self.0.contains(&s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_bases_compare_as_servers_do() {
        assert_eq!(Origin::of("http://LocalHost:80/fhir/Patient?x=1").unwrap().as_str(), "http://localhost");
        assert_ne!(Origin::of("http://127.0.0.1:8080/a"), Origin::of("http://127.0.0.1:8081/a"));
        assert_eq!(Origin::of("ftp://x/y"), None);
        let list = ServerList::new(&["http://127.0.0.1:8080/fhir/".into()]).unwrap();
        assert!(list.allows("http://127.0.0.1:8080/fhir"));
        assert!(list.allows("HTTP://127.0.0.1:8080/fhir/"));
        for other in [
            "http://127.0.0.1:8081/fhir",
            "http://127.0.0.1:8080/other",
            "http://127.0.0.1:8080/fhir?x",
            "http://user@127.0.0.1:8080/fhir",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!list.allows(other), "{other}");
        }
        assert!(ServerList::new(&["ftp://x".into()]).is_err());
    }
}
