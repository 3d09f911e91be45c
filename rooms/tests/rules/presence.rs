//! Who is in a room: reconnect windows, spectators, membership and its version,
//! the freed-seat signal, and replaying logs that hold all of it.

use crate::common::*;
use juno_protocol::{Mode, Phase, ServerMsg};
use juno_rooms::{Input, LogEntry, Output, Room, RoomError, RoomSpec, DEFAULT_RECONNECT_MS};

/// The `room_state` broadcasts so far.
fn states(sim: &Sim) -> Vec<juno_protocol::RoomState> {
    sim.broadcasts()
        .filter_map(|m| match m {
            ServerMsg::RoomState(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn members(room: &Room) -> Vec<&str> {
    room.members().collect()
}

/// A room rebuilt from `log` alone.
fn rebuild(spec: RoomSpec, log: &[LogEntry]) -> Room {
    let mut room = Room::new(spec);
    for entry in log {
        match &entry.input {
            Some(input) => room.handle(entry.at, input.clone()).unwrap(),
            None => room.handle_timeout(entry.at),
        }
        while room.poll_output().is_some() {}
    }
    room
}

#[test]
fn a_window_running_out_in_the_lobby_frees_the_seat() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 3));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim.advance(1_000);
    sim.disconnect("a").unwrap();
    assert_eq!(sim.room.poll_timeout(), Some(1_000 + RECONNECT_MS));
    let version = sim.room.members_version();

    sim.advance(RECONNECT_MS - 1);
    assert!(sim.room.is_player("a"), "the seat is kept for the window");
    assert!(sim.freed.is_empty());
    sim.advance(1);
    assert!(!sim.room.is_player("a"));
    assert!(!sim.room.is_member("a"));
    assert_eq!(sim.room.player_count(), 1);
    assert_eq!(sim.freed, [(1_000 + RECONNECT_MS, "a".to_string())]);
    assert_ne!(sim.room.members_version(), version);
    assert_eq!(members(&sim.room), ["b"]);
    assert_eq!(sim.room.poll_timeout(), None, "nothing left to wait for");
    // The lobby hears of it like of a leave.
    let last = states(&sim).pop().unwrap();
    assert_eq!(last.player_count, 1);
    assert_eq!(last.players[0].id, "b");
    // The timer is in the log, so the lobby rebuilds from it.
    let log = sim.room.log();
    assert_eq!(
        log[log.len() - 2].input,
        Some(Input::Disconnect { user: "a".into() })
    );
    assert_eq!(log[log.len() - 1].input, None);
    assert_eq!(
        members(&rebuild(sim.room.spec().clone(), log)),
        members(&sim.room)
    );
    // The seat is free: a comes back by joining again.
    sim.join("a").unwrap();
    assert!(sim.room.is_player("a"));
}

#[test]
fn a_window_running_out_mid_match_abandons_the_player() {
    let mut sim = Sim::new(spec(Mode::Duel, 5));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim.until_question(0);
    let dropped = sim.now;
    sim.disconnect("b").unwrap();
    sim.answer("a", 0, right(0)).unwrap();
    assert!(sim.rounds().is_empty(), "b keeps the seat: the round waits");
    // Question 0 times out, question 1 opens; the window still runs.
    sim.until_question(1);
    sim.answer("a", 1, right(1)).unwrap();
    assert_eq!(sim.rounds().len(), 1);
    assert!(sim.now < dropped + RECONNECT_MS);
    sim.advance(dropped + RECONNECT_MS - sim.now);
    assert_eq!(sim.freed, [(dropped + RECONNECT_MS, "b".to_string())]);
    assert_eq!(sim.rounds().len(), 2, "the round stopped waiting for b");
    assert_eq!(sim.room.phase(), Phase::Playing);
    // b answers nothing more, but stays in the room: they still get its frames.
    sim.until_question(2);
    assert_eq!(sim.answer("b", 2, right(2)), Err(RoomError::NotInRoom));
    assert!(sim.room.is_player("b"));
    assert_eq!(members(&sim.room), ["a", "b"]);
    sim.answer("a", 2, right(2)).unwrap();
    assert_eq!(sim.rounds().len(), 3, "nobody else to wait for");
    // A later disconnect has no seat to keep.
    let logged = sim.room.log().len();
    sim.disconnect("b").unwrap();
    assert_eq!(sim.room.log().len(), logged);
    sim.run_out();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    let b = s.players.iter().find(|p| p.id == "b").unwrap();
    assert!(!b.left, "abandoning is not leaving");
    assert_eq!(b.answered, 0);
    assert_eq!(sim.freed.len(), 1, "the end frees no seat again");
    assert_replays(&sim);
}

#[test]
fn reconnecting_cancels_the_window() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 3));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim.disconnect("a").unwrap();
    sim.advance(RECONNECT_MS - 1);
    sim.reconnect("a").unwrap();
    assert_eq!(sim.room.poll_timeout(), None);
    sim.advance(10 * RECONNECT_MS);
    assert!(sim.room.is_player("a"));
    assert!(sim.freed.is_empty());
    // Reconnecting without a window changes nothing and is not logged.
    let logged = sim.room.log().len();
    sim.reconnect("a").unwrap();
    sim.reconnect("nobody").unwrap();
    assert_eq!(sim.room.log().len(), logged);

    // A second disconnect restarts the window.
    let first = sim.now;
    sim.disconnect("b").unwrap();
    sim.advance(5_000);
    sim.disconnect("b").unwrap();
    assert_eq!(sim.room.poll_timeout(), Some(first + 5_000 + RECONNECT_MS));

    // During play too.
    sim.start("host").unwrap();
    sim.reconnect("b").unwrap();
    sim.until_question(0);
    sim.disconnect("a").unwrap();
    sim.advance(2_000);
    sim.reconnect("a").unwrap();
    sim.run_out();
    assert!(sim.freed.is_empty());
    let s = sim.summary().unwrap();
    assert!(s.players.iter().all(|p| !p.left));
    assert_replays(&sim);
}

