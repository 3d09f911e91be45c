//! Adaptive difficulty (the guide's `hrm_trm` / `mangle_zpd`): which questions of a
//! mission's pool a match asks, aimed at its players' zone of proximal development.
//!
//! Local policies come from YAML (`policies/difficulty.yaml`, built in, or an
//! operator's file): the players' recent success rate and rating give a target
//! difficulty, and the questions nearest to it are chosen, deterministically for a
//! given seed so a match can be replayed. An external policy service
//! (`JUNO_POLICY_URL`) may be asked first; it gets [`SERVICE_TIMEOUT`] and on any
//! error, slow or odd answer the YAML policies decide, so no match ever fails or
//! waits on it. After a failure the service is left alone for [`SERVICE_COOLDOWN`],
//! so a dead service costs one timeout, not one per match.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use juno_protocol::{Mission, Question};
use serde::{Deserialize, Serialize};

use crate::model::rating::DEFAULT_RATING;
use crate::store::Store;

/// Longest the policy service may take to answer.
pub const SERVICE_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a failed policy service is not asked again.
pub const SERVICE_COOLDOWN: Duration = Duration::from_secs(5);
/// The policies that ship with the server.
const BUILTIN_POLICIES: &str = include_str!("../../policies/difficulty.yaml");

/// What the policy knows about one player of the match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayerStats {
    pub user: String,
    /// Glicko-2 rating (1500 for a newcomer).
    pub rating: f64,
    /// Share of questions answered right over the last matches; `None` without history.
    pub recent_success: Option<f64>,
}

impl PlayerStats {
    /// Loads rating and recent success for `users` from the store (two queries in all).
    pub async fn load<S: AsRef<str>>(store: &Store, users: &[S]) -> anyhow::Result<Vec<Self>> {
        let ratings = store.ratings(users).await?;
        let recent = store.recent_play(users).await?;
        Ok(users
            .iter()
            .map(|u| {
                let u = u.as_ref();
                PlayerStats {
                    user: u.to_string(),
                    rating: ratings.get(u).map_or(DEFAULT_RATING, |r| r.rating),
                    recent_success: recent.get(u).and_then(|r| r.success_rate()),
                }
            })
            .collect())
    }
}

/// Who decided a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The external policy service.
    Service,
    /// The YAML policies (no service configured, or it failed).
    Yaml,
}

/// The questions chosen for a match, by index into the mission's pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub indices: Vec<usize>,
    /// The YAML policy's target difficulty for these players.
    pub target: f64,
    /// The policy that was applied.
    pub policy: String,
    pub source: Source,
}

/// The policy file (see `policies/difficulty.yaml` for what each field means).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub scale: Scale,
    #[serde(default)]
    pub mission_levels: HashMap<String, f64>,
    pub default_level: f64,
    pub default_policy: String,
    pub policies: BTreeMap<String, Policy>,
    #[serde(default)]
    pub missions: HashMap<String, String>,
    #[serde(default)]
    pub worlds: HashMap<String, String>,
}

/// The difficulty scale questions are rated on.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
}

/// One named policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Recent success rate → shift of the target from the mission's level.
    pub bands: Vec<Band>,
    /// Rating points per level of difficulty; 0 ignores ratings.
    pub rating_per_level: f64,
    /// Success rate assumed for a player without history.
    pub new_player_success: f64,
    /// Questions within this distance of the target are all equally good.
    pub width: f64,
}

/// Rates below `success_below` (and above the previous band's) shift by `shift`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub success_below: f64,
    pub shift: f64,
}

impl PolicyFile {
    /// Parses and checks a policy file.
    pub fn from_yaml(text: &str) -> anyhow::Result<PolicyFile> {
        let file: PolicyFile =
            serde_saphyr::from_str(text).context("parsing difficulty policies")?;
        file.check()?;
        Ok(file)
    }

