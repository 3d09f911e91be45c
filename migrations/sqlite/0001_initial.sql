-- The operations guide's tables (users, missions, mission_progress, telemetry_events,
-- notifications, reward_items, feature_flags, auth_logs) with the columns it queries,
-- plus the match records (matches, match_players, match_events).

CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    total_points   BIGINT NOT NULL DEFAULT 0,
    streak         INTEGER NOT NULL DEFAULT 0,
    level          INTEGER NOT NULL DEFAULT 1,
    prestige_level INTEGER DEFAULT 0,
    rating         REAL NOT NULL DEFAULT 1500,
    created_at     TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_login     TEXT
);

CREATE TABLE missions (
    id         TEXT PRIMARY KEY,
    world      TEXT NOT NULL,
    title      TEXT NOT NULL,
    difficulty TEXT NOT NULL,
    questions  TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE mission_progress (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    mission_id  TEXT NOT NULL,
    world       TEXT NOT NULL,
    match_id    TEXT,
    mode        TEXT,
    score       BIGINT NOT NULL DEFAULT 0,
    correct     INTEGER NOT NULL DEFAULT 0,
    answered    INTEGER NOT NULL DEFAULT 0,
    questions   INTEGER NOT NULL DEFAULT 0,
    success     INTEGER NOT NULL DEFAULT 0,
    finished    INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at TEXT
);
CREATE INDEX mission_progress_user_idx ON mission_progress (user_id);
CREATE INDEX mission_progress_started_idx ON mission_progress (started_at);

CREATE TABLE telemetry_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT,
    event      TEXT NOT NULL,
    data       TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX telemetry_events_created_at_idx ON telemetry_events (created_at);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    message    TEXT NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at TEXT
);

CREATE TABLE reward_items (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    amount     BIGINT NOT NULL DEFAULT 0,
    reason     TEXT,
    claimed    INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- One row (id = 1) holding every flag as a JSON object, as the guide's loadFeatureFlags reads it.
CREATE TABLE feature_flags (
    id         INTEGER PRIMARY KEY,
    flags      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO feature_flags (id, flags) VALUES (1, '{"hrm_trm": true, "mangle_zpd": true, "adventure_mode": true, "daily_quests": true, "random_drops": true, "power_ups": true, "achievements": true, "seasons": true, "analytics": true, "special_events": true, "pvp_duels": true, "battle_royale": true, "tournaments": true, "raid_bosses": true, "clans": false, "mentoring": false, "cosmetics_shop": true, "premium_currency": false}');

CREATE TABLE auth_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT,
    success    INTEGER NOT NULL,
    reason     TEXT,
    ip         TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX auth_logs_created_at_idx ON auth_logs (created_at);

CREATE TABLE matches (
    id          TEXT PRIMARY KEY,
    mode        TEXT NOT NULL,
    mission_id  TEXT NOT NULL,
    world       TEXT NOT NULL,
    node        TEXT NOT NULL,
    parent      TEXT,
    winner      TEXT,
    victory     INTEGER,
    spec        TEXT NOT NULL,
    result      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE INDEX matches_finished_at_idx ON matches (finished_at);

CREATE TABLE match_players (
    match_id   TEXT NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    score      BIGINT NOT NULL,
    rank       INTEGER NOT NULL,
    correct    INTEGER NOT NULL,
    answered   INTEGER NOT NULL,
    correct_ms BIGINT NOT NULL,
    forfeited  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (match_id, user_id)
);
CREATE INDEX match_players_user_idx ON match_players (user_id);

-- Every accepted input with its room time: the log that replays the match exactly.
CREATE TABLE match_events (
    match_id TEXT NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    at_ms    BIGINT NOT NULL,
    input    TEXT,
    PRIMARY KEY (match_id, seq)
);
