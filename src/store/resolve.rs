//! Resolving references across inputs, inside the writing transaction.
//!
//! Only references that their own input could not resolve are stored in `refs`. After each input
//! is written, what can newly resolve is matched: literal `Type/id` by existence, `urn:uuid:` by
//! fullUrl, conditional references by identifier. Only the input just written changes what the
//! store holds, so two statements per kind cover everything:
//! - the input's own pending references, against the whole store;
//! - the earlier inputs' pending references, against the input's own resources.
//!
//! Each is driven by a partial index of pending references (migration `0010_pending_refs`;
//! PostgreSQL's `0004`), so an input costs what it brings, not what is still pending: matching
//! every pending reference after every input grew with the square of the inputs on a Java
//! Synthea directory, whose practitioners and organisations arrive last (a tenth of its ingest).
//!
//! A statement runs only when it can match something: the input's own statement of a kind when
//! the input left a reference of that kind pending, the earlier inputs' statement when the store
//! held one before the input was written (`Pending`). Matching earlier references reads every
//! resource of the input, and most data leaves nothing pending: on PySynthea's bundles the six
//! statements took 7% of the writer's time (`../shared/data/synthea`) for no match.

use std::sync::LazyLock;

use super::backend::{on, Backend, Conn};
use super::StoreError;
use crate::fhir::resolve::{RefKind, RefLink};

/// How a pending reference of each kind is marked resolved, given the rows it applies to.
const LITERAL: &str = "UPDATE refs SET resolved = 1 WHERE resolved = 0 AND kind = 'literal' AND ";
const LITERAL_FOUND: &str =
    "EXISTS (SELECT 1 FROM resources r WHERE r.type = refs.target_type AND r.id = refs.target_id)";
const LITERAL_NEW: &str = "(target_type, target_id) IN (SELECT type, id FROM resources WHERE ingest_id = $1)";

// A `urn:uuid:` fullUrl is bundle-local by the spec; across inputs it can only mean the resource
// that was stored under that fullUrl, whose id Synthea and most producers make the uuid itself.
const URN: &str = "UPDATE refs SET \
       target_type = (SELECT r.type FROM resources r \
          WHERE r.id = substr(refs.raw, 10) AND r.full_url = refs.raw LIMIT 1), \
       target_id = substr(refs.raw, 10), \
       resolved = 1 \
     WHERE resolved = 0 AND kind = 'urn' AND ";
const URN_FOUND: &str =
    "EXISTS (SELECT 1 FROM resources r WHERE r.id = substr(refs.raw, 10) AND r.full_url = refs.raw)";
const URN_NEW: &str = "raw IN (SELECT full_url FROM resources WHERE ingest_id = $1 AND full_url IS NOT NULL)";

const CONDITIONAL: &str = "UPDATE refs SET \
       target_id = (SELECT i.resource_id FROM identifiers i \
          WHERE i.resource_type = refs.target_type AND i.value = refs.cond_value \
            AND (refs.cond_system IS NULL OR i.system = refs.cond_system) LIMIT 1), \
       resolved = 1 \
     WHERE resolved = 0 AND kind = 'conditional' AND ";
const CONDITIONAL_FOUND: &str =
    "EXISTS (SELECT 1 FROM identifiers i WHERE i.resource_type = refs.target_type \
          AND i.value = refs.cond_value \
          AND (refs.cond_system IS NULL OR i.system = refs.cond_system))";
const CONDITIONAL_NEW: &str = "(target_type, cond_value) IN (SELECT i.resource_type, i.value \
          FROM identifiers i JOIN resources r ON r.type = i.resource_type AND r.id = i.resource_id \
          WHERE r.ingest_id = $1)";

/// The input's own pending references, of the kind `head` updates, that the store resolves.
fn own(head: &str, found: &str) -> String {
    format!("{head}ingest_id = $1 AND {found}")
}

/// Earlier inputs' pending references, of the kind `head` updates, that input `$1` resolves.
fn earlier(head: &str, new: &str, found: &str) -> String {
    format!("{head}{new} AND {found}")
}

/// Whether references of each kind that statements can resolve are pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub literal: bool,
    pub urn: bool,
    pub conditional: bool,
}

impl Pending {
    /// The kinds among `links` left unresolved (what an input stores as pending).
    pub fn among<'a>(links: impl IntoIterator<Item = &'a RefLink>) -> Self {
        let mut p = Self::default();
        for l in links.into_iter().filter(|l| !l.resolved) {
            match l.kind {
                RefKind::Literal => p.literal = true,
                RefKind::Urn => p.urn = true,
                RefKind::Conditional => p.conditional = true,
                RefKind::Contained | RefKind::Unparseable => {}
            }
        }
        p
    }

    fn has(self, kind: RefKind) -> bool {
        match kind {
            RefKind::Literal => self.literal,
            RefKind::Urn => self.urn,
            RefKind::Conditional => self.conditional,
            RefKind::Contained | RefKind::Unparseable => false,
        }
    }
}

