//! Battle royale rules: who goes out at a round's close (never everyone still
//! in), and who goes out by leaving.

use super::Room;

impl Room {
    /// Eliminates, in question `q`, every player still in who did not answer it
    /// correctly — unless that would be all of them, then nobody. Returns everyone
    /// who went out in `q` (including players who left during it), in seat order.
    pub(super) fn eliminate(&mut self, q: u32) -> Vec<String> {
        let players = self.roster.all_mut();
        let alive = players.iter().filter(|p| p.eliminated_in.is_none()).count();
        let failing = players
            .iter()
            .filter(|p| p.eliminated_in.is_none() && !p.round_correct)
            .count();
        if failing < alive {
            for p in players.iter_mut() {
                if p.eliminated_in.is_none() && !p.round_correct {
                    p.eliminated_in = Some(q);
                }
            }
        }
        players
            .iter()
            .filter(|p| p.eliminated_in == Some(q))
            .map(|p| p.id.clone())
            .collect()
    }

    /// Players not yet eliminated (and not left).
    pub(super) fn alive_count(&self) -> usize {
        self.roster
            .all()
            .iter()
            .filter(|p| p.eliminated_in.is_none())
            .count()
    }
}
