//! A property-based fuzzer over the pure FHIR layer: hostile inputs must be refused with a
//! one-line reason or ingested with a rendering for every resource, never panic, and never take
//! long.
//!
//! Seeds are the real resources of `fixtures/` (Synthea, Java Synthea, edge cases, bad inputs,
//! lab-report images), read once (`seeds.rs`). Each case is a plan (`plan.rs`): one to five seeds,
//! up to four mutations (type swaps, deep nesting, huge strings, odd text and numbers, bad dates,
//! bad references, broken base64, damaged images, duplicate ids, removed fields), a container
//! (bundle, broken bundle, array, NDJSON, single resource) and perhaps damage to the bytes
//! (truncation, invalid UTF-8, a BOM). `mutate.rs` applies it; `check.rs` runs it through
//! `fhir::input::parse` + `fhir::prepare` and through each stage directly.
//!
//! Its own test binary, so that `scripts/fuzz` builds only this in release mode. Settings, from
//! the environment:
//! - `EHRQA_FUZZ_CASES`: cases to run (default 2,000: under a minute in CI's test profile);
//! - `EHRQA_FUZZ_SEED`: the RNG seed, to replay a run (default: a fresh one, printed);
//! - `EHRQA_FUZZ_THREADS`: runners in parallel, each with its share of the cases (default 1);
//! - `EHRQA_FUZZ_CASE_MS`: the time one case may take (default 60,000 ms, so that a busy CI machine
//!   running the unoptimised build never fails on time; `scripts/fuzz` sets 5,000 for its release run).
//!
//! On a failure the shrunk case's input is written under the target directory, for replay with
//! `ehrqa ingest`; no failure file is kept between runs (proptest's persistence is off).

mod check;
mod mutate;
mod plan;
mod seeds;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use check::Tally;
use plan::Case;
use seeds::SEEDS;

/// A long run says how far it is, per thread, this often.
const PROGRESS_EVERY: u64 = 100_000;

struct Settings {
    cases: u32,
    seed: u64,
    threads: u32,
    case_limit: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let num = |name: &str, default: u64| {
            var(name).map_or(default, |v| v.replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={v}")))
        };
        Self {
            cases: num("EHRQA_FUZZ_CASES", 2_000) as u32,
            seed: num("EHRQA_FUZZ_SEED", fresh_seed()),
            threads: num("EHRQA_FUZZ_THREADS", 1).max(1) as u32,
            case_limit: Duration::from_millis(num("EHRQA_FUZZ_CASE_MS", 60_000)),
        }
    }
}

/// A seed from the standard library's per-process random hasher keys (no extra crate).
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

/// Panicking case executions (shrinking re-runs included): proptest turns a panic into a
/// failure, and this tells the summary which failures were panics.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts panics; prints only the first (shrinking re-runs the failing case hundreds of times).
fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if PANICS.fetch_add(1, Ordering::Relaxed) == 0 {
            previous(info);
        }
    }));
}

#[test]
fn hostile_inputs_are_refused_or_rendered_never_panic() {
    let s = Settings::from_env();
    count_panics();
    let started = Instant::now();
    let seeds = &*SEEDS;
    eprintln!(
        "fuzz: {} seed resources in {} type groups, {} whole inputs; {} cases, seed {}, {} thread(s)",
        seeds.all.len(),
        seeds.groups.len(),
        seeds.inputs.len(),
        s.cases,
        s.seed,
        s.threads
    );
    let mut total = Tally::default();
    let results = std::thread::scope(|scope| {
        let runners: Vec<_> = (0..s.threads)
            .map(|t| {
                let cases = s.cases / s.threads + u32::from(t < s.cases % s.threads);
                let (seed, limit) = (s.seed.wrapping_add(u64::from(t)), s.case_limit);
                std::thread::Builder::new()
                    .stack_size(64 << 20)
                    .spawn_scoped(scope, move || run(cases, seed, limit))
                    .expect("a fuzz thread starts")
            })
            .collect();
        runners.into_iter().map(|r| r.join().expect("the runner reports panics itself")).collect::<Vec<_>>()
    });
    let mut failures = Vec::new();
    for (tally, result) in results {
        total.merge(tally);
        failures.extend(result.err());
    }
    eprintln!("fuzz: slowest case: {}", total.slowest_case);
    eprintln!("fuzz: longest error: {} bytes: {:?}...", total.longest_error, total.longest_error_start);
    eprintln!("{}", summary(&total, failures.len(), started.elapsed()));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `cases` cases with one proptest runner; the tally, and the failure described.
fn run(cases: u32, seed: u64, case_limit: Duration) -> (Tally, Result<(), String>) {
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tally = std::cell::RefCell::new(Tally::default());
    let result = runner.run(&plan::case(), |case| one(&case, case_limit, &mut tally.borrow_mut()));
    let result = result.map_err(|e| match e {
        TestError::Fail(reason, case) => describe(seed, &reason.to_string(), &case),
        TestError::Abort(reason) => format!("fuzz seed {seed}: aborted: {reason}"),
    });
    (tally.into_inner(), result)
}

fn one(case: &Case, limit: Duration, tally: &mut Tally) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let resources = mutate::resources(case, &SEEDS);
    check::direct(&resources, case.as_type, tally)?;
    let (bytes, format) = mutate::input(case, resources, &SEEDS);
    check::pipeline(&bytes, format, tally)?;
    let took = started.elapsed();
    tally.cases += 1;
    if tally.cases.is_multiple_of(PROGRESS_EVERY) {
        eprintln!("fuzz: {} cases done on this thread", tally.cases);
    }
    if took > tally.slowest {
        tally.slowest = took;
        tally.slowest_case = format!("{case:?}").chars().take(300).collect();
    }
    if took > limit {
        return Err(TestCaseError::fail(format!("the case took {took:?}, over the limit of {limit:?}")));
    }
    Ok(())
}

/// The failure, with the shrunk case's input saved for replay.
fn describe(seed: u64, reason: &str, case: &Case) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let path = dir.join(format!("seed-{seed}.input"));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, mutate::input(case, mutate::resources(case, &SEEDS), &SEEDS).0))
        .map_or_else(|e| format!("(not saved: {e})"), |()| path.display().to_string());
    format!("fuzz seed {seed} failed: {reason}\ninput: {saved}\nminimal case: {case:#?}")
}

/// The line `scripts/fuzz` prints and the README quotes.
fn summary(t: &Tally, failures: usize, took: Duration) -> String {
    let refused: Vec<String> = t.refused.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "fuzz summary: {} cases in {:.0} s ({:.0} µs/case); accepted {} ({} resources, {} with issues, \
         {} duplicates; attachments: {} notes, {} images decoded, {} refused, {} PDFs); refused {} ({}); \
         {} direct normalisations; slowest case {} ms; longest error \
         {} bytes; panics {}; failures {failures}",
        t.cases,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / t.cases.max(1) as f64,
        t.accepted,
        t.resources,
        t.with_issues,
        t.duplicates,
        t.notes,
        t.images,
        t.images_refused,
        t.pdfs,
        t.refused_total(),
        refused.join(", "),
        t.direct,
        t.slowest.as_millis(),
        t.longest_error,
        PANICS.load(Ordering::Relaxed),
    )
}
