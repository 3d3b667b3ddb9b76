//! Fuzzy search across contacts, companies and deals.
//!
//! Matching a query's trigrams against every row is slow when rows share a small
//! vocabulary (a million contacts, a few thousand distinct names: "smith" rechecks
//! thousands of rows). So search works on words (see `crm_words` in 0001_crm.sql):
//!
//! 1. each query word is looked up in the `search_words` dictionary: trigram neighbours,
//!    kept when they are the word itself, one or two edits away (Damerau), or extend it
//!    (a word still being typed): "jonh" → john, jon;
//! 2. records are found by exact words through GIN indexes on their `words` arrays: every
//!    query word must be matched by one of its spellings;
//! 3. at most [`CANDIDATES`] of them per kind are ranked by similarity to the query.
//!
//! A strict pass (exact words where they exist) runs first; only when it finds nothing do
//! a loose pass (all spellings) and then a pass that accepts any word run.
//! An email-looking query matches email prefixes; a phone-looking one matches digits.

use crm_concepts::records::{Id, RecordKind, SearchHit};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::Db;
use crate::error::StoreError;

pub const MAX_LIMIT: u32 = 50;
/// Longer queries are cut: matching cost grows with the query.
const MAX_QUERY_CHARS: usize = 100;
const MAX_QUERY_WORDS: usize = 6;
/// Dictionary neighbours fetched per query word before the edit-distance check.
const NEIGHBOURS: i64 = 40;
/// Spellings kept per query word in the loose pass.
const MAX_SPELLINGS: usize = 8;
/// Records ranked per kind and pass. Every candidate costs a heap fetch; beyond this the
/// query is too vague ("smith") for the order among equals to matter.
const CANDIDATES: i64 = 50;
/// Trigram similarity for dictionary neighbours (`%`), set on every pooled session by
/// `Db::connect`. Low on purpose: the edit-distance check decides.
pub const WORD_THRESHOLD: &str = "0.2";

/// The query as matched: trimmed and bounded.
pub fn normalize(q: &str) -> &str {
    let q = q.trim();
    match q.char_indices().nth(MAX_QUERY_CHARS) {
        Some((i, _)) => &q[..i],
        None => q,
    }
}

/// The spellings that may stand for one query word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordSpellings {
    /// the word itself, when the dictionary has it
    pub exact: Option<String>,
    /// typo corrections and extensions, closest first
    pub others: Vec<String>,
}

impl WordSpellings {
    /// Exact where it exists, otherwise the corrections.
    fn strict(&self) -> Vec<String> {
        match &self.exact {
            Some(w) => vec![w.clone()],
            None => self.others.clone(),
        }
    }
    fn loose(&self) -> Vec<String> {
        self.exact.iter().chain(self.others.iter()).take(MAX_SPELLINGS).cloned().collect()
    }
}

/// How a query finds records.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// one entry per query word that the dictionary knows something like
    Words(Vec<WordSpellings>),
    /// lower-cased email prefix
    Email(String),
    /// digits anywhere in the phone number
    Phone(String),
    /// nothing can match (only punctuation, or no word resembles anything known)
    Nothing,
}

/// Which spellings of each word a pass uses, and whether all words or any must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Strict,
    Loose,
    AnyWord,
}

