-- The `custom` plan's quotas are set per workspace by an instance admin (SPEC §5).
ALTER TABLE workspaces ADD COLUMN custom_included_sms_per_month INTEGER
    CHECK (custom_included_sms_per_month >= 0);
ALTER TABLE workspaces ADD COLUMN custom_included_email_per_day INTEGER
    CHECK (custom_included_email_per_day >= 0);