    fn check(&self) -> anyhow::Result<()> {
        let finite = |x: f64, what: &str| -> anyhow::Result<()> {
            if !x.is_finite() {
                bail!("{what} must be a number");
            }
            Ok(())
        };
        finite(self.scale.min, "scale.min")?;
        finite(self.scale.max, "scale.max")?;
        if self.scale.min >= self.scale.max {
            bail!("scale.min must be below scale.max");
        }
        finite(self.default_level, "default_level")?;
        for (label, level) in &self.mission_levels {
            finite(*level, &format!("mission_levels.{label}"))?;
        }
        if !self.policies.contains_key(&self.default_policy) {
            bail!("default_policy '{}' is not a policy", self.default_policy);
        }
        for (what, map) in [("missions", &self.missions), ("worlds", &self.worlds)] {
            for (key, policy) in map {
                if !self.policies.contains_key(policy) {
                    bail!("{what}.{key} names no policy '{policy}'");
                }
            }
        }
        for (name, p) in &self.policies {
            if p.bands.is_empty() {
                bail!("policy {name}: bands must not be empty");
            }
            if p.bands
                .windows(2)
                .any(|w| w[0].success_below >= w[1].success_below)
            {
                bail!("policy {name}: bands must go up by success_below");
            }
            if p.bands.last().is_some_and(|b| b.success_below <= 1.0) {
                bail!("policy {name}: the last band's success_below must exceed 1.0 so every rate has a band");
            }
            if p.bands
                .iter()
                .any(|b| !b.shift.is_finite() || !b.success_below.is_finite())
            {
                bail!("policy {name}: band values must be numbers");
            }
            if !(p.rating_per_level.is_finite() && p.rating_per_level >= 0.0) {
                bail!("policy {name}: rating_per_level must be 0 or more");
            }
            if !(0.0..=1.0).contains(&p.new_player_success) {
                bail!("policy {name}: new_player_success must be 0-1");
            }
            if !(p.width.is_finite() && p.width >= 0.0) {
                bail!("policy {name}: width must be 0 or more");
            }
        }
        Ok(())
    }

    /// The policy for `mission`: by mission id, else by world, else the default.
    fn policy_for(&self, mission: &Mission) -> (&str, &Policy) {
        let name = self
            .missions
            .get(&mission.id)
            .or_else(|| self.worlds.get(&mission.world))
            .unwrap_or(&self.default_policy);
        match self.policies.get_key_value(name) {
            Some((name, policy)) => (name, policy),
            // check() made sure every name refers to a policy; this arm is unreachable.
            None => self
                .policies
                .iter()
                .next()
                .map(|(n, p)| (n.as_str(), p))
                .expect("check() refuses a file without policies"),
        }
    }

    /// The mission's own level on the scale.
    fn mission_level(&self, mission: &Mission) -> f64 {
        let level = self
            .mission_levels
            .get(&mission.difficulty.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.default_level);
        level.clamp(self.scale.min, self.scale.max)
    }

    /// A question's difficulty on the scale (its mission's level when it has none).
    fn question_level(&self, q: &Question, mission_level: f64) -> f64 {
        q.difficulty
            .map_or(mission_level, f64::from)
            .clamp(self.scale.min, self.scale.max)
    }

    /// The target difficulty for `players` in `mission`, and the policy's name.
    pub fn target(&self, mission: &Mission, players: &[PlayerStats]) -> (f64, &str, &Policy) {
        let (name, policy) = self.policy_for(mission);
        let n = players.len().max(1) as f64;
        let success = if players.is_empty() {
            policy.new_player_success
        } else {
            players
                .iter()
                .map(|p| {
                    p.recent_success
                        .filter(|s| s.is_finite())
                        .unwrap_or(policy.new_player_success)
                        .clamp(0.0, 1.0)
                })
                .sum::<f64>()
                / n
        };
        let shift = policy
            .bands
            .iter()
            .find(|b| success < b.success_below)
            .map_or(0.0, |b| b.shift);
        let rating = if players.is_empty() {
            DEFAULT_RATING
        } else {
            players
                .iter()
                .map(|p| {
                    if p.rating.is_finite() {
                        p.rating
                    } else {
                        DEFAULT_RATING
                    }
                })
                .sum::<f64>()
                / n
        };
        let by_rating = if policy.rating_per_level > 0.0 {
            (rating - DEFAULT_RATING) / policy.rating_per_level
        } else {
            0.0
        };
        let target =
            (self.mission_level(mission) + shift + by_rating).clamp(self.scale.min, self.scale.max);
        (target, name, policy)
    }

