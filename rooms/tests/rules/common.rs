//! Shared test harness: specs, a simulated clock, and output inspection.
#![allow(dead_code, clippy::unwrap_used)]

use juno_protocol::{Mode, Question, ServerMsg};
use juno_rooms::{Input, Millis, Output, Room, RoomError, RoomSpec, Settings, Summary};

pub const QUESTION_MS: Millis = 10_000;
pub const COUNTDOWN_MS: Millis = 3_000;
pub const BETWEEN_MS: Millis = 2_000;
pub const RECONNECT_MS: Millis = 20_000;

/// Question `i` has 4 choices; its correct one is `i % 4`.
pub fn questions(n: u32) -> Vec<Question> {
    (0..n)
        .map(|i| Question {
            text: format!("Q{i}"),
            choices: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            correct: i % 4,
            difficulty: None,
        })
        .collect()
}

pub fn right(q: u32) -> u32 {
    q % 4
}

pub fn wrong(q: u32) -> u32 {
    (q + 1) % 4
}

pub fn spec(mode: Mode, n_questions: u32) -> RoomSpec {
    let max_players = match mode {
        Mode::Duel => 2,
        Mode::BattleRoyale => 100,
        Mode::Raid => 1000,
        Mode::Tournament => 8,
    };
    RoomSpec {
        room: "r1".into(),
        mode,
        mission: "demo".into(),
        creator: Some("host".into()),
        settings: Settings {
            questions: n_questions,
            question_ms: QUESTION_MS,
            countdown_ms: COUNTDOWN_MS,
            between_ms: BETWEEN_MS,
            max_players,
            boss_hp: None,
            size: 8,
            watch: false,
            reconnect_ms: RECONNECT_MS,
        },
        questions: questions(n_questions),
        parent: None,
    }
}

/// A room on a simulated clock, collecting everything it outputs.
pub struct Sim {
    pub room: Room,
    pub now: Millis,
    /// Every output but [`Output::SeatFreed`], in order.
    pub outs: Vec<(Millis, Output)>,
    /// The users of [`Output::SeatFreed`], in order: seat bookkeeping for the
    /// host's directories, kept apart so `outs` stays the frames and match
    /// events the rule tests list.
    pub freed: Vec<(Millis, String)>,
}

impl Sim {
    pub fn new(spec: RoomSpec) -> Sim {
        Sim {
            room: Room::new(spec),
            now: 0,
            outs: Vec::new(),
            freed: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.room.poll_output() {
            match out {
                Output::SeatFreed { user } => self.freed.push((self.now, user)),
                out => self.outs.push((self.now, out)),
            }
        }
    }

    pub fn input(&mut self, input: Input) -> Result<(), RoomError> {
        let r = self.room.handle(self.now, input);
        self.drain();
        r
    }

    pub fn join(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Join {
            user: user.into(),
            name: user.to_uppercase(),
        })
    }

    pub fn leave(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Leave { user: user.into() })
    }

    pub fn start(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Start { user: user.into() })
    }

    pub fn abandon(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Abandon { user: user.into() })
    }

    pub fn spectate(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Spectate { user: user.into() })
    }

    pub fn unspectate(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Unspectate { user: user.into() })
    }

    pub fn disconnect(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Disconnect { user: user.into() })
    }

    pub fn reconnect(&mut self, user: &str) -> Result<(), RoomError> {
        self.input(Input::Reconnect { user: user.into() })
    }

    /// Adds spectators `w0`, `w1`, … until the room has `members` members.
    pub fn fill_audience(&mut self, members: usize) {
        let mut i = 0;
        while self.room.member_count() < members {
            self.spectate(&format!("w{i}")).unwrap();
            i += 1;
        }
    }

    /// The users whose seat was freed, in order.
    pub fn freed_users(&self) -> Vec<&str> {
        self.freed.iter().map(|(_, u)| u.as_str()).collect()
    }

    pub fn answer(&mut self, user: &str, q: u32, choice: u32) -> Result<(), RoomError> {
        self.input(Input::Answer {
            user: user.into(),
            q,
            choice,
        })
    }

    /// Moves the clock forward by `ms`, firing every timer due on the way, at its time.
    pub fn advance(&mut self, ms: Millis) {
        let target = self.now + ms;
        while let Some(t) = self.room.poll_timeout().filter(|&t| t <= target) {
            self.now = self.now.max(t);
            self.room.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Fires timers until question `q` is open (at its opening time).
    pub fn until_question(&mut self, q: u32) {
        for _ in 0..1000 {
            if self.open_q() == Some(q) {
                return;
            }
            let t = self
                .room
                .poll_timeout()
                .expect("a timer until the question opens");
            self.advance(t.saturating_sub(self.now));
        }
        panic!("question {q} never opened");
    }

    /// The open question's number, per `room_state`.
    pub fn open_q(&self) -> Option<u32> {
        self.room.room_state(self.now).question.map(|q| q.q)
    }

    /// Runs all timers until the room finishes.
    pub fn run_out(&mut self) {
        while let Some(t) = self.room.poll_timeout() {
            self.advance(t.saturating_sub(self.now));
        }
    }

    pub fn take(&mut self) -> Vec<Output> {
        self.outs.drain(..).map(|(_, o)| o).collect()
    }

    pub fn broadcasts(&self) -> impl Iterator<Item = &ServerMsg> {
        self.outs.iter().filter_map(|(_, o)| match o {
            Output::Broadcast(m) => Some(m),
            _ => None,
        })
    }

    pub fn rounds(&self) -> Vec<juno_protocol::Round> {
        self.broadcasts()
            .filter_map(|m| match m {
                ServerMsg::Round(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn scores_to(&self, user: &str) -> Vec<juno_protocol::Score> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Send {
                    to,
                    msg: ServerMsg::Score(s),
                } if to == user => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn summary(&self) -> Option<Summary> {
        self.outs.iter().find_map(|(_, o)| match o {
            Output::Finished(s) => Some((**s).clone()),
            _ => None,
        })
    }

    pub fn rank_of(&self, user: &str) -> u32 {
        let s = self.summary().expect("finished");
        s.players
            .iter()
            .find(|p| p.id == user)
            .expect("player in summary")
            .rank
    }
}

/// Replays `sim`'s log and checks it reproduces the summary exactly.
pub fn assert_replays(sim: &Sim) {
    let original = sim.summary().expect("the match finished");
    let replayed =
        juno_rooms::replay(sim.room.spec().clone(), sim.room.log()).expect("replay finishes");
    assert_eq!(original, replayed);
}
