DROP TABLE IF EXISTS tenant_mail_templates;
DROP TABLE IF EXISTS one_time_tokens;
DROP TABLE IF EXISTS email_outbox;