#[test]
fn windows_are_for_seated_players_only() {
    let mut s = spec(Mode::Duel, 1);
    s.settings.reconnect_ms = 500;
    let mut sim = Sim::new(s);
    sim.join("a").unwrap();
    sim.spectate("s").unwrap();
    let logged = sim.room.log().len();
    assert_eq!(
        sim.disconnect("s"),
        Ok(()),
        "a spectator has no seat to keep"
    );
    assert_eq!(sim.disconnect("zed"), Err(RoomError::NotInRoom));
    assert_eq!(sim.room.log().len(), logged);
    assert_eq!(sim.room.poll_timeout(), None);
    // The window's length comes from the spec.
    sim.disconnect("a").unwrap();
    assert_eq!(sim.room.poll_timeout(), Some(500));
    sim.reconnect("a").unwrap();

    // A player who left holds nothing; the end clears every window.
    sim.join("b").unwrap();
    sim.until_question(0);
    sim.disconnect("b").unwrap();
    sim.leave("a").unwrap();
    assert_eq!(sim.room.phase(), Phase::Finished);
    assert_eq!(sim.room.poll_timeout(), None);
    assert_eq!(sim.freed_users(), ["a"]);
    assert_eq!(sim.disconnect("b"), Ok(()), "ignored once it is over");
    assert_eq!(sim.room.poll_timeout(), None);
}

#[test]
fn specs_without_a_window_get_the_default() {
    let mut json = serde_json::to_value(spec(Mode::Duel, 1)).unwrap();
    json["settings"]
        .as_object_mut()
        .unwrap()
        .remove("reconnect_ms");
    let old: RoomSpec = serde_json::from_value(json).unwrap();
    assert_eq!(old.settings.reconnect_ms, DEFAULT_RECONNECT_MS);
    assert_eq!(DEFAULT_RECONNECT_MS, 30_000);
}

