//! Syncing through a proxy that gives sekmet-fhir's pages the shape HAPI FHIR gives its own
//! (from HAPI's documentation and issue tracker):
//! - next links on the server base: `?_getpages=ID&_getpagesoffset=N&_count=C`, and carrying
//!   `_format=xml` (HAPI repeats the format a search was made with), which a client must override;
//! - `_count` capped at 200;
//! - the Patient and its Organizations repeated on every page after the first;
//! - an empty page at the end;
//! - search results cached for 60 s unless the request says `Cache-Control: no-cache`.
//!
//! What ehrqa holds after syncing through the proxy must equal a sync from sekmet-fhir directly,
//! and an incremental sync made within the cache's minute must see the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::helpers::{free_port, wait_for_port};
use crate::sync::{compartment, per_type, read, sync, FhirServer, BOB, BOB_FILE, SHARED};

/// HAPI's default maximum page size.
const MAX_COUNT: usize = 200;
const CACHE_FOR: Duration = Duration::from_secs(60);
/// The page a proxy link maps to when the upstream search had ended.
const EMPTY: &str = "empty";

#[derive(Default)]
struct State {
    upstream: String,
    own_base: String,
    /// `_getpages` id -> the upstream URL of that page (or [`EMPTY`]), and the resources to repeat.
    pages: HashMap<String, (String, Vec<Value>)>,
    cache: HashMap<String, (Instant, Value)>,
    log: Vec<Seen>,
    next_id: usize,
}

#[derive(Debug, Clone)]
struct Seen {
    query: String,
    no_cache: bool,
}

/// The proxy: its FHIR base and what it saw.
struct Hapi {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Hapi {
    fn start(upstream: &str) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}/fhir");
        let state = Arc::new(Mutex::new(State {
            upstream: upstream.to_owned(),
            own_base: base.clone(),
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(shared);
                HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
                    .workers(1)
                    .bind(("127.0.0.1", port))
                    .unwrap()
                    .run()
                    .await
                    .unwrap();
            })
        });
        wait_for_port(port, Duration::from_secs(10));
        Self { base, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }
}

async fn handle(req: HttpRequest, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let query = req.query_string().to_owned();
    let no_cache = req.headers().get("cache-control").is_some_and(|v| v.as_bytes() == b"no-cache");
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or((p.to_owned(), String::new()), |(k, v)| (k.into(), v.into())))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (target, repeat) = {
        let mut s = state.lock().unwrap();
        s.log.push(Seen { query: query.clone(), no_cache });
        if param("_format").as_deref() == Some("xml") {
            return HttpResponse::Ok()
                .content_type("application/fhir+xml")
                .body("<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"searchset\"/></Bundle>");
        }
        match param("_getpages") {
            Some(id) => match s.pages.get(&id) {
                Some(p) => p.clone(),
                None => return HttpResponse::Gone().finish(),
            },
            None => {
                let capped: Vec<String> = params
                    .iter()
                    .map(|(k, v)| match (k.as_str(), v.parse::<usize>()) {
                        ("_count", Ok(n)) => format!("_count={}", n.min(MAX_COUNT)),
                        _ => format!("{k}={v}"),
                    })
                    .collect();
                let path = req.path().trim_start_matches("/fhir");
                (format!("{}{path}?{}", s.upstream, capped.join("&")), Vec::new())
            }
        }
    };
    if target == EMPTY {
        return fhir(json!({"resourceType": "Bundle", "type": "searchset", "link": [], "entry": []}));
    }
    let cached = {
        let s = state.lock().unwrap();
        s.cache.get(&target).filter(|(at, _)| !no_cache && at.elapsed() < CACHE_FOR).map(|(_, b)| b.clone())
    };
    if let Some(body) = cached {
        return fhir(body);
    }
    let mut upstream = reqwest::Client::new().get(&target).header("Accept", "application/fhir+json");
    if let Some(auth) = req.headers().get("authorization").and_then(|v| v.to_str().ok()) {
        upstream = upstream.header("Authorization", auth);
    }
    let Ok(resp) = upstream.send().await else { return HttpResponse::BadGateway().finish() };
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body);
    }
    let body = if body["type"] == "searchset" { reshape(&state, body, repeat) } else { body };
    state.lock().unwrap().cache.insert(target, (Instant::now(), body.clone()));
    fhir(body)
}

