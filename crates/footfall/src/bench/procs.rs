//! Child processes of the benchmark (footfall servers, the baseline server, CLI calls)
//! and what /proc says about them.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// A server process we started; killed when dropped.
pub struct Proc {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub url: String,
    log: PathBuf,
    name: String,
}

impl Proc {
    /// Starts `exe args...` with stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        exe: &Path,
        args: &[OsString],
        envs: &[(&str, &str)],
        addr: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Proc> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if std::env::var_os("FOOTFALL_LOG").is_none() {
            // Per-request logging would be measured too.
            cmd.env("FOOTFALL_LOG", "warn");
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} {:?}", exe.display(), args))?;
        Ok(Proc {
            pid: child.id(),
            child,
            addr,
            url: format!("http://{addr}"),
            log: log.to_path_buf(),
            name: name.to_string(),
        })
    }

    /// Waits until `GET path` answers (with 200 when `need_ok`), failing early when the
    /// process exits.
    pub async fn wait_ready(
        &mut self,
        path: &str,
        need_ok: bool,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}{}", self.url, path);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready; its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok(resp) = client.get(&url).send().await
                && (!need_ok || resp.status().is_success())
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not answer GET {url} within {timeout:?}; its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last 2 KB of the process log.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(2048)));
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    }

    /// Resident set size now, bytes.
    pub fn rss(&self) -> Option<u64> {
        status_kib(self.pid, "VmRSS:").map(|k| k * 1024)
    }

    /// Peak resident set size so far (since the start or `reset_peak_rss`), bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        status_kib(self.pid, "VmHWM:").map(|k| k * 1024)
    }

    /// Starts a new peak (`peak_rss`) at the current resident set, so one phase's peak is
    /// told apart from an earlier one's (Linux's `clear_refs` 5). False if refused.
    pub fn reset_peak_rss(&self) -> bool {
        reset_peak_rss(self.pid)
    }

    /// CPU time used so far (user + system), seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(&format!("/proc/{}/stat", self.pid))
    }

    /// Waits until the process uses under 5 % of a core over 200 ms (background work
    /// such as flushing to the store finished), at most `max`.
    pub async fn wait_idle(&self, max: Duration) {
        let start = Instant::now();
        let mut prev = self.cpu_secs();
        while start.elapsed() < max {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.cpu_secs();
            match (prev, now) {
                (Some(a), Some(b)) if b - a < 0.01 => return,
                (_, None) => return,
                _ => prev = now,
            }
        }
    }

    /// SIGTERM (graceful: the server flushes), then SIGKILL after 20 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Our own CPU time (the load generator's), seconds.
pub fn self_cpu_secs() -> Option<f64> {
    cpu_secs("/proc/self/stat")
}

fn cpu_secs(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name: state is the 1st, utime the 12th,
    // stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}

/// Runs `exe --data DATA args...` to completion; returns its stdout.
pub async fn cli(exe: &Path, data: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(exe)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running footfall {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`footfall --data {} {}` failed ({}): {}",
            data.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Total size of the files under `dir` and the size of each top-level entry.
pub fn dir_size(dir: &Path) -> (u64, Vec<(String, u64)>) {
    fn walk(p: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else {
            meta.len()
        }
    }
    let mut entries: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        walk(&e.path()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort_by_key(|e| std::cmp::Reverse(e.1));
    (entries.iter().map(|e| e.1).sum(), entries)
}

/// Removes the benchmark's work directory when dropped, unless kept.
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Sets a process's peak resident set (`VmHWM`) to its current one.
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench resets a child's (the server's) peak; a quiet child's peak then is its
    /// resident set. (Not this test process's own: other tests allocate meanwhile.)
    #[test]
    fn a_reset_peak_starts_again_from_the_resident_set() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        // Wait until the child runs `sleep` (not the forked copy before exec) and its
        // resident set holds still.
        let mut last = None;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let now = status_kib(pid, "VmRSS:");
            if comm.trim() == "sleep" && now.is_some() && now == last {
                break;
            }
            last = now;
        }
        let rss = last;
        let before = status_kib(pid, "VmHWM:").expect("peak");
        let reset = reset_peak_rss(pid);
        let after = status_kib(pid, "VmHWM:").expect("peak");
        let rss = status_kib(pid, "VmRSS:").or(rss).expect("rss");
        let _ = child.kill();
        let _ = child.wait();
        assert!(reset);
        assert!(after <= before, "{after} > {before}");
        assert_eq!(
            after, rss,
            "the peak is the resident set just after the reset"
        );
    }

    #[test]
    fn reads_own_proc_figures() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS:").is_some_and(|k| k > 0));
        assert!(status_kib(me, "VmHWM:").is_some());
        assert!(self_cpu_secs().is_some());
    }

    #[test]
    fn sizes_a_directory() {
        let dir = std::env::temp_dir().join(format!("ff-bench-size-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("a"), vec![0u8; 100]).expect("write");
        std::fs::write(dir.join("sub/b"), vec![0u8; 50]).expect("write");
        let (total, entries) = dir_size(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(total, 150);
        assert_eq!(entries[0], ("a".to_string(), 100));
    }
}
