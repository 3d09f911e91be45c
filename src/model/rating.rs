//! Glicko-2 player ratings (Mark Glickman, "Example of the Glicko-2 system", 2013).
//!
//! Pure math, no I/O: the room host asks the store for both players' [`Rating`]s,
//! calls [`update_duel`] when a duel (or a tournament's duel) ends, and saves the two
//! results. Each match is its own rating period, so a player's deviation shrinks as
//! they play and the system's volatility follows surprising results.
//!
//! Why Glicko-2 rather than Elo: it carries how sure it is of a rating (the deviation),
//! so a newcomer's first duels move them fast and a veteran's slowly, and matchmaking
//! can use the deviation to widen its window for players it knows little about.

use serde::{Deserialize, Serialize};

/// The system constant τ: how much volatility may change in one period. Glickman
/// recommends 0.3–1.2; 0.5 is the paper's example and a middle choice.
pub const TAU: f64 = 0.5;
/// Glicko-2's internal scale factor (400 / ln 10).
const SCALE: f64 = 173.7178;
/// Convergence tolerance for the volatility iteration (the paper's ε).
const EPSILON: f64 = 0.000_001;
/// Rating of a player nobody knows anything about.
pub const DEFAULT_RATING: f64 = 1500.0;
/// Deviation of a new player; also the ceiling, so a long absence never makes a
/// rating less certain than knowing nothing at all.
pub const DEFAULT_RD: f64 = 350.0;
/// Volatility of a new player (the paper's suggestion).
pub const DEFAULT_VOLATILITY: f64 = 0.06;

/// One player's Glicko-2 state on the public (Glicko) scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The rating shown to players (1500 = an average newcomer).
    pub rating: f64,
    /// Rating deviation: how uncertain the rating is (95% interval ≈ ±2 RD).
    pub rd: f64,
    /// Volatility σ: how erratic the player's results have been.
    pub volatility: f64,
}

impl Default for Rating {
    fn default() -> Self {
        Rating {
            rating: DEFAULT_RATING,
            rd: DEFAULT_RD,
            volatility: DEFAULT_VOLATILITY,
        }
    }
}

/// How a duel between `a` and `b` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    AWon,
    BWon,
    Draw,
}

impl Outcome {
    /// `a`'s score in the period: 1 for a win, 0.5 for a draw, 0 for a loss.
    fn score_a(self) -> f64 {
        match self {
            Outcome::AWon => 1.0,
            Outcome::BWon => 0.0,
            Outcome::Draw => 0.5,
        }
    }

    /// The outcome of a duel from its winner (`None` = a draw).
    pub fn from_winner(a: &str, b: &str, winner: Option<&str>) -> Outcome {
        match winner {
            Some(w) if w == a => Outcome::AWon,
            Some(w) if w == b => Outcome::BWon,
            _ => Outcome::Draw,
        }
    }
}

/// Both players' ratings after one duel; each is updated against the other's
/// rating from before the duel, as Glicko-2 prescribes.
pub fn update_duel(a: Rating, b: Rating, outcome: Outcome) -> (Rating, Rating) {
    let s = outcome.score_a();
    (update(a, &[(b, s)]), update(b, &[(a, 1.0 - s)]))
}

