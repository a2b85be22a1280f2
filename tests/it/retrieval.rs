//! Retrieval with the real tokenizer: token counts, budgets, concrete evidence for concrete
//! questions, patient isolation of contexts, the JSON contract, and evidence recall.

use ehrqa::eval::{self, Kind};
use ehrqa::fhir::date::FhirDate;
use ehrqa::retrieval::{assemble, Context, ContextOptions};
use ehrqa::tokens::{context_line, TokenBudget, TokenCounter};
use serde_json::Value;

use crate::helpers::{
    ehrqa, fixture, stdout, tokenizer, TestData, BOB_JAVA, DONG, MERVIN, SEARCHSET_PATIENT,
};

fn today() -> i64 {
    FhirDate::parse("2026-11-29").unwrap().timestamp()
}

fn context(t: &TestData, patient: &str, q: &str, budget: usize) -> Context {
    let opts = ContextOptions { budget: TokenBudget::new(budget).unwrap(), today: today() };
    assemble(&t.ws.index, tokenizer().as_ref(), patient, q, opts).expect("assemble")
}

async fn fixtures() -> TestData {
    let t = TestData::with_tokens().await;
    let report = t.ingest(&["fhir"]).await;
    assert!(report.failed.is_empty());
    t
}

#[test]
fn the_tokenizer_is_gemma_3s() {
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 262_145);
    for (token, id) in
        [("<pad>", 0), ("<eos>", 1), ("<bos>", 2), ("<start_of_turn>", 105), ("<end_of_turn>", 106)]
    {
        assert_eq!(tok.token_id(token), Some(id), "{token}");
    }
    let ids = tok.encode("Hemoglobin A1c was 6.2 %", false).unwrap();
    assert_eq!(tok.count("Hemoglobin A1c was 6.2 %"), ids.len());
    assert_eq!(tok.decode(&ids).unwrap(), "Hemoglobin A1c was 6.2 %");
    assert_eq!(tok.encode("x", true).unwrap()[0], 2, "BOS first with special tokens");
}

#[tokio::test]
async fn ingest_stores_each_records_token_count() {
    let t = fixtures().await;
    let rows: Vec<(String, String, String, i64)> = crate::db!(t.ws.store, |p| sqlx::query_as(
        "SELECT type, id, text, tokens FROM resources ORDER BY random() LIMIT 200"
    )
    .fetch_all(p)
    .await)
    .unwrap();
    assert_eq!(rows.len(), 200);
    for (rt, id, text, tokens) in rows {
        let line = context_line(&format!("[{rt}/{id}] {text}"));
        assert_eq!(tokenizer().count(&line) as i64, tokens, "{rt}/{id}");
    }
}

#[tokio::test]
async fn contexts_never_exceed_the_budget_and_count_exactly() {
    let t = fixtures().await;
    let questions = [
        "What was his latest A1c?",
        "How has his weight changed over time?",
        "What medications is he taking?",
        "What did the notes say about his visits?",
        "How many encounters in 2019?",
        "everything",
    ];
    for budget in [256, 512, 1024, 2048, 4096, 8192, 32_768] {
        for q in questions {
            let ctx = context(&t, MERVIN, q, budget);
            assert!(ctx.tokens <= budget, "{q} at {budget}: {} tokens", ctx.tokens);
            assert_eq!(ctx.tokens, tokenizer().count(&ctx.text), "{q} at {budget}");
            assert!(!ctx.items.is_empty());
            assert!(ctx.text.starts_with("## Patient "), "the header comes first");
            assert_eq!(ctx.items[0].rref, format!("Patient/{MERVIN}"));
        }
    }
    // A bigger budget holds more evidence.
    let small = context(&t, MERVIN, "How has his weight changed over time?", 1024);
    let large = context(&t, MERVIN, "How has his weight changed over time?", 16_384);
    assert!(large.refs().len() > small.refs().len());
}

async fn latest(t: &TestData, patient: &str, where_: &str) -> String {
    let (rt, id): (String, String) = crate::db!(t.ws.store, |p| sqlx::query_as(&format!(
        "SELECT type, id FROM resources WHERE patient_id = $1 AND {where_} ORDER BY ts DESC LIMIT 1"
    ))
    .bind(patient)
    .fetch_one(p)
    .await)
    .unwrap();
    format!("{rt}/{id}")
}

