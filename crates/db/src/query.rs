//! The query layer both backends share: a statement is one SQL text with `$n`
//! placeholders and its arguments, rows are read by column position through one trait,
//! and mapped straight into domain types by plain functions.

use crate::postgres::PgPool;
use crate::sqlite::{self, Sqlite};
use crate::{DbError, Result};
use std::borrow::Cow;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub enum Arg {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// A text-typed NULL (PostgreSQL wants a type even for NULL).
    Null,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::Null, Arg::Text)
    }
}

/// One statement: its SQL text (the same for both backends) and the values of `$1`,
/// `$2`, … in that order. The arguments are owned, so a query can be sent to the
/// thread whose connection runs it.
#[derive(Debug)]
pub struct Query {
    /// The SQL text, with `$n` placeholders.
    pub sql: Cow<'static, str>,
    /// The values of `$1`, `$2`, …
    pub args: Vec<Arg>,
}

/// `q!(SQL, a, b, …)`: a [`Query`] binding `a` to `$1`, `b` to `$2`, and so on. The SQL
/// is a constant or built from constant pieces only; values are always bound.
#[macro_export]
macro_rules! q {
    ($sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::Query {
            sql: ::std::borrow::Cow::from($sql),
            args: vec![$($crate::Arg::from($arg)),*],
        }
    };
}

/// A result row of either backend, read by column position (0-based).
pub trait Row {
    /// How many columns it has.
    fn len(&self) -> usize;
    /// True if it has no column.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64>;
    /// An integer column that may be NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    /// Text borrowed from the row, so that ids and JSON parse without a copy.
    fn str(&self, i: usize) -> Result<&str>;
    /// Text that may be NULL.
    fn opt_str(&self, i: usize) -> Result<Option<&str>>;
}

/// Turns a row into a value. A plain function, so it can travel to another thread with
/// its query and run there, on the row as the database hands it out.
pub type Map<T> = fn(&dyn Row) -> Result<T>;

/// Reads a row's columns left to right, in the order the statement names them: mapping
/// functions read fields in the order of their column list.
pub struct Cols<'r> {
    row: &'r dyn Row,
    next: usize,
}

impl<'r> Cols<'r> {
    /// Starts at the first column.
    pub fn new(row: &'r dyn Row) -> Self {
        Self { row, next: 0 }
    }

    fn advance(&mut self) -> usize {
        self.next += 1;
        self.next - 1
    }

    /// The next column, an integer.
    pub fn int(&mut self) -> Result<i64> {
        let i = self.advance();
        self.row.int(i)
    }

    /// The next column, an integer or NULL.
    pub fn opt_int(&mut self) -> Result<Option<i64>> {
        let i = self.advance();
        self.row.opt_int(i)
    }

    /// The next column, text borrowed from the row.
    pub fn str(&mut self) -> Result<&'r str> {
        let i = self.advance();
        self.row.str(i)
    }

    /// The next column, text.
    pub fn text(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }

    /// The next column, text or NULL.
    pub fn opt_text(&mut self) -> Result<Option<String>> {
        let i = self.advance();
        Ok(self.row.opt_str(i)?.map(str::to_owned))
    }

    /// Text parsed with `FromStr` (ids, states).
    pub fn parse<T>(&mut self) -> Result<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.str()?.parse().map_err(crate::corrupt)
    }

    /// Text or NULL, parsed with `FromStr`.
    pub fn opt_parse<T>(&mut self) -> Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let i = self.advance();
        self.row
            .opt_str(i)?
            .map(|s| s.parse().map_err(crate::corrupt))
            .transpose()
    }
}

/// Something that runs statements: a connection of either backend, or a handle that
/// sends each statement to one.
///
/// On SQLite the in-place implementation ([`sqlite::Local`]) never waits, which is what
/// lets an [`Atomic`] body, written once as async code, run to completion on the
/// writer thread.
// Callers hold concrete connections, whose futures' `Send` the compiler sees through;
// no caller is generic over a `Conn` that must be sent.
#[allow(async_fn_in_trait)]
pub trait Conn {
    /// Every row the statement returns.
    async fn all<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<Vec<T>>;

    /// Runs a statement that returns no rows; the number of rows it changed.
    async fn execute(&mut self, q: Query) -> Result<u64>;

    /// The first row, if any (every caller's statement returns at most one).
    async fn optional<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<Option<T>> {
        Ok(self.all(q, map).await?.into_iter().next())
    }

    /// The first row, which must be there.
    async fn one<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<T> {
        self.optional(q, map)
            .await?
            .ok_or(DbError::Db(sqlx::Error::RowNotFound))
    }
}

/// Several statements that commit together or not at all. A type rather than a closure
/// because its body is generic over the connection: on SQLite it runs on the writer
/// thread, on PostgreSQL inside a sqlx transaction.
// As for `Conn`: bodies are concrete types, run by `Db::atomic`.
#[allow(async_fn_in_trait)]
pub trait Atomic: Send + 'static {
    /// What the body answers once committed.
    type Output: Send + 'static;
    /// The statements, run on `c` inside the transaction.
    async fn run(self, c: &mut impl Conn) -> Result<Self::Output>;
}

/// A handle that runs each statement where [`Db::read`](crate::Db::read) or
/// [`Db::write`](crate::Db::write) said.
pub struct On<'a>(Target<'a>);

enum Target<'a> {
    Sqlite(&'a Sqlite, sqlite::Side),
    Postgres(&'a PgPool),
}

impl<'a> On<'a> {
    pub(crate) fn sqlite(s: &'a Sqlite, side: sqlite::Side) -> Self {
        Self(Target::Sqlite(s, side))
    }

    pub(crate) fn postgres(p: &'a PgPool) -> Self {
        Self(Target::Postgres(p))
    }
}

impl Conn for On<'_> {
    async fn all<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<Vec<T>> {
        match &self.0 {
            Target::Sqlite(s, side) => {
                s.run(*side, move |c| sqlite::ready(sqlite::Local(c).all(q, map)))
                    .await
            }
            Target::Postgres(p) => p.acquire().await?.all(q, map).await,
        }
    }

    async fn execute(&mut self, q: Query) -> Result<u64> {
        match &self.0 {
            Target::Sqlite(s, side) => {
                s.run(*side, move |c| sqlite::ready(sqlite::Local(c).execute(q)))
                    .await
            }
            Target::Postgres(p) => p.acquire().await?.execute(q).await,
        }
    }
}
