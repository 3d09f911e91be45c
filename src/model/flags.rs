//! Feature flags as they apply to one user: each flag has a base switch (the
//! `feature_flags` row the operations guide reads) and optional targeting — an
//! allowlist of users and a percentage rollout that is stable per user and the
//! same on every node (a fixed hash, not the process's random one).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Who a switched-on flag reaches beyond "everyone".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targeting {
    /// Users who always get the flag (when it is on).
    #[serde(default)]
    pub allow: BTreeSet<String>,
    /// Share of the other users who get it, 0–100; `None` = everyone.
    #[serde(default)]
    pub percent: Option<u8>,
}

/// Every flag's switch and targeting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagSet {
    pub base: BTreeMap<String, bool>,
    pub targeting: BTreeMap<String, Targeting>,
}

impl FlagSet {
    /// Whether `name` is on for `user`.
    pub fn enabled(&self, name: &str, user: &str) -> bool {
        if !self.base.get(name).copied().unwrap_or(false) {
            return false;
        }
        match self.targeting.get(name) {
            None => true,
            Some(t) => {
                t.allow.contains(user)
                    || t.percent.is_none_or(|p| bucket(name, user) < u64::from(p))
            }
        }
    }

    /// Every flag as it applies to `user` (`welcome.flags`, `flags`).
    pub fn for_user(&self, user: &str) -> BTreeMap<String, bool> {
        self.base
            .keys()
            .map(|name| (name.clone(), self.enabled(name, user)))
            .collect()
    }
}

/// A user's stable bucket 0–99 for one flag (FNV-1a of "flag:user"), so a 10%
/// rollout picks the same tenth of users everywhere and different tenths per flag.
pub fn bucket(flag: &str, user: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in flag.bytes().chain([b':']).chain(user.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash % 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(percent: Option<u8>, allow: &[&str]) -> FlagSet {
        let mut f = FlagSet::default();
        f.base.insert("clans".into(), true);
        f.targeting.insert(
            "clans".into(),
            Targeting {
                allow: allow.iter().map(|s| s.to_string()).collect(),
                percent,
            },
        );
        f
    }

    #[test]
    fn a_ten_percent_rollout_reaches_a_stable_tenth() {
        let flags = set(Some(10), &[]);
        let on: Vec<bool> = (0..10_000)
            .map(|i| flags.enabled("clans", &format!("user{i}")))
            .collect();
        let share = on.iter().filter(|b| **b).count();
        assert!((900..=1100).contains(&share), "{share} of 10000");
        let again: Vec<bool> = (0..10_000)
            .map(|i| flags.enabled("clans", &format!("user{i}")))
            .collect();
        assert_eq!(on, again, "stable per user");
    }

    #[test]
    fn the_allowlist_wins_and_off_means_off() {
        let mut flags = set(Some(0), &["ann"]);
        assert!(flags.enabled("clans", "ann"));
        assert!(!flags.enabled("clans", "bob"));
        flags.base.insert("clans".into(), false);
        assert!(!flags.enabled("clans", "ann"));
        assert!(!flags.enabled("unknown", "ann"));
    }
}
