-- Targeting for feature flags: an allowlist and a stable percentage rollout per flag.
-- The switches themselves stay in feature_flags (id = 1), as the operations guide reads them.
CREATE TABLE feature_flag_targeting (
    name       TEXT PRIMARY KEY,
    allow      JSONB NOT NULL DEFAULT '[]',
    percent    INTEGER,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
