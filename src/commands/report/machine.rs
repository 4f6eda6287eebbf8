//! What a report says about where it ran: the machine (cores, memory, kernel) and which
//! sselab (its version, and the commit from git at run time).

use std::time::Duration;

use super::model::{Build, Machine};

/// How long `git describe` may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn machine() -> Machine {
    Machine {
        cores: std::thread::available_parallelism().ok().map(|n| n.get()),
        memory_bytes: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| mem_total(&info)),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|release| release.trim().to_string()),
        os: std::env::consts::OS,
    }
}

/// `MemTotal:  16370256 kB` in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// This sselab: the crate's version, and the commit of the checkout it runs in (`git
/// describe --always --dirty` in the working directory, at run time: a binary built from
/// one commit and run in another checkout says the latter, which the report names).
pub async fn build() -> Build {
    let describe = tokio::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .kill_on_drop(true)
        .output();
    let commit = match tokio::time::timeout(GIT_TIMEOUT, describe).await {
        Ok(Ok(output)) if output.status.success() => {
            Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
        }
        _ => None,
    };
    Build {
        version: env!("CARGO_PKG_VERSION"),
        commit_from: match commit {
            Some(_) => "git describe --always --dirty, in the working directory, at run time",
            None => "unknown: the working directory is not a git checkout",
        },
        commit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_meminfo_in_bytes() {
        let info = "MemTotal:        8000000 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total(info), Some(8_192_000_000));
        assert_eq!(mem_total("nothing here"), None);
    }
}
