use std::fmt;

use brigade_queue::StoreError;

/// A validated PostgreSQL schema name, and the SQL it renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Schema {
    name: String,
}

impl Schema {
    /// Accepts lowercase SQL identifiers only (letters, digits, `_`, not starting with a
    /// digit, at most 40 bytes so that derived names stay under PostgreSQL's 63): the
    /// name is spliced into SQL, so nothing that needs quoting gets through.
    pub(crate) fn new(name: &str) -> Result<Self, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(StoreError::invalid(format!(
                "schema name {name:?} must be 1 to 40 lowercase letters, digits or '_', not starting with a digit"
            )));
        }
        if name.starts_with("pg_") || RESERVED.contains(&name) {
            return Err(StoreError::invalid(format!(
                "schema name {name:?} is reserved by PostgreSQL (a keyword, or the pg_ prefix)"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `sql` with every `{schema}` replaced by the name.
    pub(crate) fn render(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.name)
    }

    /// The LISTEN/NOTIFY channel of this schema's queues.
    pub(crate) fn channel(&self) -> String {
        format!("{}_jobs", self.name)
    }

    /// The LISTEN/NOTIFY channel of this schema's global concurrency limits.
    pub(crate) fn units_channel(&self) -> String {
        format!("{}_units", self.name)
    }
}

/// PostgreSQL's reserved key words, those it refuses as an unquoted schema or table name
/// (the "reserved" and "reserved (can be function or type)" rows of the manual's key word
/// appendix).
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "binary", "both", "case", "cast", "check", "collate", "collation",
    "column", "concurrently", "constraint", "create", "cross", "current_catalog",
    "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
    "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral",
    "leading", "left", "like", "limit", "localtime", "localtimestamp", "natural", "not",
    "notnull", "null", "offset", "on", "only", "or", "order", "outer", "overlaps", "placing",
    "primary", "references", "returning", "right", "select", "session_user", "similar", "some",
    "symmetric", "system_user", "table", "tablesample", "then", "to", "trailing", "true",
    "union", "unique", "user", "using", "variadic", "verbose", "when", "where", "window",
    "with",
];

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_identifiers_only() {
        for good in ["brigade", "jobs_2", "_x"] {
            assert!(Schema::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Brigade",
            "1jobs",
            "a;drop table x",
            "a.b",
            "x\"y",
            &"a".repeat(41),
            "user",
            "order",
            "pg_jobs",
        ] {
            assert!(Schema::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let schema = Schema::new("q").unwrap();
        assert_eq!(schema.render("{schema}.a, {schema}.b"), "q.a, q.b");
    }
}