#[test]
fn leaving_frees_the_seat_but_a_forfeit_does_not() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 3));
    for u in ["a", "b", "c", "d", "e"] {
        sim.join(u).unwrap();
    }
    sim.leave("d").unwrap();
    assert_eq!(sim.freed_users(), ["d"], "in the lobby");
    sim.start("host").unwrap();
    sim.until_question(0);
    sim.leave("c").unwrap();
    assert_eq!(sim.freed_users(), ["d", "c"], "during play");
    assert!(!sim.room.is_member("c"));
    assert_eq!(sim.leave("c"), Ok(()), "already out");
    assert_eq!(sim.freed_users(), ["d", "c"]);
    // A forfeit (the host relaying a tournament leave): out of the match,
    // still in the room, and the seat is not this room's to free.
    sim.input(Input::Forfeit { user: "b".into() }).unwrap();
    assert_eq!(sim.freed_users(), ["d", "c"]);
    assert!(sim.room.is_member("b"));
    assert_eq!(sim.answer("b", 0, right(0)), Err(RoomError::NotInRoom));
    let s = sim.room.room_state(sim.now);
    let b = s.players.iter().find(|p| p.id == "b").unwrap();
    assert!(!b.alive);
    assert_eq!(
        sim.input(Input::Forfeit { user: "zed".into() }),
        Err(RoomError::NotInRoom)
    );
    sim.run_out();
    let s = sim.summary().unwrap();
    assert!(s.players.iter().find(|p| p.id == "b").unwrap().left);
    assert_eq!(members(&sim.room), ["a", "b", "e"]);
    assert_replays(&sim);
}

#[test]
fn a_tournament_duel_forfeit_keeps_the_loser_watching_the_end() {
    let mut s = spec(Mode::Duel, 3);
    s.parent = Some("t1".into());
    s.creator = None;
    let mut sim = Sim::new(s);
    sim.join("a").unwrap();
    assert_eq!(
        sim.input(Input::Forfeit { user: "a".into() }),
        Err(RoomError::NotAllowed("nothing to forfeit before the start"))
    );
    sim.join("b").unwrap();
    sim.until_question(0);
    sim.input(Input::Forfeit { user: "a".into() }).unwrap();
    assert_eq!(sim.room.phase(), Phase::Finished);
    assert_eq!(sim.summary().unwrap().result.winner.as_deref(), Some("b"));
    assert!(sim.room.is_member("a"), "a sees the result");
    assert!(sim.freed.is_empty());
    assert_replays(&sim);
}

#[test]
fn spectators_count_in_every_room_state() {
    let mut s = spec(Mode::BattleRoyale, 2);
    s.settings.max_players = 3;
    let mut sim = Sim::new(s);
    sim.join("a").unwrap();
    sim.spectate("s1").unwrap();
    sim.spectate("s2").unwrap();
    sim.spectate("s2").unwrap();
    sim.spectate("a").unwrap(); // a player: a no-op
    assert_eq!(sim.room.room_state(sim.now).spectators, 2);
    assert!(sim.room.is_spectator("s1"));
    assert!(!sim.room.is_spectator("a"));
    // Watching sends no lobby broadcast of its own (as before).
    assert_eq!(states(&sim).len(), 1);

    // A spectator who takes a seat stops spectating, and the lobby says so.
    sim.advance(1_000);
    sim.join("s1").unwrap();
    assert!(sim.room.is_player("s1"));
    assert!(!sim.room.is_spectator("s1"));
    let lobby = states(&sim).pop().unwrap();
    assert_eq!((lobby.player_count, lobby.spectators), (2, 1));

    sim.advance(1_000);
    sim.spectate("s3").unwrap();
    sim.unspectate("s2").unwrap();
    sim.unspectate("s2").unwrap(); // not watching any more: a no-op
    sim.spectate("s4").unwrap();
    sim.leave("s4").unwrap(); // a spectator's leave ends their watching
    assert_eq!(sim.room.room_state(sim.now).spectators, 1);

    // The start's broadcast carries the count; so do later snapshots.
    sim.join("b").unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    let start = states(&sim).pop().unwrap();
    assert_eq!((start.phase, start.spectators), (Phase::Playing, 1));
    sim.spectate("s5").unwrap();
    assert_eq!(sim.room.room_state(sim.now).spectators, 2);
    assert_eq!(members(&sim.room), ["a", "s1", "b", "s3", "s5"]);
    assert_eq!(sim.room.member_count(), 5);

    // After the end people still come and go, but the record is closed.
    sim.run_out();
    assert_eq!(sim.room.phase(), Phase::Finished);
    let logged = sim.room.log().len();
    sim.spectate("late").unwrap();
    assert_eq!(sim.room.room_state(sim.now).spectators, 3);
    sim.unspectate("s3").unwrap();
    sim.leave("a").unwrap();
    assert_eq!(sim.leave("zed"), Err(RoomError::NotInRoom));
    assert_eq!(sim.room.log().len(), logged);
    assert_eq!(members(&sim.room), ["s1", "b", "late", "s5"]);
    assert_replays(&sim);
}

