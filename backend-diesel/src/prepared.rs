//! [`Sql`]: a raw SQL statement that diesel may prepare once per connection.
//!
//! `diesel::sql_query` marks every statement unsafe to cache, so each call
//! is parsed and planned again (PostgreSQL) or prepared, run and closed in
//! three round trips (MySQL). The statements here are fixed text per queue,
//! so they are safe to cache: [`Sql`] writes its text and binds through
//! diesel's query builder, which numbers the placeholders for the dialect,
//! and diesel's statement cache keys it by that text.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Double, HasSqlType, Integer, Nullable, Text};

/// A statement's text, split at its `?` placeholders.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    parts: Vec<String>,
}

impl Stmt {
    /// `text` with `?` placeholders (never `$n`).
    pub(crate) fn new(text: &str) -> Self {
        Self {
            parts: text.split('?').map(str::to_owned).collect(),
        }
    }

    /// The statement's text, its placeholders `?`.
    #[cfg(test)]
    pub(crate) fn text(&self) -> String {
        self.parts.join("?")
    }

    /// The statement, ready for its binds.
    pub(crate) fn query(&self) -> Sql<'_> {
        Sql {
            parts: &self.parts,
            binds: Vec::with_capacity(self.parts.len().saturating_sub(1)),
            cache: true,
        }
    }

    /// PostgreSQL: the statement, ready for binds that may be arrays.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg_query(&self) -> pg::PgSql<'_> {
        pg::PgSql::new(&self.parts)
    }
}

/// Checks that a statement of `parts` gets one bind per placeholder.
fn check_binds(parts: &[String], binds: usize) -> QueryResult<()> {
    if binds + 1 == parts.len() {
        return Ok(());
    }
    Err(diesel::result::Error::QueryBuilderError(
        format!(
            "statement has {} placeholders and {binds} binds",
            parts.len() - 1,
        )
        .into(),
    ))
}

/// One bound value.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    I64(i64),
    OptI64(Option<i64>),
    I32(i32),
    F64(f64),
    Text(&'a str),
    OptText(Option<&'a str>),
    OptBytes(Option<&'a [u8]>),
}

/// A [`Stmt`] with its binds, run like any diesel query.
#[derive(Debug, Clone)]
pub(crate) struct Sql<'a> {
    parts: &'a [String],
    binds: Vec<Value<'a>>,
    cache: bool,
}

impl<'a> Sql<'a> {
    /// Not kept in the statement cache: for text that varies (a batch insert
    /// of an unusual size), which would otherwise pile up prepared
    /// statements on the server.
    pub(crate) fn uncached(mut self) -> Self {
        self.cache = false;
        self
    }

    pub(crate) fn i64(mut self, v: i64) -> Self {
        self.binds.push(Value::I64(v));
        self
    }

    pub(crate) fn opt_i64(mut self, v: Option<i64>) -> Self {
        self.binds.push(Value::OptI64(v));
        self
    }

    pub(crate) fn i32(mut self, v: i32) -> Self {
        self.binds.push(Value::I32(v));
        self
    }

    pub(crate) fn f64(mut self, v: f64) -> Self {
        self.binds.push(Value::F64(v));
        self
    }

    pub(crate) fn text(mut self, v: &'a str) -> Self {
        self.binds.push(Value::Text(v));
        self
    }

    pub(crate) fn opt_text(mut self, v: Option<&'a str>) -> Self {
        self.binds.push(Value::OptText(v));
        self
    }

    pub(crate) fn opt_bytes(mut self, v: Option<&'a [u8]>) -> Self {
        self.binds.push(Value::OptBytes(v));
        self
    }
}

/// What makes a statement type run like any diesel query: rows of no fixed
/// type (read by name), and no static id, so diesel's statement cache keys
/// it by its text.
macro_rules! runs_as_query {
    ($statement:ident) => {
        impl ::diesel::query_builder::QueryId for $statement<'_> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }

        impl ::diesel::query_builder::Query for $statement<'_> {
            type SqlType = ::diesel::sql_types::Untyped;
        }

        impl<Conn> ::diesel::RunQueryDsl<Conn> for $statement<'_> {}
    };
}

runs_as_query!(Sql);

