//! The query layer both backends share: a statement is one SQL text with `$n`
//! placeholders and its arguments, rows are read by column position through one trait,
//! and mapped straight into domain types by plain functions.

use crate::postgres::PgPool;
use crate::sqlite::{self, Sqlite};
use crate::{Result, StoreError};
use std::borrow::Cow;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
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
pub(crate) struct Query {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg>,
}

/// `q!(SQL, a, b, …)`: a [`Query`] binding `a` to `$1`, `b` to `$2`, and so on. The SQL
/// is a constant or built from constant pieces only; values are always bound.
macro_rules! q {
    ($sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::db::Query {
            sql: ::std::borrow::Cow::from($sql),
            args: vec![$($crate::db::Arg::from($arg)),*],
        }
    };
}
pub(crate) use q;

/// A result row of either backend, read by column position (0-based).
pub(crate) trait Row {
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    /// Text borrowed from the row, so that ids and JSON parse without a copy.
    fn str(&self, i: usize) -> Result<&str>;
    fn opt_str(&self, i: usize) -> Result<Option<&str>>;
}

/// Turns a row into a value. A plain function, so it can travel to another thread with
/// its query and run there, on the row as the database hands it out.
pub(crate) type Map<T> = fn(&dyn Row) -> Result<T>;

/// Reads a row's columns left to right, in the order the statement names them: mapping
/// functions read fields in the order of their column list.
pub(crate) struct Cols<'r> {
    row: &'r dyn Row,
    next: usize,
}

impl<'r> Cols<'r> {
    pub fn new(row: &'r dyn Row) -> Self {
        Self { row, next: 0 }
    }

    fn advance(&mut self) -> usize {
        self.next += 1;
        self.next - 1
    }

    pub fn int(&mut self) -> Result<i64> {
        let i = self.advance();
        self.row.int(i)
    }

    pub fn opt_int(&mut self) -> Result<Option<i64>> {
        let i = self.advance();
        self.row.opt_int(i)
    }

    pub fn str(&mut self) -> Result<&'r str> {
        let i = self.advance();
        self.row.str(i)
    }

    pub fn text(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }

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
pub(crate) trait Conn {
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
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }
}

/// Several statements that commit together or not at all. A type rather than a closure
/// because its body is generic over the connection: on SQLite it runs on the writer
/// thread, on PostgreSQL inside a sqlx transaction.
pub(crate) trait Atomic: Send + 'static {
    type Output: Send + 'static;
    async fn run(self, c: &mut impl Conn) -> Result<Self::Output>;
}

/// The database behind a [`crate::Store`].
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(Sqlite),
    Postgres(PgPool),
}

impl Db {
    /// Where reads go: any reader connection (SQLite), the pool (PostgreSQL).
    pub fn read(&self) -> On<'_> {
        match self {
            Db::Sqlite(s) => On::Sqlite(s, sqlite::Side::Read),
            Db::Postgres(p) => On::Postgres(p),
        }
    }

    /// Where writes go: the writer thread (SQLite), the pool (PostgreSQL). On SQLite
    /// every write is atomic on its own (it runs inside its own savepoint).
    pub fn write(&self) -> On<'_> {
        match self {
            Db::Sqlite(s) => On::Sqlite(s, sqlite::Side::Write),
            Db::Postgres(p) => On::Postgres(p),
        }
    }

    /// Runs `body` as one transaction.
    pub async fn atomic<A: Atomic>(&self, body: A) -> Result<A::Output> {
        match self {
            Db::Sqlite(s) => {
                s.run(sqlite::Side::Write, move |c| {
                    sqlite::ready(body.run(&mut sqlite::Local(c)))
                })
                .await
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                let out = body.run(&mut *tx).await?;
                tx.commit().await?;
                Ok(out)
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A handle that runs each statement where [`Db::read`] or [`Db::write`] said.
pub(crate) enum On<'a> {
    Sqlite(&'a Sqlite, sqlite::Side),
    Postgres(&'a PgPool),
}

impl Conn for On<'_> {
    async fn all<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<Vec<T>> {
        match self {
            On::Sqlite(s, side) => {
                s.run(*side, move |c| sqlite::ready(sqlite::Local(c).all(q, map)))
                    .await
            }
            On::Postgres(p) => p.acquire().await?.all(q, map).await,
        }
    }

    async fn execute(&mut self, q: Query) -> Result<u64> {
        match self {
            On::Sqlite(s, side) => {
                s.run(*side, move |c| sqlite::ready(sqlite::Local(c).execute(q)))
                    .await
            }
            On::Postgres(p) => p.acquire().await?.execute(q).await,
        }
    }
}
