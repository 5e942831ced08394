//! A `test_dc` child process for the measurement examples (`examples/dc_memory.rs`, `examples/dc_load.rs`), and what
//! Linux's `/proc` says about a process (resident memory, threads, CPU time) and the machine (load average).
//!
//! The DC is started on an ephemeral loopback port (`--listen 127.0.0.1:0 --quiet` plus the caller's arguments), its
//! address is read from its first `listening on` line, the rest of its output is drained, and it is killed on drop.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A running `test_dc` child process, killed on drop.
pub struct DcProcess {
    child: Child,
    /// The address of its (first) DC.
    pub addr: SocketAddr,
}

impl DcProcess {
    /// Starts `bin --listen 127.0.0.1:0 --quiet ARGS` and waits for its `listening on` line.
    pub fn start<S: AsRef<OsStr>>(bin: &Path, args: &[S]) -> io::Result<DcProcess> {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| {
                io::Error::other(format!(
                    "{}: {e} (build it: cargo build --release --features std --example test_dc)",
                    bin.display()
                ))
            })?;
        let out = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(out).lines();
        // Killed on every early return from here on.
        let mut dc = DcProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        dc.addr = loop {
            let line = lines
                .next()
                .ok_or_else(|| io::Error::other("test_dc exited before listening"))??;
            if let Some(a) = line.strip_prefix("listening on ") {
                break a.trim().parse().map_err(io::Error::other)?;
            }
        };
        // Drains the rest, so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(dc)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory and threads.
    pub fn status(&self) -> io::Result<ProcStatus> {
        ProcStatus::of(self.pid())
    }

    /// Its CPU time so far, user and system, all threads ([`cpu_time`]).
    pub fn cpu(&self) -> io::Result<Duration> {
        cpu_time(Some(self.pid()))
    }

    /// Open file descriptors: one per accepted socket, so the count says when the DC has accepted them all.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }
}

impl Drop for DcProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fields of `/proc/PID/status` the examples print.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStatus {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak resident), KiB.
    pub hwm_kib: u64,
    /// `Threads`.
    pub threads: u64,
}

impl ProcStatus {
    /// Reads `/proc/PID/status`.
    pub fn of(pid: u32) -> io::Result<ProcStatus> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let mut s = ProcStatus::default();
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(name), Some(value)) = (f.next(), f.next()) else {
                continue;
            };
            let v: u64 = value.parse().unwrap_or(0);
            match name {
                "VmRSS:" => s.rss_kib = v,
                "VmHWM:" => s.hwm_kib = v,
                "Threads:" => s.threads = v,
                _ => {}
            }
        }
        Ok(s)
    }
}

/// Clock ticks per second of `/proc/PID/stat`'s CPU times (`getconf CLK_TCK`; 100, Linux's `USER_HZ`, if that
/// cannot be run).
fn ticks_per_sec() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&hz| hz > 0)
            .unwrap_or(100)
    })
}

/// CPU time (user + system) of process `pid` (`None`: this one) so far, summed over all its threads, the exited
/// ones included: `utime + stime` of `/proc/PID/stat`, in clock ticks (10 ms on Linux), so a measurement should
/// last seconds.
pub fn cpu_time(pid: Option<u32>) -> io::Result<Duration> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path)?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let mut field = |skip: usize| -> io::Result<u64> {
        fields
            .nth(skip)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("/proc/PID/stat: no CPU times"))
    };
    let utime = field(11)?;
    let stime = field(0)?;
    let ticks = utime.saturating_add(stime);
    let hz = ticks_per_sec();
    Ok(Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz))
}

/// The machine's load average over 1, 5 and 15 minutes (`/proc/loadavg`).
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut f = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

/// CPU time of the calling thread so far, in nanoseconds (`/proc/thread-self/schedstat`), for timing a primitive
/// on a loaded machine without counting the time it waited for a core; `None` where the kernel does not keep it.
pub fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