#[tokio::test]
async fn questions_bring_their_evidence() {
    let t = fixtures().await;
    // Latest A1c (an abbreviation), at a small budget: the newest result is there, and a computed
    // fact states it.
    let a1c = latest(&t, MERVIN, "code = '4548-4'").await;
    let ctx = context(&t, MERVIN, "What was his latest A1c?", 1024);
    assert!(ctx.refs().contains(a1c.as_str()));
    let fact =
        ctx.items.iter().find(|i| i.text.starts_with("Computed: Hemoglobin A1c")).expect("a computed fact");
    assert!(fact.text.contains(&format!("latest 6.2 % on 2019-03-02 [{a1c}]")) || fact.text.contains(&a1c));
    // "shots" -> immunizations.
    let shot = latest(&t, MERVIN, "type = 'Immunization' AND code = '140'").await;
    assert!(context(&t, MERVIN, "When was his last flu shot?", 2048).refs().contains(shot.as_str()));
    // A date the question names.
    let ctx = context(&t, SEARCHSET_PATIENT, "What was her blood pressure on March 2, 2019?", 512);
    assert!(ctx.refs().contains("Observation/obs-bp"));
    // A note, found by its content.
    let ctx = context(&t, SEARCHSET_PATIENT, "Did she complain of thirst?", 512);
    let note = ctx.items.iter().find(|i| i.rref == "DocumentReference/doc-1").expect("the note");
    assert!(note.text.contains("increased thirst"));
    // Something the record does not hold is said to be absent.
    let ctx = context(&t, SEARCHSET_PATIENT, "Has she ever had a stroke?", 1024);
    assert!(ctx.items.iter().any(|i| i.text.starts_with("Computed: No records of")));
    // Allergies come from the header.
    let ctx = context(&t, SEARCHSET_PATIENT, "Is she allergic to anything?", 512);
    assert!(ctx.refs().contains("AllergyIntolerance/al-1"));
}

#[tokio::test]
async fn contexts_hold_only_the_patients_own_records() {
    let t = fixtures().await;
    for p in [DONG, MERVIN, BOB_JAVA, SEARCHSET_PATIENT] {
        for q in [
            "What was the latest glucose?",
            "List all encounters",
            "Maria Alvarez diabetes",
            MERVIN,
            "Gaylord",
        ] {
            let ctx = context(&t, p, q, 8192);
            for r in ctx.refs() {
                let (rt, id) = r.split_once('/').unwrap();
                let owner: Option<String> = crate::db!(t.ws.store, |p| sqlx::query_scalar(
                    "SELECT patient_id FROM resources WHERE type = $1 AND id = $2"
                )
                .bind(rt)
                .bind(id)
                .fetch_one(p)
                .await)
                .unwrap();
                assert_eq!(owner.as_deref(), Some(p), "{r} in a context for {p} ({q:?})");
            }
        }
    }
}

#[tokio::test]
async fn evidence_recall_on_the_fixture_question_set() {
    let t = fixtures().await;
    let questions = eval::questions::read(&fixture("../eval/questions-fixtures.jsonl")).unwrap();
    assert!(questions.len() > 100);
    for (budget, floor) in [(8192, 0.98), (2048, 0.90)] {
        let report = eval::evaluate(
            &t.ws.index,
            tokenizer().as_ref(),
            &questions,
            TokenBudget::new(budget).unwrap(),
            today(),
        )
        .unwrap();
        for k in &report.kinds {
            assert!(k.recall >= floor, "{:?} at {budget}: {:.3}", k.kind, k.recall);
        }
        assert!(report.kinds.len() >= Kind::ALL.len() - 1, "every kind is represented");
    }
}

#[tokio::test]
async fn the_question_generator_is_reproducible() {
    let t = fixtures().await;
    let a = eval::generate_set(&t.ws.store, &[], 2, 20261129).await.unwrap();
    let b = eval::generate_set(&t.ws.store, &[], 2, 20261129).await.unwrap();
    assert_eq!(a, b);
    let committed = eval::questions::read(&fixture("../eval/questions-fixtures.jsonl")).unwrap();
    assert_eq!(a, committed, "eval/questions-fixtures.jsonl is what the generator makes from the fixtures");
}