/// One rating period for `player` against `games` (opponent before the period, score
/// 0/0.5/1). No games: only the deviation grows (the paper's step 6 alone).
pub fn update(player: Rating, games: &[(Rating, f64)]) -> Rating {
    // Step 2: to the Glicko-2 scale.
    let mu = (player.rating - DEFAULT_RATING) / SCALE;
    let phi = player.rd / SCALE;
    let sigma = player.volatility;
    if games.is_empty() {
        let phi_star = (phi * phi + sigma * sigma).sqrt();
        return Rating {
            rd: (phi_star * SCALE).min(DEFAULT_RD),
            ..player
        };
    }
    // Steps 3 and 4: the estimated variance v and improvement Δ.
    let mut v_inv = 0.0;
    let mut delta_sum = 0.0;
    for (opponent, score) in games {
        let mu_j = (opponent.rating - DEFAULT_RATING) / SCALE;
        let g_j = g(opponent.rd / SCALE);
        let e = expected(mu, mu_j, g_j);
        v_inv += g_j * g_j * e * (1.0 - e);
        delta_sum += g_j * (score - e);
    }
    let v = 1.0 / v_inv;
    let delta = v * delta_sum;
    // Step 5: the new volatility.
    let sigma_new = new_volatility(phi, sigma, v, delta);
    // Steps 6 and 7: new deviation and rating.
    let phi_star = (phi * phi + sigma_new * sigma_new).sqrt();
    let phi_new = 1.0 / (1.0 / (phi_star * phi_star) + 1.0 / v).sqrt();
    let mu_new = mu + phi_new * phi_new * delta_sum;
    // Step 8: back to the public scale.
    Rating {
        rating: SCALE * mu_new + DEFAULT_RATING,
        rd: (SCALE * phi_new).min(DEFAULT_RD),
        volatility: sigma_new,
    }
}

/// The chance that a player rated `a` beats one rated `b` (public scale), as Glicko-2
/// sees it: what matchmaking can show or use to judge how even a pairing is.
pub fn win_probability(a: Rating, b: Rating) -> f64 {
    let mu = (a.rating - DEFAULT_RATING) / SCALE;
    let mu_j = (b.rating - DEFAULT_RATING) / SCALE;
    // Both deviations widen the outcome's uncertainty.
    let phi = ((a.rd * a.rd + b.rd * b.rd).sqrt()) / SCALE;
    expected(mu, mu_j, g(phi))
}

fn g(phi: f64) -> f64 {
    1.0 / (1.0 + 3.0 * phi * phi / (std::f64::consts::PI * std::f64::consts::PI)).sqrt()
}

fn expected(mu: f64, mu_j: f64, g_j: f64) -> f64 {
    1.0 / (1.0 + (-g_j * (mu - mu_j)).exp())
}

