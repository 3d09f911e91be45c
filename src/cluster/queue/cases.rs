//! One table of pairing cases, checked against the Rust rules and against the
//! Lua functions the Redis scripts run (on a real Redis: `TEST_REDIS_URL`, by
//! default the local one), so the two backends cannot drift apart.

use super::redis::RULES;
use super::{best_opponent, closest_pair, Waiting, BASE_WINDOW, WIDEN_PER_SEC};

/// A waiting ticket: rating, and how long it has waited in ms (negative: its
/// clock ran ahead).
type Ticket = (f64, i64);

enum Case {
    /// A newcomer rated `.1` meets these tickets: who is paired with it.
    Best(&'static str, f64, &'static [Ticket], Option<usize>),
    /// The rematch looks at these tickets: which pair it makes.
    Pair(&'static str, &'static [Ticket], Option<(usize, usize)>),
}

const CASES: &[Case] = &[
    Case::Best("nobody waiting", 1500.0, &[], None),
    Case::Best(
        "closest rating wins",
        1500.0,
        &[(1900.0, 0), (1540.0, 0)],
        Some(1),
    ),
    Case::Best("just outside a fresh window", 1301.0, &[(1200.0, 0)], None),
    Case::Best(
        "the window's edge is inside",
        1300.0,
        &[(1200.0, 0)],
        Some(0),
    ),
    Case::Best(
        "the window widens with waiting",
        1390.0,
        &[(1200.0, 2000)],
        Some(0),
    ),
    Case::Best(
        "a tie goes to the first ticket",
        1500.0,
        &[(1450.0, 0), (1550.0, 0)],
        Some(0),
    ),
    Case::Best(
        "closer beats longer waiting",
        1140.0,
        &[(1000.0, 1000), (1180.0, 0)],
        Some(1),
    ),
    Case::Best(
        "a clock ahead never narrows the window",
        1150.0,
        &[(1000.0, -5000)],
        None,
    ),
    Case::Best(
        "the waiting ticket's window counts",
        1260.0,
        &[(1000.0, 3000)],
        None,
    ),
    Case::Pair("too far apart for now", &[(1200.0, 0), (1900.0, 0)], None),
    Case::Pair(
        "far apart after a long wait",
        &[(1200.0, 13_000), (1900.0, 0)],
        Some((0, 1)),
    ),
    Case::Pair(
        "the closest pair",
        &[(1500.0, 0), (1560.0, 0), (1590.0, 0)],
        Some((1, 2)),
    ),
    Case::Pair(
        "either window may accept",
        &[(1000.0, 0), (1250.0, 3000)],
        Some((0, 1)),
    ),
    Case::Pair(
        "a tie goes to the first pair",
        &[(1000.0, 0), (1050.0, 0), (1100.0, 0)],
        Some((0, 1)),
    ),
    Case::Pair("one ticket is no pair", &[(1500.0, 60_000)], None),
];

fn waiting(tickets: &[Ticket]) -> Vec<Waiting> {
    tickets
        .iter()
        .map(|&(rating, ms)| Waiting {
            rating,
            waited_secs: ms as f64 / 1000.0,
        })
        .collect()
}

#[test]
fn rust_rules_pass_the_table() {
    for case in CASES {
        match case {
            Case::Best(name, rating, tickets, want) => {
                assert_eq!(best_opponent(&waiting(tickets), *rating), *want, "{name}")
            }
            Case::Pair(name, tickets, want) => {
                assert_eq!(closest_pair(&waiting(tickets)), *want, "{name}")
            }
        }
    }
}

/// Runs the scripts' own rule functions on the given tickets.
const PROBE: &str = r"
local ks = {}
for i = 1, tonumber(ARGV[6]) do
  table.insert(ks, {rating = tonumber(ARGV[5 + 2 * i]), since = now - tonumber(ARGV[6 + 2 * i])})
end
if ARGV[4] == 'best' then
  local i = best_for(ks, tonumber(ARGV[5]))
  if i then return {i - 1} end
  return {}
end
local i, j = closest_pair(ks)
if i then return {i - 1, j - 1} end
return {}
";

#[tokio::test]
async fn lua_rules_pass_the_table() {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url.as_str()).expect("a valid TEST_REDIS_URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required for the Lua rules: {e}"));
    let probe = redis::Script::new(&format!("{RULES}{PROBE}"));
    for case in CASES {
        let (name, kind, rating, tickets) = match case {
            Case::Best(name, rating, tickets, _) => (name, "best", *rating, tickets),
            Case::Pair(name, tickets, _) => (name, "pair", 0.0, tickets),
        };
        let mut invocation = probe.prepare_invoke();
        invocation
            .arg("unused")
            .arg(BASE_WINDOW)
            .arg(WIDEN_PER_SEC)
            .arg(kind)
            .arg(rating)
            .arg(tickets.len());
        for (r, ms) in tickets.iter() {
            invocation.arg(*r).arg(*ms);
        }
        let got: Vec<usize> = invocation
            .invoke_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        match case {
            Case::Best(_, _, _, want) => {
                assert_eq!(got.first().copied(), *want, "{name} (Lua)")
            }
            Case::Pair(_, _, want) => {
                assert_eq!(
                    got.first().copied().zip(got.get(1).copied()),
                    *want,
                    "{name} (Lua)"
                )
            }
        }
    }
}
