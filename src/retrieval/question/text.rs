//! Word handling shared by question analysis: lower-cased words, plurals, stop words, and British
//! spellings read as the American ones the records use.

/// Lower-cased words: letters, digits and inner `-`/`.` (`hba1c`, `covid-19`, `2019-03-02`), with
/// British spellings made American (`haemoglobin` -> `hemoglobin`), so questions, vocabulary terms
/// and record text meet on one spelling.
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for raw in lower.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.' || c == '\'')) {
        let w = raw.trim_matches(|c: char| c == '-' || c == '.' || c == '\'');
        let w = w.strip_suffix("'s").unwrap_or(w);
        if !w.is_empty() {
            out.push(american(w));
        }
    }
    out
}

/// British spelling -> American, by the word parts that differ (`haem`, `anaem`, `oedema`,
/// `oesophag`, `paed`, `tumour`, `-isation`...). Parts are chosen so that no American word
/// contains them.
pub fn american(w: &str) -> String {
    const PARTS: &[(&str, &str)] = &[
        ("aem", "em"),
        ("oedema", "edema"),
        ("oesophag", "esophag"),
        ("oestr", "estr"),
        ("paed", "ped"),
        ("foet", "fet"),
        ("caesar", "cesar"),
        ("anaesth", "anesth"),
        ("gynaec", "gynec"),
        ("faec", "fec"),
        ("coeliac", "celiac"),
        ("apnoea", "apnea"),
        ("pnoea", "pnea"),
        ("rrhoea", "rrhea"),
        ("tumour", "tumor"),
        ("behaviour", "behavior"),
        ("labour", "labor"),
        ("colour", "color"),
        ("sulph", "sulf"),
        ("isation", "ization"),
        ("mould", "mold"),
        ("litre", "liter"),
        ("centre", "center"),
    ];
    let mut out = w.to_owned();
    for (british, us) in PARTS {
        if out.contains(british) {
            out = out.replace(british, us);
        }
    }
    out
}

/// A naive singular for the plural forms that occur in questions (`shots`, `allergies`).
pub fn singular(w: &str) -> Option<String> {
    if w.len() <= 3 || w.ends_with("ss") || w.ends_with("us") || w.ends_with("is") {
        return None;
    }
    if let Some(stem) = w.strip_suffix("ies") {
        return Some(format!("{stem}y"));
    }
    w.strip_suffix('s').map(str::to_owned)
}

/// How many words of `label` the question's content words `asked` name, a word meeting its
/// abbreviation or stem (`hep` meets `hepatitis`): which of a patient's series a question is
/// about ("hib" picks "Hib (PRP-OMP)" among the vaccines).
pub fn label_overlap(label: &str, asked: &[String]) -> usize {
    let meets =
        |l: &str, q: &str| l == q || (l.len().min(q.len()) >= 3 && (l.starts_with(q) || q.starts_with(l)));
    words(label).iter().filter(|l| asked.iter().any(|q| meets(l, q))).count()
}

/// Words that carry no clinical content in a question.
pub fn is_stopword(w: &str) -> bool {
    STOP.binary_search(&w).is_ok()
}

const STOP: &[&str] = &[
    "a",
    "about",
    "actually",
    "after",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "between",
    "by",
    "can",
    "could",
    "current",
    "currently",
    "date",
    "day",
    "did",
    "do",
    "does",
    "done",
    "during",
    "each",
    "ever",
    "for",
    "from",
    "get",
    "got",
    "had",
    "has",
    "have",
    "he",
    "her",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "last",
    "latest",
    "level",
    "levels",
    "list",
    "many",
    "me",
    "most",
    "much",
    "my",
    "of",
    "on",
    "or",
    "our",
    "patient",
    "patient's",
    "please",
    "recent",
    "recently",
    "result",
    "results",
    "she",
    "show",
    "since",
    "so",
    "tell",
    "than",
    "that",
    "the",
    "their",
    "them",
    "there",
    "they",
    "this",
    "to",
    "took",
    "value",
    "values",
    "was",
    "we",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted() {
        assert!(STOP.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stopword("the") && is_stopword("patient's") && !is_stopword("glucose"));
    }

    #[test]
    fn splits_questions_into_words() {
        assert_eq!(
            words("What's her latest HbA1c (2019-03-02)?"),
            ["what", "her", "latest", "hba1c", "2019-03-02"]
        );
        assert_eq!(singular("allergies").as_deref(), Some("allergy"));
        assert_eq!(singular("shots").as_deref(), Some("shot"));
        assert_eq!(singular("diagnosis"), None);
    }

    #[test]
    fn reads_british_spellings_as_american() {
        assert_eq!(
            words("Haemoglobin, anaemia, oedema, paediatric, tumour, immunisations, faecal, apnoea"),
            ["hemoglobin", "anemia", "edema", "pediatric", "tumor", "immunizations", "fecal", "apnea"]
        );
        assert_eq!(
            words("ischaemic leukaemia diarrhoea caesarean"),
            ["ischemic", "leukemia", "diarrhea", "cesarean"]
        );
        assert_eq!(words("glucose hemoglobin"), ["glucose", "hemoglobin"]);
    }
}