/// Step 5 of the paper: the Illinois variant of regula falsi on f(x), x = ln σ'².
fn new_volatility(phi: f64, sigma: f64, v: f64, delta: f64) -> f64 {
    let a = (sigma * sigma).ln();
    let tau2 = TAU * TAU;
    let f = |x: f64| {
        let ex = x.exp();
        let d = phi * phi + v + ex;
        ex * (delta * delta - phi * phi - v - ex) / (2.0 * d * d) - (x - a) / tau2
    };
    let mut big_a = a;
    let mut big_b = if delta * delta > phi * phi + v {
        (delta * delta - phi * phi - v).ln()
    } else {
        let mut k = 1.0;
        while f(a - k * TAU) < 0.0 {
            k += 1.0;
        }
        a - k * TAU
    };
    let mut f_a = f(big_a);
    let mut f_b = f(big_b);
    // f is monotone with one root between A and B; 100 rounds is far beyond what
    // ε = 1e-6 needs and only guards against a NaN from absurd inputs looping forever.
    for _ in 0..100 {
        if (big_b - big_a).abs() <= EPSILON {
            break;
        }
        let c = big_a + (big_a - big_b) * f_a / (f_b - f_a);
        let f_c = f(c);
        if f_c * f_b <= 0.0 {
            big_a = big_b;
            f_a = f_b;
        } else {
            f_a /= 2.0;
        }
        big_b = c;
        f_b = f_c;
    }
    (big_a / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(rating: f64, rd: f64) -> Rating {
        Rating {
            rating,
            rd,
            volatility: DEFAULT_VOLATILITY,
        }
    }

    #[test]
    fn glickmans_worked_example() {
        // The paper's section "Example": 1500/200/0.06 plays three games in one period.
        let player = r(1500.0, 200.0);
        let games = [
            (r(1400.0, 30.0), 1.0),
            (r(1550.0, 100.0), 0.0),
            (r(1700.0, 300.0), 0.0),
        ];
        let new = update(player, &games);
        assert!((new.rating - 1464.06).abs() < 0.01, "rating {}", new.rating);
        assert!((new.rd - 151.52).abs() < 0.01, "rd {}", new.rd);
        assert!(
            (new.volatility - 0.05999).abs() < 0.00001,
            "volatility {}",
            new.volatility
        );
    }

    #[test]
    fn the_winner_goes_up_and_the_loser_down() {
        let (a, b) = update_duel(Rating::default(), Rating::default(), Outcome::AWon);
        assert!(a.rating > 1500.0 && b.rating < 1500.0);
        // Equal players: the changes mirror each other.
        assert!(((a.rating - 1500.0) + (b.rating - 1500.0)).abs() < 1e-9);
        // Both are now better known.
        assert!(a.rd < DEFAULT_RD && b.rd < DEFAULT_RD);
        let (a2, b2) = update_duel(Rating::default(), Rating::default(), Outcome::BWon);
        assert!(a2.rating < 1500.0 && b2.rating > 1500.0);
    }

    #[test]
    fn an_upset_moves_more_than_an_expected_result() {
        let strong = r(1800.0, 80.0);
        let weak = r(1400.0, 80.0);
        let (s_win, w_loss) = update_duel(strong, weak, Outcome::AWon);
        let (s_loss, w_win) = update_duel(strong, weak, Outcome::BWon);
        let expected_gain = s_win.rating - strong.rating;
        let upset_gain = w_win.rating - weak.rating;
        assert!(expected_gain > 0.0 && upset_gain > 0.0);
        assert!(
            upset_gain > 3.0 * expected_gain,
            "upset {upset_gain} vs expected {expected_gain}"
        );
        assert!(strong.rating - s_loss.rating > weak.rating - w_loss.rating);
    }

    #[test]
    fn a_draw_pulls_ratings_together() {
        let (a, b) = update_duel(r(1700.0, 100.0), r(1500.0, 100.0), Outcome::Draw);
        assert!(a.rating < 1700.0 && b.rating > 1500.0);
        let (c, d) = update_duel(r(1500.0, 100.0), r(1500.0, 100.0), Outcome::Draw);
        assert!((c.rating - 1500.0).abs() < 1e-9 && (d.rating - 1500.0).abs() < 1e-9);
    }

    #[test]
    fn uncertain_ratings_move_faster() {
        let newcomer = r(1500.0, 350.0);
        let veteran = r(1500.0, 50.0);
        let opponent = r(1500.0, 50.0);
        let (n, _) = update_duel(newcomer, opponent, Outcome::AWon);
        let (v, _) = update_duel(veteran, opponent, Outcome::AWon);
        assert!(n.rating - 1500.0 > 5.0 * (v.rating - 1500.0));
    }

    #[test]
    fn inactivity_grows_the_deviation_up_to_the_ceiling() {
        let p = r(1600.0, 100.0);
        let idle = update(p, &[]);
        assert_eq!(idle.rating, 1600.0);
        assert!(idle.rd > 100.0);
        let capped = update(r(1600.0, 349.99), &[]);
        assert_eq!(capped.rd, DEFAULT_RD);
    }

    #[test]
    fn many_duels_stay_finite_and_bounded() {
        let mut a = Rating::default();
        let mut b = Rating::default();
        for i in 0..500 {
            let outcome = if i % 7 == 0 {
                Outcome::BWon
            } else {
                Outcome::AWon
            };
            (a, b) = update_duel(a, b, outcome);
            for x in [a, b] {
                assert!(x.rating.is_finite() && x.rd.is_finite() && x.volatility.is_finite());
                assert!(x.rd > 0.0 && x.rd <= DEFAULT_RD);
            }
        }
        assert!(a.rating > b.rating);
        assert!(win_probability(a, b) > 0.5 && win_probability(b, a) < 0.5);
    }

    #[test]
    fn outcome_from_winner() {
        assert_eq!(Outcome::from_winner("a", "b", Some("a")), Outcome::AWon);
        assert_eq!(Outcome::from_winner("a", "b", Some("b")), Outcome::BWon);
        assert_eq!(Outcome::from_winner("a", "b", None), Outcome::Draw);
    }
}
