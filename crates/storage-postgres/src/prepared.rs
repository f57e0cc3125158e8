//! Statements prepared once per connection. `execute` with SQL text prepares the statement
//! first on every call: one more round trip to the database, and a sign-in's transaction runs
//! several statements.

use std::collections::HashMap;

use tokio_postgres::{Client, Error, GenericClient, Statement};

/// A connection's prepared statements, by their SQL text.
#[derive(Default)]
pub(crate) struct Prepared(HashMap<&'static str, Statement>);

impl Prepared {
    /// The statement for `sql`, prepared through `client` (the connection or one of its
    /// transactions) the first time it is asked for.
    pub(crate) async fn get(
        &mut self,
        client: &impl GenericClient,
        sql: &'static str,
    ) -> Result<Statement, Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).await?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// The main connection and the statements prepared on it (used by one task at a time).
pub(crate) struct Conn {
    /// The connection.
    pub(crate) client: Client,
    /// Its prepared statements.
    pub(crate) prepared: Prepared,
}

impl std::ops::Deref for Conn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}