/// HAPI's shape: the repeated resources added, the next link on the base with `_getpages`, and
/// an empty page after the last.
fn reshape(state: &Mutex<State>, mut page: Value, mut repeat: Vec<Value>) -> Value {
    let entries = page["entry"].as_array().cloned().unwrap_or_default();
    for e in &entries {
        let t = &e["resource"]["resourceType"];
        if (t == "Patient" || t == "Organization") && !repeat.contains(e) {
            repeat.push(e.clone());
        }
    }
    let mut with_repeats = repeat.clone();
    with_repeats.extend(entries.into_iter().filter(|e| !repeat.contains(e)));
    page["entry"] = Value::Array(with_repeats);
    let upstream_next = page["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned);
    let mut s = state.lock().unwrap();
    s.next_id += 1;
    let id = format!("hapi{}", s.next_id);
    let offset = s.next_id * MAX_COUNT;
    s.pages.insert(id.clone(), (upstream_next.unwrap_or_else(|| EMPTY.to_owned()), repeat));
    let next = format!(
        "{}?_getpages={id}&_getpagesoffset={offset}&_count={MAX_COUNT}&_format=xml&_pretty=true&_bundletype=searchset",
        s.own_base
    );
    page["link"] = json!([{"relation": "self", "url": s.own_base}, {"relation": "next", "url": next}]);
    page
}

fn fhir(body: Value) -> HttpResponse {
    HttpResponse::Ok().content_type("application/fhir+json").json(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_through_hapi_shaped_pages_holds_what_a_direct_one_does() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    let hapi = Hapi::start(&server.base);
    let direct = tempfile::tempdir().unwrap();
    let (ok, _, err) = sync(direct.path(), &["--server", &server.base, "--patient", BOB]);
    assert!(ok, "{err}");
    let want = compartment(direct.path(), BOB).await;

    for method in [&[][..], &["--no-everything"][..]] {
        let through = tempfile::tempdir().unwrap();
        let mut args = vec!["--server", &hapi.base, "--patient", BOB, "--page-size", "500"];
        args.extend_from_slice(method);
        let (ok, report, err) = sync(through.path(), &args);
        assert!(ok, "{method:?}: {err} {report}");
        let got = compartment(through.path(), BOB).await;
        assert_eq!(per_type(&got), per_type(&want), "{method:?}");
        assert_eq!(got, want, "{method:?}: renderings");
    }
    let seen = hapi.seen();
    let pages: Vec<&Seen> = seen.iter().filter(|s| s.query.contains("_getpages=")).collect();
    assert!(pages.len() > 10, "paged through _getpages: {} pages", pages.len());
    assert!(pages.iter().all(|s| s.query.contains("_format=json")), "asked for JSON on every page");

    // The same incremental sync twice within the cache's minute: the second sees the change.
    let incremental = tempfile::tempdir().unwrap();
    let args = ["--server", &hapi.base, "--patient", BOB, "--since", "2000-01-01T00:00:00Z"];
    let new = ("Observation".to_owned(), "hapi-new-obs".to_owned());
    let (ok, _, err) = sync(incremental.path(), &args);
    assert!(ok, "{err}");
    assert!(!compartment(incremental.path(), BOB).await.contains_key(&new));
    let observation = json!({"resourceType": "Observation", "id": "hapi-new-obs", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": format!("Patient/{BOB}")}, "effectiveDateTime": "2024-05-01T09:00:00Z",
        "valueQuantity": {"value": 71, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}});
    let r = reqwest::Client::new()
        .put(format!("{}/Observation/hapi-new-obs", server.base))
        .json(&observation)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (ok, report, err) = sync(incremental.path(), &args);
    assert!(ok, "{err}");
    let now = compartment(incremental.path(), BOB).await;
    assert!(now.contains_key(&new), "the cached first page was served: {report}");
    assert_eq!(now.len(), want.len() + 1);
    let seen = hapi.seen();
    assert!(seen.iter().all(|s| s.no_cache), "every request bypasses the search cache");
}
