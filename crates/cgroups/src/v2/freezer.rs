//! v2 freezer: cgroup.freeze, with the outcome read from cgroup.events ("frozen 0|1").

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::Error;
use crate::{fs, stats};

/// Up to about 2.5 seconds: 10 quick polls, then 10ms steps.
const ATTEMPTS: u32 = 250;

pub(super) fn is_frozen(dir: &Path) -> Result<bool, Error> {
    let events = fs::read(&dir.join("cgroup.events"))?;
    Ok(stats::flat_keyed(&events).get("frozen") == Some(&1))
}

pub(super) fn set(dir: &Path, frozen: bool) -> Result<(), Error> {
    let file = dir.join("cgroup.freeze");
    if !fs::exists(&file) && fs::exists(dir) {
        return Err(Error::FreezerUnavailable {
            path: dir.to_owned(),
        });
    }
    fs::write(&file, if frozen { "1" } else { "0" })?;
    for attempt in 0..ATTEMPTS {
        if is_frozen(dir)? == frozen {
            return Ok(());
        }
        sleep(if attempt < 10 {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(10)
        });
    }
    if frozen {
        // Leave the cgroup usable rather than half frozen.
        fs::write(&file, "0")?;
    }
    Err(Error::FreezeTimeout {
        path: dir.to_owned(),
        frozen: !frozen,
    })
}