#[test]
fn context_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let out = ehrqa(dir.path(), &["ingest", fixture("fhir").to_str().unwrap()]);
    assert!(out.status.success());
    let out = ehrqa(
        dir.path(),
        &[
            "context",
            "--patient",
            MERVIN,
            "--question",
            "How has his A1c changed?",
            "--budget",
            "2048",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["budget", "items", "patient", "tokens"]);
    assert_eq!(v["patient"], MERVIN);
    assert_eq!(v["budget"], 2048);
    let tokens = v["tokens"].as_u64().unwrap();
    assert!(tokens > 200 && tokens <= 2048);
    let items = v["items"].as_array().unwrap();
    let mut summed = 0;
    for i in items {
        let kind = i["kind"].as_str().unwrap();
        assert!(i["ref"].as_str().unwrap().contains('/'));
        assert!(i["text"].as_str().unwrap().len() > 5);
        summed += i["tokens"].as_u64().unwrap();
        match kind {
            "fact" | "summary" => assert!(i["refs"].as_array().is_some_and(|r| !r.is_empty()), "{i}"),
            _ => assert!(i.get("refs").is_none(), "{i}"),
        }
    }
    assert!(summed < tokens, "items plus section titles make the total");
    assert!(items.iter().any(|i| i["kind"] == "fact"));
}

#[tokio::test]
async fn consumer_brand_british_and_misspelt_words_find_the_evidence() {
    let t = fixtures().await;
    // Each question in words a patient or a clinician might use, and the record that answers it.
    let cases = [
        ("What's his most recent haemoglobin?", "code = '718-7'"),
        ("Latest platlets?", "code = '777-3'"),
        ("Where is his white count now?", "code = '6690-2'"),
        ("Is his sugar control getting better?", "code = '4548-4'"),
        ("When was his last flu jab?", "type = 'Immunization' AND code = '140'"),
        ("When did he last get the chicken pox shot?", "type = 'Immunization' AND code = '21'"),
        ("When was his last med rec?", "type = 'Procedure' AND code = '430193006'"),
        ("Has he ever had a water infection?", "type = 'Condition' AND code = '307426000'"),
        ("When was he first told he had anaemia?", "type = 'Condition' AND code = '271737000'"),
        ("Has he ever had a blood film?", "type = 'Procedure' AND code = '14768001'"),
        ("What was his pulse on the 17th of July 1984?", "code = '8867-4'"),
        ("What was his pulse on 7/17/1984?", "code = '8867-4'"),
    ];
    for (q, where_) in cases {
        let gold = latest(&t, MERVIN, where_).await;
        let ctx = context(&t, MERVIN, q, 2048);
        assert!(ctx.refs().contains(gold.as_str()), "{q}: {gold} is not in the context");
    }
    // Something he never had, named in words the records never use, is said to be absent.
    for q in ["Has he ever had lupus?", "Any hx of Crohn's disease?", "Is he known to have hep C?"] {
        let ctx = context(&t, MERVIN, q, 2048);
        assert!(ctx.items.iter().any(|i| i.text.starts_with("Computed: No records of")), "{q}");
    }
}

#[tokio::test]
async fn evidence_recall_on_the_paraphrase_set_for_the_fixture_patients() {
    // eval/questions-paraphrase.jsonl is written over the shared Synthea data; its questions about
    // the four Synthea fixture patients (the same resources) can be checked against the fixtures.
    let t = fixtures().await;
    let fixture_patients = [MERVIN, DONG, BOB_JAVA, "f1731e33-dc55-4ee8-72d7-cece2e49bedd"];
    let questions: Vec<_> = eval::questions::read(&fixture("../eval/questions-paraphrase.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|q| fixture_patients.contains(&q.patient.as_str()))
        .collect();
    assert!(questions.len() >= 40, "{} questions about the fixture patients", questions.len());
    let report = eval::evaluate(
        &t.ws.index,
        tokenizer().as_ref(),
        &questions,
        TokenBudget::new(2048).unwrap(),
        today(),
    )
    .unwrap();
    assert!(report.recall >= 0.95, "recall {:.3}, missed {:?}", report.recall, report.missed);
}
