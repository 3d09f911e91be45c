//! `admin add-mission FILE`: the guide's add-mission script with validation. The file
//! holds one mission (as `POST /admin/missions` takes it) or a list; all are
//! validated before any is written, and each is upserted, so a re-run replaces
//! rather than duplicates.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use juno_protocol::Mission;
use serde::Deserialize;

use crate::store::Store;

/// How many missions a run created and replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddedMissions {
    pub created: usize,
    pub replaced: usize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Mission>),
    One(Box<Mission>),
}

/// Reads, validates and upserts the mission(s) in `file`.
pub async fn add_missions(
    store: &Store,
    file: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<AddedMissions> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let missions = match serde_json::from_str::<OneOrMany>(&text) {
        Ok(OneOrMany::Many(list)) => list,
        Ok(OneOrMany::One(m)) => vec![*m],
        // Untagged errors say little; parse as one mission again for a useful message.
        Err(_) => vec![serde_json::from_str::<Mission>(&text).with_context(|| {
            format!("{} is not a mission or a list of missions", file.display())
        })?],
    };
    anyhow::ensure!(!missions.is_empty(), "{} holds no missions", file.display());
    for m in &missions {
        m.validate()
            .with_context(|| format!("mission '{}' is invalid", m.id))?;
    }
    let mut ids: Vec<&str> = missions.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(dup) = ids.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("mission '{}' appears twice in {}", dup[0], file.display());
    }
    writeln!(
        out,
        "adding {} missions from {}",
        missions.len(),
        file.display()
    )?;
    let mut added = AddedMissions::default();
    for m in &missions {
        let created = store.upsert_mission(m).await?;
        if created {
            added.created += 1;
        } else {
            added.replaced += 1;
        }
        writeln!(
            out,
            "  {} {} ({}, {}, {} questions)",
            if created { "created " } else { "replaced" },
            m.id,
            m.world,
            m.difficulty,
            m.questions.len()
        )?;
    }
    writeln!(
        out,
        "done: {} missions created, {} replaced",
        added.created, added.replaced
    )?;
    Ok(added)
}
