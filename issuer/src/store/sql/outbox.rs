//! The email outbox and tenants' template overrides (design note 0005, "Email").
//!
//! A message is queued by `INSERT … SELECT … FROM users`, so its recipient is the stored
//! address of the account, and an address without an account queues nothing while running
//! the same statements. The recipient is the normalized address (NFKC, lowercase, ASCII
//! domain): as typed it may be full-width or hold a Unicode domain, which mail servers refuse. Claiming is the backend's own statement ([`SqlBackend::CLAIM_DUE_MAIL`]):
//! PostgreSQL skips rows another replica holds, SQLite has a single writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Binds as _, Columns as _, SqlBackend};
use crate::ids::TenantId;
use crate::store::{
    Addressee, DueMessage, NewLink, OutboxMessage, OutboxStore, StoreError, TemplateOverride,
};

#[async_trait]
impl<B: SqlBackend> OutboxStore for B {
    async fn template_override(
        &self,
        tenant: TenantId,
        template: &str,
    ) -> Result<Option<TemplateOverride>, StoreError> {
        let query = B::query(
            "SELECT sender, subject, body_text, body_html FROM tenant_mail_templates \
             WHERE tenant_id = $1 AND template = $2",
        )
        .id(tenant.as_uuid())
        .text(template);
        let mut conn = self.read().await?;
        let Some(row) = B::fetch_optional(query, &mut conn).await? else {
            return Ok(None);
        };
        Ok(Some(TemplateOverride {
            sender: row.opt_text("sender")?,
            subject: row.opt_text("subject")?,
            body_text: row.opt_text("body_text")?,
            body_html: row.opt_text("body_html")?,
        }))
    }

    async fn enqueue(
        &self,
        to: Addressee<'_>,
        message: &OutboxMessage,
        link: Option<&NewLink>,
    ) -> Result<bool, StoreError> {
        // Every statement selects the accounts with `$1` the tenant, `$2` a user id and `$3` a
        // normalized address, one of the two NULL.
        let (user, email) = match to {
            Addressee::User(user) => (Some(user.as_uuid()), None),
            Addressee::Email(email) => (None, Some(email)),
        };
        let tenant = message.tenant.as_uuid();
        let mut tx = self.write().await?;
        if let Some(link) = link {
            if link.supersede {
                let retire = B::query(
                    "UPDATE one_time_tokens SET used_at = $4 \
                     WHERE tenant_id = $1 AND purpose = $5 AND used_at IS NULL \
                     AND user_id IN (SELECT id FROM users \
                       WHERE tenant_id = $1 AND (id = $2 OR email_normalized = $3))",
                )
                .id(tenant)
                .opt_id(user)
                .opt_text(email)
                .time(message.created_at)
                .text(link.purpose.as_str());
                B::execute(retire, &mut tx).await?;
            }
            let insert = B::query(
                "INSERT INTO one_time_tokens \
                   (token_hash, tenant_id, user_id, purpose, created_at, expires_at) \
                 SELECT $4, tenant_id, id, $5, $6, $7 FROM users \
                 WHERE tenant_id = $1 AND (id = $2 OR email_normalized = $3)",
            )
            .id(tenant)
            .opt_id(user)
            .opt_text(email)
            .bytes(link.hash.as_slice())
            .text(link.purpose.as_str())
            .time(message.created_at)
            .time(link.expires_at);
            B::execute(insert, &mut tx).await?;
        }
        let insert = B::query(
            "INSERT INTO email_outbox \
               (id, tenant_id, user_id, template, recipient, sender, subject, body_text, \
                body_html, attempts, next_attempt_at, created_at) \
             SELECT $4, tenant_id, id, $5, email_normalized, $6, $7, $8, $9, 0, $10, $10 \
             FROM users \
             WHERE tenant_id = $1 AND (id = $2 OR email_normalized = $3)",
        )
        .id(tenant)
        .opt_id(user)
        .opt_text(email)
        .id(message.id)
        .text(message.template)
        .text(&message.sender)
        .text(&message.subject)
        .text(&message.body_text)
        .text(&message.body_html)
        .time(message.created_at);
        let queued = B::execute(insert, &mut tx).await? == 1;
        B::commit(tx).await?;
        Ok(queued)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u16,
    ) -> Result<Vec<DueMessage>, StoreError> {
        let mut tx = self.write().await?;
        let claim = B::query(B::CLAIM_DUE_MAIL)
            .time(now)
            .time(lease_until)
            .int(i64::from(limit));
        let rows = B::fetch_all(claim, &mut tx).await?;
        B::commit(tx).await?;
        rows.iter()
            .map(|row| {
                let attempts = row.int("attempts")?;
                Ok(DueMessage {
                    id: row.id("id")?,
                    recipient: row.text("recipient")?,
                    sender: row.text("sender")?,
                    subject: row.text("subject")?,
                    body_text: row.text("body_text")?,
                    body_html: row.text("body_html")?,
                    attempts: u32::try_from(attempts)
                        .map_err(|_| StoreError::Corrupt(format!("outbox attempts {attempts}")))?,
                })
            })
            .collect()
    }

    async fn mark_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let update = B::query(
            "UPDATE email_outbox SET sent_at = $2, body_text = '', body_html = '', \
             last_error = NULL WHERE id = $1",
        )
        .id(id)
        .time(now);
        let mut tx = self.write().await?;
        B::execute(update, &mut tx).await?;
        Ok(B::commit(tx).await?)
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError> {
        let update = match retry_at {
            Some(retry_at) => B::query(
                "UPDATE email_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
            )
            .id(id)
            .time(retry_at)
            .text(error),
            None => B::query(
                "UPDATE email_outbox SET failed_at = $2, last_error = $3, body_text = '', \
                 body_html = '' WHERE id = $1",
            )
            .id(id)
            .time(now)
            .text(error),
        };
        let mut tx = self.write().await?;
        B::execute(update, &mut tx).await?;
        Ok(B::commit(tx).await?)
    }
}
