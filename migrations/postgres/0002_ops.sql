-- Issue 5: ratings, clans, idempotent weekly rewards, and the operator's backfills.
-- 0001_initial.sql is applied in the field and never edited; everything new lands here.

-- Glicko-2 state beside users.rating (the rating itself, default 1500, exists already):
-- rating deviation (350 = a new player, nothing known) and volatility (Glickman's default 0.06).
ALTER TABLE users ADD COLUMN rating_rd DOUBLE PRECISION NOT NULL DEFAULT 350;
ALTER TABLE users ADD COLUMN rating_volatility DOUBLE PRECISION NOT NULL DEFAULT 0.06;

-- The guide's migrate-users.ts backfill (prestige_level for users created before the column),
-- done once here instead of one UPDATE per user.
UPDATE users SET prestige_level = 0 WHERE prestige_level IS NULL;

-- Clans. points / weekly_points / members are a cache written by `juno-server admin
-- update-clan-stats`; the clan leaderboards compute from mission_progress directly.
CREATE TABLE clans (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    points           BIGINT NOT NULL DEFAULT 0,
    weekly_points    BIGINT NOT NULL DEFAULT 0,
    members          INTEGER NOT NULL DEFAULT 0,
    stats_week       TEXT,
    stats_updated_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- A user belongs to at most one clan; a clan earns its members' points from joined_at on.
CREATE TABLE clan_members (
    user_id   TEXT PRIMARY KEY,
    clan_id   TEXT NOT NULL REFERENCES clans (id) ON DELETE CASCADE,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX clan_members_clan_idx ON clan_members (clan_id);

-- One row per paid weekly leaderboard reward: the primary key makes
-- `admin award-weekly-rewards` pay each user at most once per ISO week, and the
-- reward_items row is inserted in the same transaction.
CREATE TABLE weekly_awards (
    week       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    rank       INTEGER NOT NULL,
    points     BIGINT NOT NULL,
    reward_id  BIGINT,
    awarded_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (week, user_id)
);

-- Leaderboards and the weekly award read mission_progress by finish time.
CREATE INDEX mission_progress_finished_idx ON mission_progress (finished_at);
-- Cleanup deletes by age.
CREATE INDEX notifications_expires_at_idx ON notifications (expires_at);
CREATE INDEX reward_items_created_at_idx ON reward_items (created_at);
