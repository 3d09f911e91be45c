//! The question cycle shared by the question modes (duel, battle royale, raid):
//! open a question, take answers, close the round, then the next question or the end.

use juno_protocol::limits::ROUND_MAPS_MAX_PLAYERS;
use juno_protocol::{Mode, QuestionMsg, Round, Score, ServerMsg};

use super::raid;
use super::ranking::leaders;
use super::{Clock, OpenQuestion, Room};
use crate::{points, Millis, Output, RoomError};

impl Room {
    /// The `question` frame for question `q` with `ms` left.
    pub(super) fn question_msg(&self, q: u32, ms: u64) -> Option<QuestionMsg> {
        let question = self.spec.questions.get(q as usize)?;
        Some(QuestionMsg {
            room: self.spec.room.clone(),
            q,
            text: question.text.clone(),
            choices: question.choices.clone(),
            ms,
        })
    }

    /// Opens the next question at `now`, or ends the match when none is left.
    pub(super) fn open_question(&mut self, now: Millis) {
        let q = self.asked;
        let question_ms = self.spec.settings.question_ms;
        let Some(msg) = self.question_msg(q, question_ms) else {
            self.finish(now);
            return;
        };
        self.asked += 1;
        let mut pending = 0;
        for p in self.roster.all_mut() {
            p.round_gain = 0;
            p.round_correct = false;
            if p.can_answer() {
                pending += 1;
            }
        }
        self.clock = Clock::Open(OpenQuestion {
            q,
            opened_at: now,
            deadline: now + question_ms,
            pending,
        });
        self.out
            .push_back(Output::Broadcast(ServerMsg::Question(msg)));
        if pending == 0 {
            self.close_round(now);
        }
    }

    /// An answer to question `q` (see WIRE.md §3 for the error order).
    pub(super) fn answer(
        &mut self,
        now: Millis,
        user: &str,
        q: u32,
        choice: u32,
    ) -> Result<bool, RoomError> {
        if self.spec.mode == Mode::Tournament {
            return Err(RoomError::NotAllowed(
                "answers go to the tournament's duel rooms",
            ));
        }
        let seat = self.roster.position(user).ok_or(RoomError::NotInRoom)?;
        if !self.roster.all()[seat].can_answer() {
            return Err(RoomError::NotInRoom);
        }
        let Some(question) = self.spec.questions.get(q as usize) else {
            return Err(RoomError::TooLate);
        };
        if choice as usize >= question.choices.len() {
            return Err(RoomError::Invalid(format!(
                "choice must be below {}",
                question.choices.len()
            )));
        }
        let correct = choice == question.correct;
        let Clock::Open(open) = &mut self.clock else {
            return Err(RoomError::TooLate);
        };
        if q != open.q || now >= open.deadline {
            return Err(RoomError::TooLate);
        }
        let player = &mut self.roster.all_mut()[seat];
        if player.last_q == Some(q) {
            return Err(RoomError::AlreadyAnswered);
        }
        open.pending = open.pending.saturating_sub(1);
        let pending = open.pending;
        let elapsed = now.saturating_sub(open.opened_at);
        player.last_q = Some(q);
        player.answered += 1;
        if correct {
            player.correct += 1;
            player.correct_ms += elapsed;
            player.round_correct = true;
            let mut gain = points(self.spec.settings.question_ms, elapsed);
            let gap = raid::boss_gap(self.member_count());
            if let Some(raid) = self.mode.raid_mut() {
                let (dealt, frame) = raid.hit(now, gap, &self.spec.room, user, gain);
                gain = dealt;
                if let Some(frame) = frame {
                    self.out
                        .push_back(Output::Broadcast(ServerMsg::Boss(frame)));
                }
            }
            let player = &mut self.roster.all_mut()[seat];
            player.score += gain;
            player.round_gain = gain;
        }
        let boss_down = self.mode.raid().is_some_and(|raid| raid.hp == 0);
        if boss_down {
            // The raid is won at once: report the killing blow, close, finish.
            self.flush_boss(now);
            self.close_round(now);
        } else if pending == 0 {
            self.close_round(now);
        }
        Ok(true)
    }

    /// `seat` stops answering (left, abandoned): the open round no longer waits for them.
    /// Call before changing their flags.
    pub(super) fn withdraw(&mut self, seat: usize) {
        let player = &self.roster.all()[seat];
        if let Clock::Open(open) = &mut self.clock {
            if player.can_answer() && player.last_q != Some(open.q) {
                open.pending = open.pending.saturating_sub(1);
            }
        }
    }

    /// Closes the round if nobody is left to wait for.
    pub(super) fn close_if_done(&mut self, now: Millis) {
        if matches!(self.clock, Clock::Open(open) if open.pending == 0) {
            self.close_round(now);
        }
    }

    /// Closes the open round at `now`: eliminations, `round`, each player's
    /// `score`, then the next question after `between_ms`, or the end.
    pub(super) fn close_round(&mut self, now: Millis) {
        let Clock::Open(open) = self.clock else {
            return;
        };
        self.clock = Clock::Idle;
        let q = open.q;
        let eliminated = (self.spec.mode == Mode::BattleRoyale).then(|| self.eliminate(q));
        let ranks = self.live_ranks();
        let players = self.roster.all();
        let small = players.len() <= ROUND_MAPS_MAX_PLAYERS;
        let round = Round {
            room: self.spec.room.clone(),
            q,
            // The correct choice's index, revealed now that the question is closed.
            // Invariant: `q` was opened, so the question exists (0 is never reached).
            correct: self
                .spec
                .questions
                .get(q as usize)
                .map_or(0, |question| question.correct),
            top: leaders(players),
            eliminated,
            boss: self.mode.raid().map(|raid| raid.hp()),
            gained: small.then(|| {
                players
                    .iter()
                    .map(|p| (p.id.clone(), p.round_gain))
                    .collect()
            }),
            scores: small.then(|| players.iter().map(|p| (p.id.clone(), p.score)).collect()),
        };
        self.out
            .push_back(Output::Broadcast(ServerMsg::Round(round)));
        for (p, rank) in players.iter().zip(ranks) {
            if p.left {
                continue;
            }
            self.out.push_back(Output::Send {
                to: p.id.clone(),
                msg: ServerMsg::Score(Score {
                    room: self.spec.room.clone(),
                    q,
                    gained: p.round_gain,
                    score: p.score,
                    rank,
                }),
            });
        }
        let questions_left = (q as usize + 1) < self.spec.questions.len();
        let over = !questions_left
            || (self.spec.mode == Mode::BattleRoyale && self.alive_count() <= 1)
            || self.mode.raid().is_some_and(|raid| raid.hp == 0);
        if over {
            self.finish(now);
        } else {
            self.clock = Clock::OpensAt(now + self.spec.settings.between_ms);
        }
    }
}