/// Whether the store holds a pending reference of each kind: each `EXISTS` stops at the first
/// entry of that kind's partial index. SQLite is told which index: without statistics it chose
/// `refs_pending_ingest` for two of the kinds, and would walk every pending reference of the
/// other kinds to find one (Java Synthea's 14,578 conditional ones, after every input).
fn any_pending(indexed_by: bool) -> String {
    let exists = |kind: &str| {
        let index = if indexed_by { format!(" INDEXED BY refs_pending_{kind}") } else { String::new() };
        format!("EXISTS (SELECT 1 FROM refs{index} WHERE resolved = 0 AND kind = '{kind}')")
    };
    format!("SELECT {}, {}, {}", exists("literal"), exists("urn"), exists("conditional"))
}

static ANY_PENDING_SQLITE: LazyLock<String> = LazyLock::new(|| any_pending(true));
static ANY_PENDING_POSTGRES: LazyLock<String> = LazyLock::new(|| any_pending(false));

/// The kinds of reference pending in the store. Asked before an input is written, it tells
/// which of the earlier inputs' statements can match anything.
pub async fn pending(conn: Conn<'_>) -> Result<Pending, StoreError> {
    type Kinds = (bool, bool, bool);
    let (literal, urn, conditional) = match conn {
        Backend::Sqlite(c) => sqlx::query_as::<_, Kinds>(&ANY_PENDING_SQLITE).fetch_one(&mut *c).await?,
        Backend::Postgres(c) => sqlx::query_as::<_, Kinds>(&ANY_PENDING_POSTGRES).fetch_one(&mut *c).await?,
    };
    Ok(Pending { literal, urn, conditional })
}

/// Whose pending references a statement matches.
#[derive(Clone, Copy)]
enum Whose {
    /// The input's own, against the whole store.
    Own,
    /// Earlier inputs', against the input's resources.
    Earlier,
}

/// The statements, in order, composed once; each binds the input's ingest id as `$1`.
static STATEMENTS: LazyLock<[(RefKind, Whose, String); 6]> = LazyLock::new(|| {
    [
        (RefKind::Literal, Whose::Own, own(LITERAL, LITERAL_FOUND)),
        (RefKind::Literal, Whose::Earlier, earlier(LITERAL, LITERAL_NEW, LITERAL_FOUND)),
        (RefKind::Urn, Whose::Own, own(URN, URN_FOUND)),
        (RefKind::Urn, Whose::Earlier, earlier(URN, URN_NEW, URN_FOUND)),
        (RefKind::Conditional, Whose::Own, own(CONDITIONAL, CONDITIONAL_FOUND)),
        (RefKind::Conditional, Whose::Earlier, earlier(CONDITIONAL, CONDITIONAL_NEW, CONDITIONAL_FOUND)),
    ]
});

/// Resolves what input `ingest_id`, just written in this transaction, makes resolvable: `own`
/// is what the input left pending (`Pending::among`), `earlier` what the store held pending
/// before it was written (`pending`).
pub async fn run(
    mut conn: Conn<'_>,
    ingest_id: i64,
    own: Pending,
    earlier: Pending,
) -> Result<(), StoreError> {
    for (kind, whose, sql) in STATEMENTS.iter() {
        let may_match = match whose {
            Whose::Own => own.has(*kind),
            Whose::Earlier => earlier.has(*kind),
        };
        if may_match {
            on!(conn.again(), |c| {
                sqlx::query(sql).bind(ingest_id).execute(&mut *c).await?;
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Pending, ANY_PENDING_SQLITE, STATEMENTS};
    use crate::fhir::resolve::{RefKind, RefLink};

    /// No statement walks the pending references: each finds its rows through an index.
    #[tokio::test]
    async fn every_statement_searches_an_index_of_pending_references() {
        for (_, _, sql) in STATEMENTS.iter() {
            let plan = crate::store::query_plan(sql).await;
            let refs = plan.iter().find(|s| s.contains(" refs ")).map_or("", String::as_str);
            let searched = refs.starts_with("SEARCH refs USING ") && refs.contains("INDEX refs_pending_");
            assert!(searched, "{sql}\n{plan:?}");
        }
    }

    /// Asking what is pending reads the first entry of each kind's partial index, not the table.
    #[tokio::test]
    async fn asking_what_is_pending_reads_only_the_partial_indexes() {
        let plan = crate::store::query_plan(&ANY_PENDING_SQLITE).await;
        let reads: Vec<&String> = plan.iter().filter(|s| s.contains(" refs")).collect();
        assert_eq!(reads.len(), 3, "{plan:?}");
        for (read, kind) in reads.iter().zip(["literal", "urn", "conditional"]) {
            assert!(read.contains(&format!("INDEX refs_pending_{kind}")), "{plan:?}");
        }
    }

    #[test]
    fn only_unresolved_links_make_their_kind_pending() {
        let link = |kind, resolved| RefLink {
            path: "subject".into(),
            raw: "x".into(),
            kind,
            target: None,
            resolved,
            conditional: None,
        };
        let links = [
            link(RefKind::Literal, true),
            link(RefKind::Conditional, false),
            link(RefKind::Contained, false),
        ];
        assert_eq!(Pending::among(&links), Pending { literal: false, urn: false, conditional: true });
        assert_eq!(Pending::among(&[]), Pending::default());
    }
}
