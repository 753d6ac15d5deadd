//! The PostgreSQL backend: sqlx's native Postgres pool, with the shared query layer's
//! arguments bound and rows read as sqlx hands them out.

use crate::Result;
use crate::query::{Arg, Conn, Map, Query, Row};
use sqlx::postgres::{PgArguments, PgConnection, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row as _};
use std::time::Duration;

pub(crate) use sqlx::PgPool;

/// Connects to the database at `url` and applies its migrations.
pub(crate) async fn open(url: &str) -> Result<PgPool> {
    let pool = connect(url).await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// Connects to the database at `url` as it is.
pub(crate) async fn connect(url: &str) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await?)
}

fn bind(q: &Query) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    // Constant SQL stays borrowed; list queries built at run time are owned (and
    // assembled from constant pieces only).
    let mut query = sqlx::query(AssertSqlSafe(q.sql.clone()));
    for a in &q.args {
        query = match a {
            Arg::Int(v) => query.bind(*v),
            Arg::Text(s) => query.bind(s.as_str()),
            Arg::Null => query.bind(None::<&str>),
        };
    }
    query
}

impl Conn for PgConnection {
    async fn all<T: Send + 'static>(&mut self, q: Query, map: Map<T>) -> Result<Vec<T>> {
        let rows = bind(&q).fetch_all(&mut *self).await?;
        rows.iter().map(|r| map(r)).collect()
    }

    async fn execute(&mut self, q: Query) -> Result<u64> {
        Ok(bind(&q).execute(&mut *self).await?.rows_affected())
    }
}

impl Row for PgRow {
    fn len(&self) -> usize {
        sqlx::Row::len(self)
    }

    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }

    fn str(&self, i: usize) -> Result<&str> {
        Ok(self.try_get(i)?)
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }
}
