//! How a match ends: each mode's final ordering, the `result` frame and the
//! [`Summary`] the store records; and the mid-match ranks `score` frames give.

use std::cmp::Reverse;

use juno_protocol::limits::{FULL_LIST_MAX_PLAYERS, RESULT_STANDINGS_MAX};
use juno_protocol::{MatchResult, Mode, ServerMsg, Standing};

use super::ranking::{rank_by, survival};
use super::Room;
use crate::{Millis, Output, PlayerSummary, Summary};

impl Room {
    /// Ranks as `score` frames give them mid-match: battle royale by its mode
    /// ordering, every other mode by score. Indexed by seat.
    pub(super) fn live_ranks(&self) -> Vec<u32> {
        let players = self.roster.all();
        let ranked = match self.spec.mode {
            Mode::BattleRoyale => rank_by(players, |p| (survival(p), Reverse(p.score)), |_| ()),
            _ => rank_by(players, |p| Reverse(p.score), |_| ()),
        };
        let mut by_seat = vec![0; players.len()];
        for (i, rank) in ranked {
            by_seat[i] = rank;
        }
        by_seat
    }

    /// The final ordering of the mode, best first, with ranks.
    fn final_ranking(&self) -> Vec<(usize, u32)> {
        let players = self.roster.all();
        match self.spec.mode {
            Mode::Duel => super::duel::ranking(players, self.spec.parent.is_some()),
            Mode::BattleRoyale => rank_by(players, |p| (survival(p), Reverse(p.score)), |_| ()),
            Mode::Raid => rank_by(players, |p| Reverse(p.score), |_| ()),
            Mode::Tournament => rank_by(players, survival, |p| Reverse(p.score)),
        }
    }

    /// Ends the match at `now`: broadcasts `result` and hands over the summary.
    pub(super) fn finish(&mut self, now: Millis) {
        self.flush_boss(now);
        let ranked = self.final_ranking();
        let players = self.roster.all();
        let winner = match self.spec.mode {
            Mode::Raid => None,
            Mode::Tournament => ranked.first().map(|&(i, _)| players[i].id.clone()),
            Mode::Duel | Mode::BattleRoyale => {
                let firsts = ranked.iter().take_while(|&&(_, rank)| rank == 1).count();
                (firsts == 1).then(|| players[ranked[0].0].id.clone())
            }
        };
        let shown = if players.len() <= FULL_LIST_MAX_PLAYERS {
            players.len()
        } else {
            RESULT_STANDINGS_MAX
        };
        let standings = ranked
            .iter()
            .take(shown)
            .map(|&(i, rank)| Standing {
                id: players[i].id.clone(),
                score: players[i].score,
                rank,
            })
            .collect();
        let result = MatchResult {
            room: self.spec.room.clone(),
            mode: self.spec.mode,
            winner,
            standings,
            victory: self.mode.raid().map(|raid| raid.hp == 0),
            rating: None,
        };
        let summaries = ranked
            .iter()
            .map(|&(i, rank)| {
                let p = &players[i];
                PlayerSummary {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    score: p.score,
                    rank,
                    correct: p.correct,
                    answered: p.answered,
                    correct_ms: p.correct_ms,
                    eliminated_in: p.eliminated_in,
                    left: p.left,
                }
            })
            .collect();
        let summary = Summary {
            result: result.clone(),
            players: summaries,
            started_at: self.started_at,
            finished_at: now,
            questions_asked: self.asked,
        };
        self.phase = juno_protocol::Phase::Finished;
        self.clock = super::Clock::Idle;
        // Nobody holds a seat any more, so there is no seat to keep.
        self.away.clear();
        self.finished_at = Some(now);
        self.out
            .push_back(Output::Broadcast(ServerMsg::Result(result)));
        self.out.push_back(Output::Finished(Box::new(summary)));
    }
}