#[test]
fn the_members_version_bumps_on_every_change_and_only_then() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 2));
    let mut last = sim.room.members_version();
    let mut bumped = |sim: &Sim| {
        let now = sim.room.members_version();
        let changed = now != last;
        last = now;
        changed
    };
    assert!(sim.room.is_empty_lobby(), "nobody in it yet");
    sim.join("a").unwrap();
    assert!(bumped(&sim));
    assert!(!sim.room.is_empty_lobby());
    sim.join("a").unwrap();
    assert!(!bumped(&sim), "already seated");
    sim.spectate("s").unwrap();
    assert!(bumped(&sim));
    sim.spectate("s").unwrap();
    assert!(!bumped(&sim), "already watching");
    sim.spectate("a").unwrap();
    assert!(!bumped(&sim), "a player spectating");
    sim.join("s").unwrap();
    assert!(bumped(&sim), "spectator to player");
    sim.unspectate("nobody").unwrap();
    assert!(!bumped(&sim));
    sim.disconnect("s").unwrap();
    assert!(!bumped(&sim), "a dropped player is still a member");
    sim.advance(RECONNECT_MS);
    assert!(bumped(&sim), "the window ran out in the lobby");
    sim.leave("a").unwrap();
    assert!(bumped(&sim));
    assert!(sim.room.is_empty_lobby(), "everyone left");

    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim.join("c").unwrap();
    sim.start("host").unwrap();
    assert!(bumped(&sim));
    sim.until_question(0);
    assert!(!sim.room.is_empty_lobby(), "no lobby any more");
    sim.answer("a", 0, right(0)).unwrap();
    sim.answer("b", 0, right(0)).unwrap();
    sim.answer("c", 0, wrong(0)).unwrap();
    assert!(!bumped(&sim), "elimination keeps c in the room");
    assert!(sim.room.is_member("c"));
    sim.abandon("b").unwrap();
    assert!(!bumped(&sim), "abandoned players stay in the room");
    sim.leave("b").unwrap();
    assert!(bumped(&sim));
    assert_eq!(members(&sim.room), ["a", "c"]);
}

#[test]
fn raid_boss_frames_are_paced_by_the_rooms_own_members() {
    let mut s = spec(Mode::Raid, 2);
    s.settings.boss_hp = Some(10_000_000);
    let mut sim = Sim::new(s);
    sim.join("p0").unwrap();
    sim.join("p1").unwrap();
    sim.start("host").unwrap();
    sim.fill_audience(10_000); // 500 ms between frames
    sim.until_question(0);
    let t0 = sim.now;
    sim.answer("p0", 0, right(0)).unwrap();
    sim.now = t0 + 200;
    sim.answer("p1", 0, right(0)).unwrap();
    assert_eq!(sim.room.poll_timeout(), Some(t0 + 500));
    // Spectators leaving speed the frames up again.
    let mut sim2 = Sim::new(sim.room.spec().clone());
    sim2.join("p0").unwrap();
    sim2.join("p1").unwrap();
    sim2.start("host").unwrap();
    sim2.fill_audience(10_000);
    for i in 0..9_998 {
        sim2.unspectate(&format!("w{i}")).unwrap();
    }
    sim2.until_question(0);
    let t0 = sim2.now;
    sim2.answer("p0", 0, right(0)).unwrap();
    sim2.now = t0 + 20;
    sim2.answer("p1", 0, right(0)).unwrap();
    assert_eq!(sim2.room.poll_timeout(), Some(t0 + 100));
}

