//! CPU time and memory of a process, from Linux's /proc.

use std::io;

/// Clock ticks per second of /proc's CPU times: `USER_HZ`, 100 on every Linux ABI
/// this runs on.
const USER_HZ: f64 = 100.0;

/// Which process: a pid, or this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proc {
    /// Another process.
    Pid(u32),
    /// The bots themselves.
    Current,
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Proc::Pid(pid) => format!("/proc/{pid}/{file}"),
            Proc::Current => format!("/proc/self/{file}"),
        }
    }
}

/// CPU time a process has used, all its threads (exited ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuTime {
    /// User time, seconds.
    pub(crate) user: f64,
    /// Kernel time, seconds.
    pub(crate) sys: f64,
}

impl CpuTime {
    /// The time used between `earlier` and `self`.
    pub(crate) fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: (self.user - earlier.user).max(0.0),
            sys: (self.sys - earlier.sys).max(0.0),
        }
    }

    /// User plus kernel.
    pub(crate) fn total(self) -> f64 {
        self.user + self.sys
    }
}

/// Reads a process's CPU time (`utime` and `stime` of /proc/PID/stat).
pub(crate) fn cpu_time(proc: Proc) -> io::Result<CpuTime> {
    let stat = std::fs::read_to_string(proc.path("stat"))?;
    parse_stat(&stat).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stat"))
}

/// The CPU time of several processes, summed; None if there are none or one cannot be
/// read.
pub(crate) fn cpu_time_sum(procs: &[Proc]) -> Option<CpuTime> {
    if procs.is_empty() {
        return None;
    }
    procs.iter().try_fold(CpuTime::default(), |sum, &p| {
        let c = cpu_time(p).ok()?;
        Some(CpuTime {
            user: sum.user + c.user,
            sys: sum.sys + c.sys,
        })
    })
}

/// The RSS of several processes, summed; None if there are none or one cannot be read.
pub(crate) fn rss_sum(procs: &[Proc]) -> Option<u64> {
    if procs.is_empty() {
        return None;
    }
    procs
        .iter()
        .try_fold(0, |sum, &p| Some(sum + rss_bytes(p).ok()?))
}

fn parse_stat(stat: &str) -> Option<CpuTime> {
    // The command name (field 2) may hold spaces and parentheses: fields after the last
    // ')' start with field 3 (state); utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let sys: f64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user: user / USER_HZ,
        sys: sys / USER_HZ,
    })
}

/// CPU time of the whole machine, all CPUs, from the first line of /proc/stat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SystemCpu {
    /// Seconds not idle (user, nice, system, irq, softirq), summed over CPUs.
    pub(crate) busy: f64,
    /// Seconds the hypervisor ran something else while a CPU wanted to run.
    pub(crate) steal: f64,
}

impl SystemCpu {
    /// The time between `earlier` and `self`.
    pub(crate) fn since(self, earlier: SystemCpu) -> SystemCpu {
        SystemCpu {
            busy: (self.busy - earlier.busy).max(0.0),
            steal: (self.steal - earlier.steal).max(0.0),
        }
    }
}

/// Reads the machine's CPU time.
pub(crate) fn system_cpu() -> io::Result<SystemCpu> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_system(&stat).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc/stat"))
}

fn parse_system(stat: &str) -> Option<SystemCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = v[..] else {
        return None;
    };
    Some(SystemCpu {
        busy: (user + nice + system + irq + softirq) / USER_HZ,
        steal: steal / USER_HZ,
    })
}

/// A process's resident set size in bytes (`VmRSS` of /proc/PID/status).
pub(crate) fn rss_bytes(proc: Proc) -> io::Result<u64> {
    let status = std::fs::read_to_string(proc.path("status"))?;
    status_field(&status, "VmRSS:")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// The CPUs a process may run on (`Cpus_allowed_list`), e.g. "1" or "0-1".
pub(crate) fn cpus_allowed(proc: Proc) -> Option<String> {
    let status = std::fs::read_to_string(proc.path("status")).ok()?;
    status_field(&status, "Cpus_allowed_list:").map(str::to_owned)
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(str::trim)
}

/// How many CPUs a list like "0-1,3" names.
pub(crate) fn count_cpus(list: &str) -> usize {
    list.split(',')
        .filter_map(|part| {
            let part = part.trim();
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                    Some(b.saturating_sub(a) + 1)
                }
                None => part.parse::<usize>().ok().map(|_| 1),
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = "1234 (tick (sync) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    3 0 100 1000 200";
        let cpu = parse_stat(line).expect("parses");
        assert!((cpu.user - 2.5).abs() < 1e-9 && (cpu.sys - 0.75).abs() < 1e-9);
    }

    #[test]
    fn this_process_is_readable() {
        assert!(cpu_time(Proc::Current).is_ok());
        assert!(rss_bytes(Proc::Current).expect("rss") > 0);
        assert!(cpus_allowed(Proc::Current).is_some_and(|l| count_cpus(&l) >= 1));
    }

    #[test]
    fn system_line_parses() {
        let stat = "cpu  100 0 50 900 3 0 10 40 0 0\ncpu0 50 0 25 450 1 0 5 20 0 0\n";
        let s = parse_system(stat).expect("parses");
        assert!((s.busy - 1.6).abs() < 1e-9 && (s.steal - 0.4).abs() < 1e-9);
        assert!(system_cpu().is_ok());
    }

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpus("0"), 1);
        assert_eq!(count_cpus("0-1"), 2);
        assert_eq!(count_cpus("0-3,6,8-9"), 7);
    }
}