impl Matcher {
    pub async fn new(conn: &mut PgConnection, q: &str) -> Result<Matcher, StoreError> {
        let q = normalize(q);
        if q.contains('@') {
            return Ok(Matcher::Email(q.to_lowercase()));
        }
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 4 && q.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
            return Ok(Matcher::Phone(digits));
        }
        // Words are alphanumeric (crm_words splits on everything else), so they carry no
        // LIKE metacharacters.
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT q.i, q.w, m.word
             FROM unnest(crm_words($1)) WITH ORDINALITY AS q (w, i)
             CROSS JOIN LATERAL (
                 SELECT s.word
                 FROM search_words s
                 WHERE s.word % q.w OR (length(q.w) >= 3 AND s.word LIKE q.w || '%')
                 ORDER BY s.word = q.w DESC, similarity(s.word, q.w) DESC, s.word
                 LIMIT $2
             ) m
             WHERE q.i <= $3
             ORDER BY q.i",
        )
        .bind(q)
        .bind(NEIGHBOURS)
        .bind(MAX_QUERY_WORDS as i64)
        .fetch_all(&mut *conn)
        .await?;

        let mut words: Vec<(i64, WordSpellings)> = Vec::new();
        for (i, query_word, word) in rows {
            if words.last().is_none_or(|(j, _)| *j != i) {
                words.push((i, WordSpellings { exact: None, others: Vec::new() }));
            }
            let Some((_, spellings)) = words.last_mut() else {
                continue;
            };
            if word == query_word {
                spellings.exact = Some(word);
            } else if is_spelling_of(&word, &query_word) {
                spellings.others.push(word);
            }
        }
        // A word nothing resembles (a stray letter, a typo too far gone) should not veto
        // the others.
        let words: Vec<WordSpellings> =
            words.into_iter().map(|(_, s)| s).filter(|s| s.exact.is_some() || !s.others.is_empty()).collect();
        if words.is_empty() { Ok(Matcher::Nothing) } else { Ok(Matcher::Words(words)) }
    }

    /// Appends ` AND …` restricting alias `t` of `kind`'s table to matches.
    pub fn push_filter(&self, qb: &mut QueryBuilder<Postgres>, kind: RecordKind, pass: Pass) {
        match self {
            Matcher::Words(words) => {
                qb.push(" AND (");
                for (i, w) in words.iter().enumerate() {
                    if i > 0 {
                        qb.push(if pass == Pass::AnyWord { " OR " } else { " AND " });
                    }
                    let set = if pass == Pass::Strict { w.strict() } else { w.loose() };
                    qb.push("t.words && ").push_bind(set).push("::text[]");
                }
                qb.push(")");
            }
            Matcher::Email(prefix) if kind == RecordKind::Contact => {
                // A range on the text_pattern_ops index: LIKE with a bound parameter
                // cannot use it in a generic plan.
                let upper = format!("{prefix}\u{10FFFF}");
                qb.push(" AND lower(t.email) ~>=~ ").push_bind(prefix.clone());
                qb.push(" AND lower(t.email) ~<~ ").push_bind(upper);
            }
            Matcher::Phone(digits) if kind == RecordKind::Contact => {
                qb.push(" AND t.phone_digits LIKE ").push_bind(format!("%{digits}%"));
            }
            _ => {
                qb.push(" AND FALSE");
            }
        }
    }

    /// The passes worth running, in order; each runs only when the ones before found
    /// nothing, so a query costs one pass unless it needs a fallback.
    fn passes(&self) -> Vec<Pass> {
        match self {
            Matcher::Words(words) => {
                let mut passes = vec![Pass::Strict];
                if words.iter().any(|w| w.exact.is_some() && !w.others.is_empty()) {
                    passes.push(Pass::Loose);
                }
                if words.len() > 1 {
                    passes.push(Pass::AnyWord);
                }
                passes
            }
            Matcher::Nothing => Vec::new(),
            _ => vec![Pass::Strict],
        }
    }
}