#[test]
fn logs_with_every_new_input_replay_the_same_match() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 6));
    for u in ["a", "b", "c", "d", "e"] {
        sim.join(u).unwrap();
    }
    sim.spectate("w1").unwrap();
    sim.spectate("w2").unwrap();
    sim.disconnect("e").unwrap();
    sim.advance(RECONNECT_MS); // e loses the lobby seat
    sim.disconnect("d").unwrap();
    sim.advance(1_000);
    sim.reconnect("d").unwrap();
    sim.start("host").unwrap();
    sim.unspectate("w1").unwrap();
    sim.disconnect("c").unwrap(); // c never comes back: abandoned mid-match
    sim.until_question(0);
    sim.now += 1_000;
    sim.answer("a", 0, right(0)).unwrap();
    sim.answer("b", 0, right(0)).unwrap();
    sim.answer("d", 0, right(0)).unwrap();
    sim.until_question(1);
    sim.spectate("w3").unwrap();
    sim.disconnect("b").unwrap();
    sim.now += 500;
    sim.reconnect("b").unwrap();
    sim.answer("a", 1, right(1)).unwrap();
    sim.answer("b", 1, right(1)).unwrap();
    sim.answer("d", 1, right(1)).unwrap();
    sim.until_question(2);
    sim.input(Input::Forfeit { user: "d".into() }).unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    sim.run_out();
    assert_eq!(sim.freed_users(), ["e", "c"]);

    let log = sim.room.log();
    for kind in [
        "spectate",
        "unspectate",
        "disconnect",
        "reconnect",
        "forfeit",
    ] {
        assert!(
            log.iter().any(|e| e
                .input
                .as_ref()
                .is_some_and(|i| serde_json::to_value(i).unwrap()["kind"] == kind)),
            "{kind} is logged"
        );
    }
    assert_replays(&sim);
    // Through JSON, as the store keeps it, and with who watches rebuilt too.
    let json = serde_json::to_string(log).unwrap();
    let stored: Vec<LogEntry> = serde_json::from_str(&json).unwrap();
    assert_eq!(stored, log);
    let copy = rebuild(sim.room.spec().clone(), &stored);
    assert_eq!(members(&copy), ["a", "b", "c", "d", "w2", "w3"]);
    assert_eq!(
        copy.room_state(sim.now).spectators,
        sim.room.room_state(sim.now).spectators
    );
}

#[test]
fn snapshots_keep_windows_and_spectators() {
    let mut sim = Sim::new(spec(Mode::Duel, 3));
    sim.join("a").unwrap();
    sim.spectate("w").unwrap();
    sim.join("b").unwrap();
    sim.until_question(0);
    sim.disconnect("b").unwrap();
    let json = serde_json::to_string(&sim.room).unwrap();
    let mut copy = Sim::new(sim.room.spec().clone());
    copy.room = serde_json::from_str(&json).unwrap();
    copy.now = sim.now;
    assert_eq!(copy.room.poll_timeout(), sim.room.poll_timeout());
    assert_eq!(members(&copy.room), members(&sim.room));
    assert_eq!(copy.room.members_version(), sim.room.members_version());
    for s in [&mut sim, &mut copy] {
        s.run_out();
    }
    assert_eq!(sim.summary().unwrap(), copy.summary().unwrap());
    assert_eq!(sim.freed, copy.freed);
    assert!(matches!(sim.outs.last(), Some((_, Output::Finished(_)))));
}