    /// Picks `count` question indices nearest to the target for `players`, the same
    /// for the same seed. Questions within the policy's width of the target are
    /// equally good and the seed decides among them; the chosen ones come in a
    /// seeded order. A match longer than the pool repeats it, as before.
    pub fn select(
        &self,
        mission: &Mission,
        count: usize,
        players: &[PlayerStats],
        seed: u64,
    ) -> Selection {
        let (target, name, policy) = self.target(mission, players);
        let level = self.mission_level(mission);
        let pool = mission.questions.len();
        let mut ranked: Vec<(f64, u64, usize)> = mission
            .questions
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let off = ((self.question_level(q, level) - target).abs() - policy.width).max(0.0);
                (off, mix(seed, i as u64), i)
            })
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut chosen: Vec<usize> = ranked
            .iter()
            .take(count.min(pool))
            .map(|&(_, _, i)| i)
            .collect();
        shuffle(&mut chosen, seed);
        let indices = chosen.iter().copied().cycle().take(count).collect();
        Selection {
            indices,
            target,
            policy: name.to_string(),
            source: Source::Yaml,
        }
    }
}

/// The adaptive difficulty engine: YAML policies and the optional policy service.
#[derive(Debug)]
pub struct Difficulty {
    policies: PolicyFile,
    service: Option<PolicyService>,
}

#[derive(Debug)]
struct PolicyService {
    url: String,
    http: reqwest::Client,
    /// Milliseconds since the epoch before which the service is not asked (after a failure).
    resting_until_ms: AtomicU64,
}

/// What the server sends the policy service: no question texts or answers, only
/// what a difficulty policy needs.
#[derive(Serialize)]
struct ServiceRequest<'a> {
    mission: ServiceMission<'a>,
    count: usize,
    seed: u64,
    players: &'a [PlayerStats],
    /// The YAML policy's target, as a hint.
    target: f64,
}

#[derive(Serialize)]
struct ServiceMission<'a> {
    id: &'a str,
    world: &'a str,
    difficulty: &'a str,
    /// Each question's difficulty (null where it has none), by pool index.
    levels: Vec<Option<u8>>,
}

#[derive(Deserialize)]
struct ServiceAnswer {
    /// Pool indices, `count` of them.
    questions: Vec<usize>,
}

impl Difficulty {
    /// The built-in policies, with the service at `policy_url` if given.
    pub fn builtin(policy_url: Option<&str>) -> anyhow::Result<Difficulty> {
        Difficulty::from_yaml(BUILTIN_POLICIES, policy_url)
    }

    /// Policies from a YAML file (an operator's own), with the optional service.
    pub fn from_file(path: &Path, policy_url: Option<&str>) -> anyhow::Result<Difficulty> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Difficulty::from_yaml(&text, policy_url).with_context(|| format!("in {}", path.display()))
    }

    /// Policies from YAML text, with the optional service.
    pub fn from_yaml(text: &str, policy_url: Option<&str>) -> anyhow::Result<Difficulty> {
        let policies = PolicyFile::from_yaml(text)?;
        let service = match policy_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => Some(PolicyService {
                url: format!("{}/select", url.trim_end_matches('/')),
                http: reqwest::Client::builder()
                    .timeout(SERVICE_TIMEOUT)
                    .connect_timeout(SERVICE_TIMEOUT)
                    .build()
                    .context("building the policy service client")?,
                resting_until_ms: AtomicU64::new(0),
            }),
        };
        Ok(Difficulty { policies, service })
    }

    /// The loaded policies.
    pub fn policies(&self) -> &PolicyFile {
        &self.policies
    }

    /// The questions for a match of `mission`: the service's choice when it is
    /// configured and answers well in time, else the YAML policies'. Never fails.
    pub async fn choose_questions(
        &self,
        mission: &Mission,
        count: usize,
        players: &[PlayerStats],
        seed: u64,
    ) -> Vec<Question> {
        let selection = self.select(mission, count, players, seed, true).await;
        selection
            .indices
            .iter()
            .filter_map(|&i| mission.questions.get(i).cloned())
            .collect()
    }

    /// The selection with its provenance; `ask_service = false` (the `mangle_zpd`
    /// flag off) uses the YAML policies alone.
    pub async fn select(
        &self,
        mission: &Mission,
        count: usize,
        players: &[PlayerStats],
        seed: u64,
        ask_service: bool,
    ) -> Selection {
        let local = self.policies.select(mission, count, players, seed);
        if count == 0 || mission.questions.is_empty() {
            return local;
        }
        let Some(service) = self.service.as_ref().filter(|_| ask_service) else {
            return local;
        };
        let now = now_ms();
        if now < service.resting_until_ms.load(Ordering::Relaxed) {
            return local;
        }
        match service
            .ask(mission, count, players, seed, local.target)
            .await
        {
            Ok(indices) => Selection {
                indices,
                source: Source::Service,
                ..local
            },
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), mission = %mission.id,
                    "policy service failed; using the YAML policies");
                let rest = u64::try_from(SERVICE_COOLDOWN.as_millis()).unwrap_or(u64::MAX);
                service
                    .resting_until_ms
                    .store(now.saturating_add(rest), Ordering::Relaxed);
                local
            }
        }
    }
}

