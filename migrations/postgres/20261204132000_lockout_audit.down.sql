DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS tenant_lockout_policies;
DROP TABLE IF EXISTS account_lockouts;
