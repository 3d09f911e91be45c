//! Match records: a finished match with its players, per-player mission progress,
//! points, telemetry, and the input log that replays it.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

use super::{with_pool, Store};
use crate::model::{mission_success, MatchRecord};

/// Log rows per INSERT statement (keeps each statement well under bind limits).
const EVENTS_PER_INSERT: usize = 500;

impl Store {
    /// Writes a finished match in one transaction. Idempotent: a match already
    /// recorded is left alone and `false` comes back, so retries never count twice.
    pub async fn record_match(&self, rec: &MatchRecord) -> anyhow::Result<bool> {
        let spec = &rec.spec;
        let result = &rec.summary.result;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.context("starting transaction")?;
            let inserted = sqlx::query(
                "INSERT INTO matches (id, mode, mission_id, world, node, parent, winner, victory, spec, result, started_at, finished_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING")
                .bind(&spec.room).bind(spec.mode.as_str()).bind(&spec.mission).bind(&rec.world).bind(&rec.node)
                .bind(&spec.parent).bind(&result.winner).bind(result.victory)
                .bind(Json(spec)).bind(Json(result)).bind(rec.started_at).bind(rec.finished_at)
                .execute(&mut *tx).await.context("writing match")?
                .rows_affected();
            if inserted == 0 {
                tx.rollback().await.context("rolling back")?;
                return Ok(false);
            }
            for p in &rec.summary.players {
                sqlx::query(
                    "INSERT INTO match_players (match_id, user_id, name, score, rank, correct, answered, correct_ms, forfeited)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(&spec.room).bind(&p.id).bind(&p.name).bind(p.score as i64).bind(p.rank as i32)
                    .bind(p.correct as i32).bind(p.answered as i32).bind(p.correct_ms as i64).bind(p.left)
                    .execute(&mut *tx).await.context("writing match player")?;
                sqlx::query(
                    "INSERT INTO mission_progress (user_id, mission_id, world, match_id, mode, score, correct, answered, questions, success, finished, started_at, finished_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
                    .bind(&p.id).bind(&spec.mission).bind(&rec.world).bind(&spec.room).bind(spec.mode.as_str())
                    .bind(p.score as i64).bind(p.correct as i32).bind(p.answered as i32)
                    .bind(rec.summary.questions_asked as i32).bind(mission_success(p.correct, rec.summary.questions_asked)).bind(true)
                    .bind(rec.started_at).bind(rec.finished_at)
                    .execute(&mut *tx).await.context("writing mission progress")?;
                sqlx::query(
                    "INSERT INTO users (user_id, name, total_points, level, created_at, last_login) VALUES ($1, $2, $3, 1 + $3 / 1000, $4, $4)
                     ON CONFLICT (user_id) DO UPDATE SET total_points = users.total_points + excluded.total_points,
                       level = 1 + (users.total_points + excluded.total_points) / 1000")
                    .bind(&p.id).bind(&p.name).bind(p.score as i64).bind(rec.finished_at)
                    .execute(&mut *tx).await.context("adding points")?;
                let data = json!({"match": spec.room, "mode": spec.mode.as_str(), "mission": spec.mission,
                                  "world": rec.world, "score": p.score, "rank": p.rank, "correct": p.correct});
                sqlx::query("INSERT INTO telemetry_events (user_id, event, data, created_at) VALUES ($1, 'match_finished', $2, $3)")
                    .bind(&p.id).bind(Json(data)).bind(rec.finished_at)
                    .execute(&mut *tx).await.context("writing telemetry")?;
            }
            for (chunk_no, chunk) in rec.log.chunks(EVENTS_PER_INSERT).enumerate() {
                let mut insert = QueryBuilder::new("INSERT INTO match_events (match_id, seq, at_ms, input) ");
                insert.push_values(chunk.iter().enumerate(), |mut row, (i, entry)| {
                    row.push_bind(&spec.room)
                        .push_bind((chunk_no * EVENTS_PER_INSERT + i) as i32)
                        .push_bind(entry.at as i64)
                        .push_bind(entry.input.as_ref().map(Json));
                });
                insert.build().execute(&mut *tx).await.context("writing match events")?;
            }
                        for (user, r) in &rec.ratings {
                sqlx::query("UPDATE users SET rating = $1, rating_rd = $2, rating_volatility = $3 WHERE user_id = $4")
                    .bind(r.rating).bind(r.rd).bind(r.volatility).bind(user)
                    .execute(&mut *tx).await.context("saving ratings")?;
            }
            tx.commit().await.context("committing match")?;
            Ok(true)
        })
    }

    /// The stored result, players and event log of a finished match, as JSON.
    pub async fn match_json(&self, id: &str) -> anyhow::Result<Option<Value>> {
        with_pool!(self, pool => {
            let Some(m) = sqlx::query(
                "SELECT id, mode, mission_id, world, node, parent, winner, victory, spec, result, started_at, finished_at
                 FROM matches WHERE id = $1")
                .bind(id).fetch_optional(pool).await.context("reading match")? else { return Ok(None) };
            let players: Vec<Value> = sqlx::query(
                "SELECT user_id, name, score, rank, correct, answered, correct_ms, forfeited
                 FROM match_players WHERE match_id = $1 ORDER BY rank, user_id")
                .bind(id).fetch_all(pool).await.context("reading match players")?
                .iter().map(|r| -> Result<Value, sqlx::Error> { Ok(json!({
                    "id": r.try_get::<String, _>("user_id")?, "name": r.try_get::<String, _>("name")?,
                    "score": r.try_get::<i64, _>("score")?, "rank": r.try_get::<i32, _>("rank")?,
                    "correct": r.try_get::<i32, _>("correct")?, "answered": r.try_get::<i32, _>("answered")?,
                    "correct_ms": r.try_get::<i64, _>("correct_ms")?, "forfeited": r.try_get::<bool, _>("forfeited")?,
                })) }).collect::<Result<_, _>>().context("decoding match players")?;
            let events: Vec<Value> = sqlx::query("SELECT at_ms, input FROM match_events WHERE match_id = $1 ORDER BY seq")
                .bind(id).fetch_all(pool).await.context("reading match events")?
                .iter().map(|r| -> Result<Value, sqlx::Error> {
                    let input: Option<Json<Value>> = r.try_get("input")?;
                    let mut e = json!({"at": r.try_get::<i64, _>("at_ms")?});
                    if let Some(input) = input { e["input"] = input.0; }
                    Ok(e)
                }).collect::<Result<_, _>>().context("decoding match events")?;
            let decode = || -> Result<Value, sqlx::Error> { Ok(json!({
                "id": m.try_get::<String, _>("id")?,
                "mode": m.try_get::<String, _>("mode")?,
                "mission": m.try_get::<String, _>("mission_id")?,
                "world": m.try_get::<String, _>("world")?,
                "node": m.try_get::<String, _>("node")?,
                "parent": m.try_get::<Option<String>, _>("parent")?,
                "winner": m.try_get::<Option<String>, _>("winner")?,
                "victory": m.try_get::<Option<bool>, _>("victory")?,
                "started_at": m.try_get::<DateTime<Utc>, _>("started_at")?,
                "finished_at": m.try_get::<DateTime<Utc>, _>("finished_at")?,
                "result": m.try_get::<Json<Value>, _>("result")?.0,
                "spec": m.try_get::<Json<Value>, _>("spec")?.0,
                "players": players,
                "events": events,
            })) };
            Ok(Some(decode().context("decoding match")?))
        })
    }
}
