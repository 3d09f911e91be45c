//! The mission format: `POST /admin/missions` bodies, stored rows, and the
//! questions a match draws from.

use serde::{Deserialize, Serialize};

use crate::limits::MAX_QUESTIONS;

/// A question with its correct choice; only the server ever sees `correct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub text: String,
    pub choices: Vec<String>,
    pub correct: u32,
    /// Optional difficulty, 1 (easiest) to 5 (hardest), for adaptive question
    /// selection; a question without one counts at its mission's level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<u8>,
}

/// A mission: a titled set of questions in a world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mission {
    pub id: String,
    pub world: String,
    pub title: String,
    pub difficulty: String,
    pub questions: Vec<Question>,
}

/// Why a mission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MissionError(pub String);

/// Longest mission id, world, title or difficulty.
const MAX_LABEL_LEN: usize = 128;
/// Longest question text and choice text.
const MAX_TEXT_LEN: usize = 2000;

impl Mission {
    /// Checks the contract's rules: 1–50 questions, 2–6 choices each, `correct` a valid index,
    /// plus sane lengths so one mission cannot bloat every `question` frame.
    pub fn validate(&self) -> Result<(), MissionError> {
        let err = |m: String| Err(MissionError(m));
        if !crate::limits::valid_id(&self.id) || self.id.len() > MAX_LABEL_LEN {
            return err("id must be 1-128 printable characters".into());
        }
        for (field, value) in [
            ("world", &self.world),
            ("title", &self.title),
            ("difficulty", &self.difficulty),
        ] {
            if value.is_empty() || value.len() > MAX_LABEL_LEN {
                return err(format!("{field} must be 1-{MAX_LABEL_LEN} bytes"));
            }
        }
        if self.questions.is_empty() || self.questions.len() > MAX_QUESTIONS as usize {
            return err(format!("a mission has 1-{MAX_QUESTIONS} questions"));
        }
        for (i, q) in self.questions.iter().enumerate() {
            if q.text.is_empty() || q.text.len() > MAX_TEXT_LEN {
                return err(format!(
                    "questions[{i}].text must be 1-{MAX_TEXT_LEN} bytes"
                ));
            }
            if !(2..=6).contains(&q.choices.len()) {
                return err(format!("questions[{i}] must have 2-6 choices"));
            }
            if q.choices
                .iter()
                .any(|c| c.is_empty() || c.len() > MAX_TEXT_LEN)
            {
                return err(format!(
                    "questions[{i}].choices must be 1-{MAX_TEXT_LEN} bytes each"
                ));
            }
            if q.correct as usize >= q.choices.len() {
                return err(format!(
                    "questions[{i}].correct is not a valid choice index"
                ));
            }
        }
        Ok(())
    }
}