/// Whether dictionary word `w` may be what the user meant by `q`: a typo away (one edit
/// for short words, two for long ones), or `q` is the start of it.
fn is_spelling_of(w: &str, q: &str) -> bool {
    let len = q.chars().count();
    let allowed = match len {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    };
    (len >= 3 && w.starts_with(q)) || (allowed > 0 && edit_distance(w, q) <= allowed)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost one ("jonh" → "john" is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The best `limit` hits over `kinds` (contacts, companies and deals when empty), best first.
pub async fn search(db: &Db, q: &str, kinds: &[RecordKind], limit: u32) -> Result<Vec<SearchHit>, StoreError> {
    let q = normalize(q);
    if q.is_empty() {
        return Err(StoreError::InvalidQuery("q must not be empty".into()));
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(StoreError::InvalidQuery(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let all = [RecordKind::Contact, RecordKind::Company, RecordKind::Deal];
    let kinds: Vec<RecordKind> = if kinds.is_empty() { all.to_vec() } else { kinds.to_vec() };
    if let Some(k) = kinds.iter().find(|k| !all.contains(k)) {
        return Err(StoreError::InvalidQuery(format!(
            "cannot search {}: expected contacts, companies or deals",
            k.plural()
        )));
    }

    let mut conn = db.pool.acquire().await?;
    let matcher = Matcher::new(&mut conn, q).await?;
    for pass in matcher.passes() {
        let mut hits = ranked(&mut conn, &kinds, &matcher, pass, q, limit).await?;
        if !hits.is_empty() {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.kind.cmp(&b.kind)).then(a.id.cmp(&b.id)));
            hits.truncate(limit as usize);
            return Ok(hits);
        }
    }
    Ok(Vec::new())
}

/// One pass over all kinds in one round trip.
async fn ranked(
    conn: &mut PgConnection,
    kinds: &[RecordKind],
    matcher: &Matcher,
    pass: Pass,
    q: &str,
    limit: u32,
) -> Result<Vec<SearchHit>, StoreError> {
    let lowered = q.to_lowercase();
    let mut qb = QueryBuilder::<Postgres>::new("");
    for (i, &kind) in kinds.iter().enumerate() {
        let (table, title, subtitle) = match kind {
            RecordKind::Contact => ("contacts", "t.name", "COALESCE(t.email, t.phone)"),
            RecordKind::Company => ("companies", "t.name", "t.domain"),
            _ => ("deals", "t.title", "(SELECT s.name FROM stages s WHERE s.id = t.stage_id)"),
        };
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push(format!(
            "(SELECT '{}'::text AS kind, c.id, c.title, c.subtitle, GREATEST(word_similarity(",
            kind.as_str()
        ));
        qb.push_bind(lowered.clone()).push(", lower(c.title)), similarity(").push_bind(lowered.clone());
        qb.push(format!(
            ", lower(c.title)))::float4 AS score FROM (SELECT t.id, {title} AS title, {subtitle} AS subtitle \
             FROM {table} t WHERE t.deleted_at IS NULL"
        ));
        matcher.push_filter(&mut qb, kind, pass);
        qb.push(" LIMIT ").push_bind(CANDIDATES);
        qb.push(") c ORDER BY score DESC, length(c.title), c.id LIMIT ").push_bind(i64::from(limit)).push(")");
    }
    let rows: Vec<(String, Id, String, Option<String>, f32)> = qb.build_query_as().fetch_all(conn).await?;
    rows.into_iter()
        .map(|(kind, id, title, subtitle, score)| {
            let kind =
                kind.parse().map_err(|_| StoreError::Db(sqlx::Error::Protocol(format!("unexpected kind {kind}"))))?;
            Ok(SearchHit { kind, id, title, subtitle, score })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        assert_eq!(edit_distance("jonh", "john"), 1);
        assert_eq!(edit_distance("smth", "smith"), 1);
        assert_eq!(edit_distance("kimbrely", "kimberly"), 1);
        assert_eq!(edit_distance("ann", "bob"), 3);
    }

    #[test]
    fn spellings_allow_more_typos_in_longer_words() {
        assert!(is_spelling_of("john", "jonh"));
        assert!(is_spelling_of("johnson", "john"), "a word being typed");
        assert!(!is_spelling_of("joe", "jo"), "too short to guess");
        assert!(is_spelling_of("alexander", "alexnadr"), "a swap and a dropped letter");
        assert!(!is_spelling_of("smith", "jones"));
    }
}
