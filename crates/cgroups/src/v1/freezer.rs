//! v1 freezer: freezer.state FROZEN / THAWED, waiting (bounded) for FREEZING to settle.

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::Error;
use crate::fs;

const STATE: &str = "freezer.state";
/// Up to about 2.5 seconds: 10 quick polls, then 10ms steps.
const ATTEMPTS: u32 = 250;

fn pause(attempt: u32) {
    sleep(if attempt < 10 {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(10)
    });
}

fn state(dir: &Path) -> Result<String, Error> {
    Ok(fs::read(&dir.join(STATE))?.trim().to_owned())
}

pub(super) fn freeze(dir: &Path) -> Result<(), Error> {
    let file = dir.join(STATE);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        // A freeze can get stuck in FREEZING (a task in an uninterruptible sleep); thawing
        // and freezing again unsticks it, as runc does.
        if attempt > 0 && attempt % 50 == 0 {
            fs::write(&file, "THAWED")?;
        }
        fs::write(&file, "FROZEN")?;
        last = state(dir)?;
        if last == "FROZEN" {
            return Ok(());
        }
        pause(attempt);
    }
    // Leave the cgroup usable rather than half frozen.
    fs::write(&file, "THAWED")?;
    Err(Error::FreezeTimeout {
        path: file,
        state: last,
        attempts: ATTEMPTS,
    })
}

pub(super) fn thaw(dir: &Path) -> Result<(), Error> {
    let file = dir.join(STATE);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        fs::write(&file, "THAWED")?;
        last = state(dir)?;
        if last == "THAWED" {
            return Ok(());
        }
        pause(attempt);
    }
    Err(Error::ThawTimeout {
        path: file,
        state: last,
    })
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, Error> {
    Ok(state(dir)? == "FROZEN")
}
