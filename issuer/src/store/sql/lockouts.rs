//! Lockout counters, keyed by account key (design note 0005, "Lockout").
//!
//! An attempt is checked against the lock and counted in one write transaction that holds
//! the counter's row: PostgreSQL locks it with the upsert that makes sure it exists, SQLite
//! has a single writer. So concurrent attempts on one account, on any replica, are each
//! counted once, the rule ([`LockoutRule::after_failure`]) always sees the latest count, the
//! attempt that reaches a delay or the lock turns away every later one, and a success
//! deleting the row meanwhile only makes the count start afresh.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::{Binds as _, Columns as _, SqlBackend};
use crate::ids::TenantId;
use crate::store::{AttemptStart, LockoutRule, LockoutState, LockoutStore, StoreError};

#[async_trait]
impl<B: SqlBackend> LockoutStore for B {
    async fn begin_attempt(
        &self,
        tenant: TenantId,
        account: &[u8; 32],
        now: DateTime<Utc>,
        default: LockoutRule,
    ) -> Result<AttemptStart, StoreError> {
        let mut tx = self.write().await?;
        // One statement makes sure the row exists and locks it. An insert that did nothing on
        // conflict, then a `SELECT … FOR UPDATE`, left a gap in which a success could delete
        // the row, and the count below found none.
        let ensure = B::query(
            "INSERT INTO account_lockouts (tenant_id, account_key, failures) VALUES ($1, $2, 0) \
             ON CONFLICT (tenant_id, account_key) \
             DO UPDATE SET failures = account_lockouts.failures",
        )
        .id(tenant.as_uuid())
        .bytes(account.as_slice());
        B::execute(ensure, &mut tx).await?;

        let before = current_state::<B>(&mut tx, tenant, account).await?;
        if let Some(until) = before.locked_until.filter(|until| *until > now) {
            B::commit(tx).await?;
            return Ok(AttemptStart::Refused(until));
        }
        let rule = tenant_rule::<B>(&mut tx, tenant, default).await?;
        let change = rule.after_failure(Some(before), now);

        let update = B::query(
            "UPDATE account_lockouts SET failures = $3, last_failure_at = $4, locked_until = $5 \
             WHERE tenant_id = $1 AND account_key = $2",
        )
        .id(tenant.as_uuid())
        .bytes(account.as_slice())
        .int(i64::from(change.after.failures))
        .opt_time(change.after.last_failure_at)
        .opt_time(change.after.locked_until);
        B::execute(update, &mut tx).await?;
        B::commit(tx).await?;
        Ok(AttemptStart::Counted(change))
    }

    async fn reset(&self, tenant: TenantId, account: &[u8; 32]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let delete =
            B::query("DELETE FROM account_lockouts WHERE tenant_id = $1 AND account_key = $2")
                .id(tenant.as_uuid())
                .bytes(account.as_slice());
        B::execute(delete, &mut tx).await?;
        B::commit(tx).await?;
        Ok(())
    }
}

async fn current_state<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    account: &[u8; 32],
) -> Result<LockoutState, StoreError> {
    let query = B::query(
        "SELECT failures, last_failure_at, locked_until FROM account_lockouts \
         WHERE tenant_id = $1 AND account_key = $2",
    )
    .id(tenant.as_uuid())
    .bytes(account.as_slice());
    let row = B::fetch_one(query, conn).await?;
    let failures = row.int("failures")?;
    Ok(LockoutState {
        failures: u32::try_from(failures)
            .map_err(|_| StoreError::Corrupt(format!("lockout failures {failures}")))?,
        last_failure_at: row.opt_time("last_failure_at")?,
        locked_until: row.opt_time("locked_until")?,
    })
}

/// The tenant's override of `default`, column by column.
async fn tenant_rule<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    default: LockoutRule,
) -> Result<LockoutRule, StoreError> {
    let query = B::query(
        "SELECT max_failures, lock_secs FROM tenant_lockout_policies WHERE tenant_id = $1",
    )
    .id(tenant.as_uuid());
    let Some(row) = B::fetch_optional(query, conn).await? else {
        return Ok(default);
    };
    let max_failures = match row.opt_int("max_failures")? {
        Some(value) => u32::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("tenant max_failures {value}")))?,
        None => default.max_failures,
    };
    let lock = match row.opt_int("lock_secs")? {
        Some(value) => TimeDelta::try_seconds(value)
            .ok_or_else(|| StoreError::Corrupt(format!("tenant lock_secs {value}")))?,
        None => default.lock,
    };
    Ok(LockoutRule { max_failures, lock })
}
