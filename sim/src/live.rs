//! Calls that progress in time (`SimOptions::live_step`): a call created through a simulator's
//! API plays a short conversation, one line per step, and ends a step after its last line, so
//! live streams have something to show. Each simulator writes the lines in its own shape; this
//! module only keeps the clock.

use crate::data;
use fastrand::Rng;
use std::time::{Duration, Instant};

/// The created calls still playing.
pub struct Live {
    step: Duration,
    rng: Rng,
    playing: Vec<Playing>,
}

struct Playing {
    id: String,
    started: Instant,
    turns: Vec<(bool, String)>,
    /// Steps applied so far.
    shown: usize,
}

/// What a playing call shows now that it did not before.
pub struct Advance {
    pub id: String,
    /// New lines: (index in the conversation, spoken by the agent, line).
    pub lines: Vec<(usize, bool, String)>,
    /// The call ends now.
    pub ended: bool,
}

impl Live {
    pub fn new(step: Option<Duration>, seed: u64) -> Option<Live> {
        step.map(|step| Live {
            step,
            rng: Rng::with_seed(seed),
            playing: Vec::new(),
        })
    }

    /// Starts playing a conversation on the call `id`.
    pub fn start(&mut self, id: &str) {
        let turns = data::conversation(&mut self.rng);
        self.playing.push(Playing {
            id: id.to_string(),
            started: Instant::now(),
            turns,
            shown: 0,
        });
    }

    /// What each playing call's time has brought; ended calls stop playing.
    pub fn advance(&mut self) -> Vec<Advance> {
        let step = self.step.as_millis().max(1);
        let mut out = Vec::new();
        for p in &mut self.playing {
            let due = (p.started.elapsed().as_millis() / step) as usize;
            if due <= p.shown {
                continue;
            }
            let lines = (p.shown..due.min(p.turns.len()))
                .map(|i| (i, p.turns[i].0, p.turns[i].1.clone()))
                .collect();
            p.shown = due;
            out.push(Advance {
                id: p.id.clone(),
                lines,
                ended: due > p.turns.len(),
            });
        }
        self.playing.retain(|p| p.shown <= p.turns.len());
        out
    }
}

/// Applies what each playing call's time has brought to the simulator's own records: `apply`
/// gets the record (found by `id_of`), the advance, and the next tick of the simulator's clock.
pub fn play<C>(
    live: &mut Option<Live>,
    clock: &mut i64,
    calls: &mut [C],
    id_of: fn(&C) -> &str,
    mut apply: impl FnMut(&mut C, Advance, i64),
) {
    let Some(live) = live.as_mut() else { return };
    for step in live.advance() {
        *clock += 1;
        if let Some(call) = calls.iter_mut().find(|c| id_of(c) == step.id) {
            apply(call, step, *clock);
        }
    }
}
