//! A process's resident memory and CPU time, read from /proc (Linux only, like the targets).

/// Clock ticks per second in /proc/<pid>/stat: USER_HZ, fixed at 100 in Linux's user ABI.
const USER_HZ: f64 = 100.0;

/// What was read of a process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub rss_kib: u64,
    pub cpu_secs: f64,
}

/// `VmRSS` and `utime + stime` of `pid`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; the fields after its last ')' are
    // fixed: state is field 3, utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Sample {
        rss_kib,
        cpu_secs: (utime + stime) / USER_HZ,
    })
}