impl PolicyService {
    async fn ask(
        &self,
        mission: &Mission,
        count: usize,
        players: &[PlayerStats],
        seed: u64,
        target: f64,
    ) -> anyhow::Result<Vec<usize>> {
        let request = ServiceRequest {
            mission: ServiceMission {
                id: &mission.id,
                world: &mission.world,
                difficulty: &mission.difficulty,
                levels: mission.questions.iter().map(|q| q.difficulty).collect(),
            },
            count,
            seed,
            players,
            target,
        };
        let answer: ServiceAnswer = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .context("asking the policy service")?
            .error_for_status()
            .context("policy service status")?
            .json()
            .await
            .context("reading the policy service's answer")?;
        let pool = mission.questions.len();
        let q = answer.questions;
        if q.len() != count {
            bail!("policy service chose {} questions, wanted {count}", q.len());
        }
        if let Some(bad) = q.iter().find(|&&i| i >= pool) {
            bail!("policy service chose question {bad} of a pool of {pool}");
        }
        if count <= pool {
            let mut seen = q.clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != count {
                bail!("policy service repeated a question");
            }
        }
        Ok(q)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// SplitMix64 of `seed` and `i`: a stable, well-spread tie-break (no dependence on
/// a library RNG's stream, so a stored seed replays the same selection forever).
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fisher–Yates driven by [`mix`].
fn shuffle(items: &mut [usize], seed: u64) {
    for i in (1..items.len()).rev() {
        let j = (mix(seed.rotate_left(17), i as u64) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool with `per_level` questions at each level 1..=5, text "L{level}-{n}".
    fn pool(per_level: usize) -> Mission {
        let questions = (1..=5u8)
            .flat_map(|level| {
                (0..per_level).map(move |n| Question {
                    text: format!("L{level}-{n}"),
                    choices: vec!["a".into(), "b".into()],
                    correct: 0,
                    difficulty: Some(level),
                })
            })
            .collect();
        Mission {
            id: "m".into(),
            world: "it".into(),
            title: "M".into(),
            difficulty: "medium".into(),
            questions,
        }
    }

    fn player(rating: f64, success: Option<f64>) -> PlayerStats {
        PlayerStats {
            user: "u".into(),
            rating,
            recent_success: success,
        }
    }

    fn levels(m: &Mission, s: &Selection) -> Vec<u8> {
        s.indices
            .iter()
            .map(|&i| m.questions[i].difficulty.expect("levelled"))
            .collect()
    }

    fn builtin() -> PolicyFile {
        PolicyFile::from_yaml(BUILTIN_POLICIES).expect("the shipped policies load")
    }

    #[test]
    fn builtin_policies_load() {
        let p = builtin();
        assert_eq!(p.default_policy, "zpd");
        assert!(Difficulty::builtin(None).is_ok());
    }

    #[test]
    fn the_target_follows_success_and_rating() {
        let p = builtin();
        let m = pool(4);
        let (newcomer, _, _) = p.target(&m, &[player(1500.0, None)]);
        assert!((newcomer - 3.0).abs() < 1e-9, "medium mission, in the zone");
        let (failing, _, _) = p.target(&m, &[player(1500.0, Some(0.2))]);
        let (sailing, _, _) = p.target(&m, &[player(1500.0, Some(0.95))]);
        assert!(failing < newcomer && newcomer < sailing);
        let (strong, _, _) = p.target(&m, &[player(1900.0, Some(0.7))]);
        let (weak, _, _) = p.target(&m, &[player(1100.0, Some(0.7))]);
        assert!((strong - 4.0).abs() < 1e-9 && (weak - 2.0).abs() < 1e-9);
        // Clamped to the scale.
        let (top, _, _) = p.target(&m, &[player(3000.0, Some(1.0))]);
        assert_eq!(top, 5.0);
        // A group is judged by its mean.
        let (pair, _, _) = p.target(&m, &[player(1900.0, Some(0.7)), player(1100.0, Some(0.7))]);
        assert!((pair - 3.0).abs() < 1e-9);
    }

    #[test]
    fn questions_are_chosen_nearest_to_the_target() {
        let p = builtin();
        let m = pool(4);
        let strugglers = [player(1300.0, Some(0.3))];
        let s = p.select(&m, 4, &strugglers, 1);
        assert!(s.target <= 1.5, "target {}", s.target);
        assert!(
            levels(&m, &s).iter().all(|&l| l == 1),
            "{:?}",
            levels(&m, &s)
        );
        let experts = [player(1800.0, Some(0.95))];
        let s = p.select(&m, 4, &experts, 1);
        assert!(
            levels(&m, &s).iter().all(|&l| l == 5),
            "{:?}",
            levels(&m, &s)
        );
        // In the zone at a medium mission: level 3 first, then its neighbours.
        let s = p.select(&m, 8, &[player(1500.0, Some(0.7))], 9);
        let got = levels(&m, &s);
        assert_eq!(got.iter().filter(|&&l| l == 3).count(), 4, "{got:?}");
        assert!(got.iter().all(|&l| (2..=4).contains(&l)), "{got:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_match_and_seeds_vary_it() {
        let p = builtin();
        let m = pool(10);
        let players = [player(1500.0, Some(0.7))];
        let a = p.select(&m, 5, &players, 42);
        assert_eq!(a, p.select(&m, 5, &players, 42));
        let distinct: std::collections::HashSet<Vec<usize>> = (0..20)
            .map(|seed| p.select(&m, 5, &players, seed).indices)
            .collect();
        assert!(
            distinct.len() > 10,
            "seeds vary the set: {}",
            distinct.len()
        );
        for seed in 0..20 {
            let s = p.select(&m, 5, &players, seed);
            let mut unique = s.indices.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), 5, "no repeats while the pool suffices");
        }
    }

    #[test]
    fn a_short_pool_is_repeated_and_unlevelled_questions_use_the_mission_level() {
        let p = builtin();
        let mut m = pool(1);
        for q in &mut m.questions {
            q.difficulty = None;
        }
        let s = p.select(&m, 12, &[], 3);
        assert_eq!(s.indices.len(), 12);
        assert_eq!(s.indices[..5], s.indices[5..10]);
        let mut firsts = s.indices[..5].to_vec();
        firsts.sort_unstable();
        assert_eq!(firsts, vec![0, 1, 2, 3, 4]);
        assert!(p.select(&m, 0, &[], 3).indices.is_empty());
    }

    #[test]
    fn policies_are_picked_by_mission_then_world() {
        let mut p = builtin();
        let mut m = pool(2);
        p.worlds.insert("it".into(), "fixed".into());
        let (t, name, _) = p.target(&m, &[player(2000.0, Some(1.0))]);
        assert_eq!((name, t), ("fixed", 3.0));
        m.id = "demo".into();
        assert_eq!(p.target(&m, &[]).1, "zpd");
    }

    #[test]
    fn bad_policy_files_are_refused_with_a_reason() {
        let base = BUILTIN_POLICIES;
        let err = |text: &str| {
            PolicyFile::from_yaml(text)
                .expect_err("refused")
                .to_string()
        };
        assert!(err(&base.replace("default_policy: zpd", "default_policy: nope")).contains("nope"));
        assert!(err(&base.replace(
            "success_below: 1.01, shift: 1.5",
            "success_below: 0.95, shift: 1.5"
        ))
        .contains("exceed 1.0"));
        assert!(err(&base.replace("width: 0.5", "width: -1")).contains("width"));
        assert!(PolicyFile::from_yaml("scale: [").is_err());
        assert!(PolicyFile::from_yaml(&format!("{base}\nsurprise: 1\n")).is_err());
    }

    #[tokio::test]
    async fn without_a_service_the_yaml_policies_decide() {
        let d = Difficulty::builtin(None).expect("loads");
        let m = pool(3);
        let qs = d.choose_questions(&m, 5, &[player(1500.0, None)], 7).await;
        assert_eq!(qs.len(), 5);
        let s = d.select(&m, 5, &[], 7, true).await;
        assert_eq!(s.source, Source::Yaml);
    }

    #[tokio::test]
    async fn an_unreachable_service_falls_back_quickly() {
        // Port 9 on loopback: nothing listens there, the connection is refused at once.
        let d = Difficulty::builtin(Some("http://127.0.0.1:9")).expect("loads");
        let m = pool(3);
        let started = std::time::Instant::now();
        let s = d.select(&m, 5, &[], 7, true).await;
        assert_eq!(s.source, Source::Yaml);
        assert_eq!(s.indices.len(), 5);
        assert!(started.elapsed() < SERVICE_TIMEOUT * 3);
    }
}
