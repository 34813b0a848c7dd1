DROP TABLE IF EXISTS tenant_mfa_policies;
DROP TABLE IF EXISTS mfa_challenges;
DROP TABLE IF EXISTS mfa_backup_codes;
DROP TABLE IF EXISTS mfa_totp;