impl<DB> QueryFragment<DB> for Sql<'_>
where
    DB: Backend
        + HasSqlType<BigInt>
        + HasSqlType<Integer>
        + HasSqlType<Double>
        + HasSqlType<Text>
        + HasSqlType<Binary>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    f64: ToSql<Double, DB>,
    str: ToSql<Text, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    for<'x> Option<&'x str>: ToSql<Nullable<Text>, DB>,
    for<'x> Option<&'x [u8]>: ToSql<Nullable<Binary>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        check_binds(self.parts, self.binds.len())?;
        for (i, part) in self.parts.iter().enumerate() {
            out.push_sql(part);
            let Some(value) = self.binds.get(i) else {
                continue;
            };
            match value {
                Value::I64(v) => out.push_bind_param::<BigInt, i64>(v)?,
                Value::OptI64(v) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?,
                Value::I32(v) => out.push_bind_param::<Integer, i32>(v)?,
                Value::F64(v) => out.push_bind_param::<Double, f64>(v)?,
                Value::Text(v) => out.push_bind_param::<Text, str>(v)?,
                Value::OptText(v) => out.push_bind_param::<Nullable<Text>, Option<&str>>(v)?,
                Value::OptBytes(v) => {
                    out.push_bind_param::<Nullable<Binary>, Option<&[u8]>>(v)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod pg {
    //! Statements whose binds may be PostgreSQL arrays, cached like [`Sql`](super::Sql).

    use diesel::QueryResult;
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, QueryFragment};
    use diesel::sql_types::{Array, BigInt, Binary, Integer, Nullable, Text};

    #[derive(Debug, Clone)]
    enum Value<'a> {
        I64(i64),
        Text(&'a str),
        I64s(Vec<i64>),
        I32s(Vec<i32>),
        OptI64s(Vec<Option<i64>>),
        Texts(Vec<&'a str>),
        OptTexts(Vec<Option<&'a str>>),
        BytesList(Vec<&'a [u8]>),
        OptBytesList(Vec<Option<&'a [u8]>>),
    }

    /// A [`super::Stmt`] with its binds, scalars or arrays.
    #[derive(Debug, Clone)]
    pub(crate) struct PgSql<'a> {
        parts: &'a [String],
        binds: Vec<Value<'a>>,
    }

    impl<'a> PgSql<'a> {
        pub(super) fn new(parts: &'a [String]) -> Self {
            Self {
                parts,
                binds: Vec::with_capacity(parts.len().saturating_sub(1)),
            }
        }

        pub(crate) fn i64(mut self, v: i64) -> Self {
            self.binds.push(Value::I64(v));
            self
        }

        pub(crate) fn text(mut self, v: &'a str) -> Self {
            self.binds.push(Value::Text(v));
            self
        }

        pub(crate) fn i64s(mut self, v: Vec<i64>) -> Self {
            self.binds.push(Value::I64s(v));
            self
        }

        pub(crate) fn i32s(mut self, v: Vec<i32>) -> Self {
            self.binds.push(Value::I32s(v));
            self
        }

        pub(crate) fn opt_i64s(mut self, v: Vec<Option<i64>>) -> Self {
            self.binds.push(Value::OptI64s(v));
            self
        }

        pub(crate) fn texts(mut self, v: Vec<&'a str>) -> Self {
            self.binds.push(Value::Texts(v));
            self
        }

        pub(crate) fn opt_texts(mut self, v: Vec<Option<&'a str>>) -> Self {
            self.binds.push(Value::OptTexts(v));
            self
        }

        pub(crate) fn bytes_list(mut self, v: Vec<&'a [u8]>) -> Self {
            self.binds.push(Value::BytesList(v));
            self
        }

        pub(crate) fn opt_bytes_list(mut self, v: Vec<Option<&'a [u8]>>) -> Self {
            self.binds.push(Value::OptBytesList(v));
            self
        }
    }

    runs_as_query!(PgSql);

    impl QueryFragment<Pg> for PgSql<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            super::check_binds(self.parts, self.binds.len())?;
            for (i, part) in self.parts.iter().enumerate() {
                out.push_sql(part);
                let Some(value) = self.binds.get(i) else {
                    continue;
                };
                match value {
                    Value::I64(v) => out.push_bind_param::<BigInt, i64>(v)?,
                    Value::Text(v) => out.push_bind_param::<Text, str>(v)?,
                    Value::I64s(v) => out.push_bind_param::<Array<BigInt>, Vec<i64>>(v)?,
                    Value::I32s(v) => out.push_bind_param::<Array<Integer>, Vec<i32>>(v)?,
                    Value::OptI64s(v) => {
                        out.push_bind_param::<Array<Nullable<BigInt>>, Vec<Option<i64>>>(v)?;
                    }
                    Value::Texts(v) => out.push_bind_param::<Array<Text>, Vec<&str>>(v)?,
                    Value::OptTexts(v) => {
                        out.push_bind_param::<Array<Nullable<Text>>, Vec<Option<&str>>>(v)?;
                    }
                    Value::BytesList(v) => out.push_bind_param::<Array<Binary>, Vec<&[u8]>>(v)?,
                    Value::OptBytesList(v) => {
                        out.push_bind_param::<Array<Nullable<Binary>>, Vec<Option<&[u8]>>>(v)?;
                    }
                }
            }
            Ok(())
        }
    }
}
