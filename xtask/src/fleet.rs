//! `cargo xtask fleet [--clients N] [--parallel K]`: one mirror, N client
//! machines, and what serving them costs the server (issue 19).
//!
//! The simulation, all of it made and removed by this task (as root):
//! - one btrfs filesystem in a sparse loop image under `target/fleet/run-PID/`,
//!   holding the published repository (the realistic set, v1 and v2 with
//!   static deltas from v1, as `cargo xtask bench` publishes it) and the
//!   client pools (one subvolume each);
//! - a mirror network namespace running nginx (static deltas, port 80), a
//!   second nginx (the first install of v1, port 8080, so its cost is not
//!   counted with the updates) and a stock rsync daemon (`examples/rsyncd.conf`,
//!   port 873), each in its own cgroup v2 directory so that its CPU time,
//!   children included (rsync forks one per connection), is read from
//!   `cpu.stat`;
//! - one network namespace per client, joined to the mirror's by its own veth
//!   pair with a /30 of 10.200.0.0/16: no other interface, no default route,
//!   nothing reachable but the mirror.
//!
//! Clients run in waves of `--parallel` (default 4, on 2 cores): each client of
//! a wave syncs v1 over HTTP into its pool, the pool is snapshotted, then the
//! wave updates to v2 by static delta over HTTP (first pool) and by live rsync
//! without deltas from the daemon (the snapshot), one method after the other,
//! all from the client namespaces (`ip netns exec`). Each sync's bytes on the
//! wire are the counters of the client's veth (both directions, headers
//! included); its time is wall time. The wave's pools are then deleted, so
//! disk use stays bounded by one wave.
//!
//! Everything made is recorded in a cleanup script (`target/fleet/cleanup-PID.sh`)
//! that a guard process runs if this task dies (error, Ctrl-C, even SIGKILL:
//! the guard sees its stdin pipe close); on success the task runs it itself.
//! Writes `target/fleet/report.md` and `report.json`.
use crate::cmd;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// At most this many clients (10.200.0.0/16 holds 16384 /30s; disk and time
/// are the real bound).
pub const MAX_CLIENTS: usize = 1000;
/// The image name the simulation publishes.
const IMAGE: &str = "fleet";

pub struct Options {
    pub clients: usize,
    pub parallel: usize,
    pub delta_level: u32,
    /// Seconds one sync may take before it is killed (and the run fails).
    pub sync_timeout: u64,
    /// Minutes the client waves may take; no new wave starts after that.
    pub max_minutes: u64,
}

/// The /30 of client `i`: (mirror side, client side) addresses.
pub fn addresses(i: usize) -> (String, String) {
    let base = i * 4;
    let at = |k: usize| format!("10.200.{}.{}", (base + k) >> 8, (base + k) & 255);
    (at(1), at(2))
}

/// Nearest-rank percentile (`p` in 0..=100) of `v`; 0 for an empty slice.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// `usage_usec` of a cgroup v2 `cpu.stat`.
pub fn usage_usec(cpu_stat: &str) -> Option<u64> {
    cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on a hybrid system).
fn cgroup2_root() -> Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("read /proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .min_by_key(|p| p.as_os_str().len())
        .context(
            "no cgroup v2 filesystem is mounted (see /proc/self/mounts): the fleet reads \
             each server's CPU time, children included, from a cgroup v2 cpu.stat",
        )
}

/// How a client syncs in one phase of a wave.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Method {
    /// First install of v1 over HTTP (whole packages) from the seed nginx.
    Install,
    /// v1 -> v2 by static delta over HTTP.
    HttpDelta,
    /// v1 -> v2 by live rsync from the daemon, no deltas.
    RsyncLive,
}

impl Method {
    const ALL: [Method; 3] = [Method::Install, Method::HttpDelta, Method::RsyncLive];
    fn key(self) -> &'static str {
        match self {
            Method::Install => "install_v1_http",
            Method::HttpDelta => "update_http_static_delta",
            Method::RsyncLive => "update_rsync_live",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Method::Install => "first install of v1, HTTP (whole packages)",
            Method::HttpDelta => "v1 -> v2, static deltas over HTTP (nginx)",
            Method::RsyncLive => "v1 -> v2, live rsync from rsync --daemon (--no-deltas)",
        }
    }
    /// The server's cgroup (leaf name).
    fn server(self) -> &'static str {
        match self {
            Method::Install => "nginx-seed",
            Method::HttpDelta => "nginx",
            Method::RsyncLive => "rsyncd",
        }
    }
}

/// One client's sync.
#[derive(Clone, Debug)]
struct Sample {
    client: usize,
    seconds: f64,
    /// veth counters, both directions (Ethernet, IP and TCP headers included).
    wire_bytes: u64,
    /// What reimage itself counted (`wire_bytes` of `sync --json`).
    payload_bytes: u64,
    client_cpu_seconds: f64,
}

#[derive(Default)]
struct Tally {
    samples: Vec<Sample>,
    server_usec: u64,
    /// (clients done, cumulative server CPU seconds) after each wave.
    series: Vec<(usize, f64)>,
}

struct Run {
    id: String,
    out: PathBuf,
    dir: PathBuf,
    logs: PathBuf,
    img: PathBuf,
    mnt: PathBuf,
    cg: PathBuf,
    bin: PathBuf,
    script: PathBuf,
    clients: usize,
    guard: Option<(Child, ChildStdin)>,
    servers: Vec<Child>,
}

pub fn run(opts: &Options) -> Result<()> {
    if !cmd::is_root() {
        bail!("the fleet makes network namespaces, veths, cgroups and a loop-mounted btrfs: run `sudo cargo xtask fleet`");
    }
    if opts.clients == 0 || opts.clients > MAX_CLIENTS {
        bail!("--clients must be 1..={MAX_CLIENTS}, not {}", opts.clients);
    }
    if opts.parallel == 0 || opts.parallel > 16 {
        bail!("--parallel must be 1..=16, not {}", opts.parallel);
    }
    crate::prereq::ensure("fleet", crate::prereq::FLEET)?;
    let root = cmd::repo_root();
    cmd::build_release_reimage(&root)?;
    let data = root.join("target/testdata");
    if !data.join("realistic/v1").is_dir() || !data.join("realistic/v2").is_dir() {
        eprintln!("fleet: building test data (cargo xtask testdata --realistic)");
        crate::testdata::run(&crate::testdata::Options {
            out: data.clone(),
            realistic: true,
            boot: false,
        })?;
    }
    let mut run = Run::new(&root, opts)?;
    run.start_guard()?;
    let result = run.simulate(opts, &data);
    let cleaned = run.cleanup();
    let report = result?;
    cleaned?;
    run.check_clean()?;
    let complete = report["complete"].as_bool() == Some(true);
    print!("{}", report_md(&report));
    check_measured(&report)?;
    eprintln!(
        "fleet: report in {} and {}",
        run.out.join("report.md").display(),
        run.out.join("report.json").display()
    );
    if !complete {
        bail!(
            "the fleet stopped after {} of {} clients (--max-minutes {}); the report covers those",
            report["clients_done"],
            opts.clients,
            opts.max_minutes
        );
    }
    Ok(())
}

impl Run {
    fn new(root: &Path, opts: &Options) -> Result<Run> {
        let pid = std::process::id();
        let out = root.join("target/fleet");
        let dir = out.join(format!("run-{pid}"));
        let logs = out.join("logs");
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
        std::fs::create_dir_all(dir.join("mnt"))
            .with_context(|| format!("create {}", dir.display()))?;
        Ok(Run {
            id: format!("rfleet-{pid}"),
            img: dir.join("fleet.img"),
            mnt: dir.join("mnt"),
            cg: cgroup2_root()?.join(format!("reimage-fleet-{pid}")),
            bin: root.join("target/release/reimage"),
            script: out.join(format!("cleanup-{pid}.sh")),
            clients: opts.clients,
            out,
            dir,
            logs,
            guard: None,
            servers: Vec::new(),
        })
    }

    fn mirror_ns(&self) -> String {
        format!("{}-m", self.id)
    }

    fn client_ns(&self, i: usize) -> String {
        format!("{}-c{i}", self.id)
    }

    /// The script that removes everything this run made; safe to run twice.
    fn cleanup_script(&self) -> String {
        let q = |p: &Path| format!("'{}'", p.display());
        format!(
            r#"#!/bin/sh
# Removes what `cargo xtask fleet` run {id} made. Safe to run again.
ID='{id}'; CG={cg}; MNT={mnt}; IMG={img}; DIR={dir}
echo "fleet cleanup: $ID"
kill_all() {{
  for d in $(find "$CG" -depth -type d 2>/dev/null); do
    if [ -e "$d/cgroup.kill" ]; then echo 1 > "$d/cgroup.kill"
    else for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; fi
  done
  for ns in $(ip netns list | awk '{{print $1}}' | grep "^$ID-"); do
    for p in $(ip netns pids "$ns"); do kill -9 "$p" 2>/dev/null; done
  done
}}
kill_all
for t in 1 2 3 4 5 6 7 8 9 10; do
  left=$(find "$CG" -name cgroup.procs -exec cat {{}} + 2>/dev/null)
  [ -z "$left" ] && break
  sleep 0.5; kill_all
done
for ns in $(ip netns list | awk '{{print $1}}' | grep "^$ID-"); do ip netns del "$ns"; done
if mountpoint -q "$MNT"; then
  umount "$MNT" || {{ sleep 2; umount "$MNT"; }} || umount -l "$MNT"
fi
for dev in $(losetup -j "$IMG" -n -O NAME); do losetup -d "$dev"; done
rm -f "$IMG"
for d in $(find "$CG" -depth -type d 2>/dev/null); do rmdir "$d"; done
mountpoint -q "$MNT" || rm -rf "$DIR/nginx" "$DIR/nginx-seed" "$DIR/rsyncd"
rmdir "$MNT" "$DIR" 2>/dev/null
rm -f "$0"
echo "fleet cleanup: done"
"#,
            id = self.id,
            cg = q(&self.cg),
            mnt = q(&self.mnt),
            img = q(&self.img),
            dir = q(&self.dir),
        )
    }

    /// Starts the guard: it runs the cleanup script unless told `done` on its
    /// stdin, so a killed task still leaves nothing behind.
    fn start_guard(&mut self) -> Result<()> {
        std::fs::write(&self.script, self.cleanup_script())
            .with_context(|| format!("write {}", self.script.display()))?;
        let log = std::fs::File::create(self.out.join("guard.log"))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("trap '' INT HUP TERM; read x; [ \"$x\" = done ] || exec sh \"$0\"")
            .arg(&self.script)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("start the cleanup guard (sh)")?;
        let stdin = child.stdin.take().context("the guard's stdin")?;
        self.guard = Some((child, stdin));
        Ok(())
    }

    /// Stops the servers and runs the cleanup script; tells the guard it is done.
    fn cleanup(&mut self) -> Result<()> {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let r = cmd::run_visible(Command::new("sh").arg(&self.script));
        if let Some((mut child, mut stdin)) = self.guard.take() {
            let _ = stdin.write_all(b"done\n");
            drop(stdin);
            let _ = child.wait();
        }
        r
    }

    /// Fails when anything this run made is still there.
    fn check_clean(&self) -> Result<()> {
        let ns = cmd::run_capture(Command::new("ip").args(["netns", "list"]))?;
        let loops = cmd::run_capture(Command::new("losetup").arg("-a"))?;
        let mounts = std::fs::read_to_string("/proc/self/mounts")?;
        let mut left = Vec::new();
        if ns.lines().any(|l| l.starts_with(&format!("{}-", self.id))) {
            left.push("network namespaces");
        }
        if loops.contains(&self.img.display().to_string()) {
            left.push("a loop device");
        }
        if mounts.contains(&self.mnt.display().to_string()) {
            left.push("a mount");
        }
        if self.cg.exists() {
            left.push("a cgroup");
        }
        if !left.is_empty() {
            bail!(
                "fleet cleanup left {} behind (run {} by hand)",
                left.join(", "),
                self.id
            );
        }
        eprintln!("fleet: cleaned up: no namespace, veth, mount, loop device, cgroup or daemon of {} is left", self.id);
        Ok(())
    }

    /// `sh` that moves itself into cgroup `leaf`, then execs `argv` (in
    /// network namespace `ns` when given): the program and every child it
    /// forks are counted there from the start.
    fn in_cgroup(&self, leaf: &str, ns: Option<&str>, argv: &[&std::ffi::OsStr]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"")
            .arg("sh")
            .arg(self.cg.join(leaf));
        if let Some(ns) = ns {
            c.args(["ip", "netns", "exec", ns]);
        }
        c.args(argv);
        for v in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
            "RSYNC_PROXY",
        ] {
            c.env_remove(v);
        }
        c
    }

    fn mkcg(&self, leaf: &str) -> Result<()> {
        let d = self.cg.join(leaf);
        std::fs::create_dir_all(&d).with_context(|| format!("create cgroup {}", d.display()))
    }

    fn cpu_usec(&self, leaf: &str) -> Result<u64> {
        let p = self.cg.join(leaf).join("cpu.stat");
        let s = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        usage_usec(&s).with_context(|| format!("{} has no usage_usec", p.display()))
    }

    /// The loop-mounted btrfs; size: the repository and one wave of clients.
    fn make_filesystem(&self, parallel: usize) -> Result<()> {
        let size = (3 + parallel as u64) << 30;
        let f = std::fs::File::create(&self.img)?;
        f.set_len(size)?;
        drop(f);
        cmd::run_capture(Command::new("mkfs.btrfs").args(["-q", "-f"]).arg(&self.img))?;
        let dev = cmd::run_capture(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&self.img),
        )?;
        let dev = dev.trim();
        cmd::run_capture(Command::new("mount").arg(dev).arg(&self.mnt))?;
        eprintln!(
            "fleet: {} GiB btrfs on {dev} at {}",
            size >> 30,
            self.mnt.display()
        );
        Ok(())
    }

    /// Publishes v1 and v2 (with static deltas from v1) into `mnt/repo`.
    fn publish(&self, data: &Path, delta_level: u32) -> Result<Value> {
        let pubpool = self.mnt.join("pubpool");
        let repo = self.mnt.join("repo");
        cmd::run_capture(
            Command::new(&self.bin)
                .arg("--pool")
                .arg(&pubpool)
                .arg("init"),
        )?;
        self.mkcg("publish")?;
        let mut out = json!({"delta_level": delta_level});
        for (ver, extra) in [
            ("1", vec![]),
            (
                "2",
                vec![
                    "--deltas-from".to_string(),
                    "1".into(),
                    "--delta-level".into(),
                    delta_level.to_string(),
                ],
            ),
        ] {
            let set = data.join(format!("realistic/v{ver}"));
            let mut argv: Vec<std::ffi::OsString> = vec![
                self.bin.clone().into(),
                "--pool".into(),
                pubpool.clone().into(),
                "--json".into(),
                "publish".into(),
                repo.clone().into(),
                IMAGE.into(),
                ver.into(),
                set.into(),
            ];
            argv.extend(extra.into_iter().map(Into::into));
            let argv: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
            let cpu0 = self.cpu_usec("publish")?;
            let t = Instant::now();
            eprintln!("fleet: publish {IMAGE} {ver}");
            let text = cmd::run_capture(&mut self.in_cgroup("publish", None, &argv))?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = (self.cpu_usec("publish")? - cpu0) as f64 / 1e6;
            let j: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            out[format!("v{ver}")] = json!({
                "seconds": secs,
                "cpu_seconds": cpu,
                "deltas_bytes": j["deltas"][0]["bytes"].clone(),
                "report": j,
            });
        }
        Ok(out)
    }

    /// The mirror namespace and one namespace + veth pair per client.
    fn make_network(&self) -> Result<()> {
        let ip = |args: &[&str]| cmd::run_capture(Command::new("ip").args(args)).map(|_| ());
        let m = self.mirror_ns();
        ip(&["netns", "add", &m])?;
        ip(&["-n", &m, "link", "set", "lo", "up"])?;
        for i in 0..self.clients {
            let c = self.client_ns(i);
            let (ma, ca) = addresses(i);
            let dev = format!("c{i}");
            ip(&["netns", "add", &c])?;
            ip(&["-n", &c, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &m, "link", "add", &dev, "type", "veth", "peer", "name", "eth0", "netns", &c,
            ])?;
            ip(&["-n", &m, "addr", "add", &format!("{ma}/30"), "dev", &dev])?;
            ip(&["-n", &m, "link", "set", &dev, "up"])?;
            ip(&["-n", &c, "addr", "add", &format!("{ca}/30"), "dev", "eth0"])?;
            ip(&["-n", &c, "link", "set", "eth0", "up"])?;
        }
        // Nothing but the links themselves: no default route anywhere.
        for ns in std::iter::once(m.clone()).chain((0..self.clients).map(|i| self.client_ns(i))) {
            let r =
                cmd::run_capture(Command::new("ip").args(["-n", &ns, "route", "show", "default"]))?;
            if !r.trim().is_empty() {
                bail!(
                    "network namespace {ns} has a default route ({}); refusing to go on",
                    r.trim()
                );
            }
        }
        eprintln!(
            "fleet: namespace {m} and {} client namespaces, one veth pair each, 10.200.0.0/16",
            self.clients
        );
        Ok(())
    }

    fn nginx_conf(&self, name: &str, port: u16) -> Result<PathBuf> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d)?;
        let conf = d.join("nginx.conf");
        let p = |s: &str| d.join(s).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 2;\nuser nobody nogroup;\n\
                 pid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 512; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  \
                 default_type application/octet-stream;\n  client_body_temp_path {t}/body;\n  \
                 proxy_temp_path {t}/proxy;\n  fastcgi_temp_path {t}/fastcgi;\n  \
                 uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n  \
                 server {{\n    listen {port};\n    root {root};\n    \
                 location ~ ^/(lock|tmp/|index/|reimage.toml) {{ return 404; }}\n  }}\n}}\n",
                pid = p("nginx.pid"),
                err = p("error.log"),
                t = p("temp"),
                root = self.mnt.join("repo").display(),
            ),
        )?;
        std::fs::create_dir_all(d.join("temp"))?;
        Ok(conf)
    }

    fn rsyncd_conf(&self, root: &Path) -> Result<PathBuf> {
        let example = std::fs::read_to_string(root.join("examples/rsyncd.conf"))
            .context("read examples/rsyncd.conf")?;
        let d = self.dir.join("rsyncd");
        std::fs::create_dir_all(&d)?;
        let mut text = format!(
            "# examples/rsyncd.conf with the fleet's paths\nport = 873\nlock file = {}\nlog file = {}\n",
            d.join("rsyncd.lock").display(),
            d.join("rsyncd.log").display()
        );
        for line in example.lines() {
            let t = line.trim_start();
            if t.starts_with("pid file") {
                text.push_str(&format!("pid file = {}\n", d.join("rsyncd.pid").display()));
            } else if t.starts_with("path =") {
                text.push_str(&format!("    path = {}\n", self.mnt.join("repo").display()));
            } else if !t.starts_with("transfer logging") {
                text.push_str(line);
                text.push('\n');
            }
        }
        let conf = d.join("rsyncd.conf");
        std::fs::write(&conf, text)?;
        Ok(conf)
    }

    /// nginx (80), the seed nginx (8080) and rsync --daemon (873) in the mirror namespace.
    fn start_servers(&mut self, root: &Path) -> Result<()> {
        let m = self.mirror_ns();
        let http = self.nginx_conf("nginx", 80)?;
        let seed = self.nginx_conf("nginx-seed", 8080)?;
        let rsyncd = self.rsyncd_conf(root)?;
        let starts: Vec<(&str, Vec<std::ffi::OsString>, u16)> = vec![
            (
                "nginx",
                vec![
                    "nginx".into(),
                    "-e".into(),
                    self.dir.join("nginx/error.log").into(),
                    "-c".into(),
                    http.into(),
                ],
                80,
            ),
            (
                "nginx-seed",
                vec![
                    "nginx".into(),
                    "-e".into(),
                    self.dir.join("nginx-seed/error.log").into(),
                    "-c".into(),
                    seed.into(),
                ],
                8080,
            ),
            (
                "rsyncd",
                vec![
                    "rsync".into(),
                    "--daemon".into(),
                    "--no-detach".into(),
                    format!("--config={}", rsyncd.display()).into(),
                ],
                873,
            ),
        ];
        for (leaf, argv, port) in starts {
            self.mkcg(leaf)?;
            let argv: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
            let log = std::fs::File::create(self.logs.join(format!("{leaf}.log")))?;
            let child = self
                .in_cgroup(leaf, Some(&m), &argv)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0)
                .spawn()
                .with_context(|| format!("start {leaf}"))?;
            self.servers.push(child);
            self.wait_listening(port, leaf)?;
        }
        eprintln!(
            "fleet: mirror serving {} over HTTP (:80, seed :8080) and rsync (:873)",
            self.mnt.join("repo").display()
        );
        Ok(())
    }

    fn wait_listening(&mut self, port: u16, what: &str) -> Result<()> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            let out = cmd::run_capture(Command::new("ip").args([
                "netns",
                "exec",
                &self.mirror_ns(),
                "ss",
                "-Hltn",
            ]))?;
            if out
                .split_whitespace()
                .any(|w| w.ends_with(&format!(":{port}")))
            {
                return Ok(());
            }
            if let Some(Ok(Some(st))) = self.servers.last_mut().map(|c| c.try_wait()) {
                bail!(
                    "{what} exited ({st}); see {}",
                    self.logs.join(format!("{what}.log")).display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{what} did not listen on port {port} within 15 s")
    }

    /// veth counters on the mirror side: interface name -> rx + tx bytes.
    fn veth_bytes(&self) -> Result<BTreeMap<String, u64>> {
        let text = cmd::run_capture(Command::new("ip").args([
            "-n",
            &self.mirror_ns(),
            "-s",
            "-j",
            "link",
            "show",
        ]))?;
        let v: Value = serde_json::from_str(&text).context("parse `ip -s -j link show`")?;
        let mut m = BTreeMap::new();
        for l in v.as_array().into_iter().flatten() {
            let s = &l["stats64"];
            let b = s["rx"]["bytes"].as_u64().unwrap_or(0) + s["tx"]["bytes"].as_u64().unwrap_or(0);
            if let Some(n) = l["ifname"].as_str() {
                m.insert(n.to_string(), b);
            }
        }
        Ok(m)
    }

    fn pool(&self, i: usize, which: &str) -> PathBuf {
        self.mnt.join("clients").join(format!("c{i}-{which}"))
    }

    /// The sync command of client `i` for `method`.
    fn sync_argv(&self, i: usize, method: Method) -> Vec<std::ffi::OsString> {
        let (mirror, _) = addresses(i);
        let (pool, source, ver) = match method {
            Method::Install => (self.pool(i, "http"), format!("http://{mirror}:8080"), "1"),
            Method::HttpDelta => (self.pool(i, "http"), format!("http://{mirror}"), "2"),
            Method::RsyncLive => (
                self.pool(i, "rsync"),
                format!("rsync://{mirror}/reimage"),
                "2",
            ),
        };
        let mut v: Vec<std::ffi::OsString> = vec![
            self.bin.clone().into(),
            "--pool".into(),
            pool.into(),
            "--json".into(),
            "sync".into(),
            source.into(),
            IMAGE.into(),
            ver.into(),
        ];
        if method == Method::RsyncLive {
            v.push("--no-deltas".into());
        }
        v
    }

    /// Runs `method` for every client of `wave` at once; fails on any failed sync.
    fn phase(&self, wave: &[usize], method: Method, timeout: Duration) -> Result<Vec<Sample>> {
        let before = self.veth_bytes()?;
        let mut running = Vec::new();
        for &i in wave {
            let leaf = format!("c{i}");
            let cpu0 = self.cpu_usec(&leaf)?;
            let base = self.logs.join(format!("c{i}-{}", method.key()));
            let argv = self.sync_argv(i, method);
            let argv: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
            let child = self
                .in_cgroup(&leaf, Some(&self.client_ns(i)), &argv)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(base.with_extension("json"))?)
                .stderr(std::fs::File::create(base.with_extension("log"))?)
                .spawn()
                .with_context(|| format!("start the sync of client {i}"))?;
            running.push((i, child, Instant::now(), cpu0, base, None::<f64>));
        }
        let t0 = Instant::now();
        while running.iter().any(|r| r.5.is_none()) {
            for r in running.iter_mut().filter(|r| r.5.is_none()) {
                if let Some(st) = r.1.try_wait()? {
                    if !st.success() {
                        bail!(
                            "client {} ({}) failed ({st}); see {}",
                            r.0,
                            method.label(),
                            r.4.with_extension("log").display()
                        );
                    }
                    r.5 = Some(r.2.elapsed().as_secs_f64());
                } else if t0.elapsed() > timeout {
                    let _ = r.1.kill();
                    let _ = r.1.wait();
                    bail!(
                        "client {} ({}) took over {} s; killed",
                        r.0,
                        method.label(),
                        timeout.as_secs()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = self.veth_bytes()?;
        let mut out = Vec::new();
        for (i, _, _, cpu0, base, secs) in running {
            let dev = format!("c{i}");
            let j: Value = serde_json::from_slice(&std::fs::read(base.with_extension("json"))?)
                .with_context(|| {
                    format!(
                        "{} is not a sync report",
                        base.with_extension("json").display()
                    )
                })?;
            out.push(Sample {
                client: i,
                seconds: secs.unwrap_or(0.0),
                wire_bytes: after.get(&dev).copied().unwrap_or(0)
                    - before.get(&dev).copied().unwrap_or(0),
                payload_bytes: j["wire_bytes"].as_u64().unwrap_or(0),
                client_cpu_seconds: (self.cpu_usec(&format!("c{i}"))? - cpu0) as f64 / 1e6,
            });
        }
        Ok(out)
    }

    /// One wave: pools, install v1, snapshot, the two updates, checks, removal.
    fn wave(
        &self,
        wave: &[usize],
        timeout: Duration,
        tallies: &mut BTreeMap<Method, Tally>,
    ) -> Result<()> {
        let btrfs = |args: &[&std::ffi::OsStr]| {
            cmd::run_capture(Command::new("btrfs").args(args)).map(|_| ())
        };
        for &i in wave {
            self.mkcg(&format!("c{i}"))?;
            btrfs(&[
                "subvolume".as_ref(),
                "create".as_ref(),
                self.pool(i, "http").as_os_str(),
            ])?;
            cmd::run_capture(
                Command::new(&self.bin)
                    .arg("--pool")
                    .arg(self.pool(i, "http"))
                    .arg("init"),
            )?;
        }
        for method in Method::ALL {
            if method == Method::HttpDelta {
                for &i in wave {
                    btrfs(&[
                        "subvolume".as_ref(),
                        "snapshot".as_ref(),
                        self.pool(i, "http").as_os_str(),
                        self.pool(i, "rsync").as_os_str(),
                    ])?;
                }
            }
            let cpu0 = self.cpu_usec(method.server())?;
            let samples = self.phase(wave, method, timeout)?;
            let t = tallies.entry(method).or_default();
            t.server_usec += self.cpu_usec(method.server())? - cpu0;
            t.samples.extend(samples);
            t.series.push((t.samples.len(), t.server_usec as f64 / 1e6));
        }
        let want = std::fs::read(self.mnt.join(format!("repo/images/{IMAGE}/2.json")))?;
        for &i in wave {
            for which in ["http", "rsync"] {
                let got = self.pool(i, which).join(format!("images/{IMAGE}/2.json"));
                if std::fs::read(&got).ok().as_deref() != Some(&want[..]) {
                    bail!(
                        "client {i}: {} is not the published manifest of v2",
                        got.display()
                    );
                }
                cmd::run_capture(
                    Command::new(&self.bin)
                        .arg("--pool")
                        .arg(self.pool(i, which))
                        .arg("fsck"),
                )
                .with_context(|| {
                    format!("client {i}: `reimage fsck` of its {which} pool failed")
                })?;
                btrfs(&[
                    "subvolume".as_ref(),
                    "delete".as_ref(),
                    self.pool(i, which).as_os_str(),
                ])?;
            }
        }
        btrfs(&["subvolume".as_ref(), "sync".as_ref(), self.mnt.as_os_str()])?;
        Ok(())
    }

    fn simulate(&mut self, opts: &Options, data: &Path) -> Result<Value> {
        let t0 = Instant::now();
        let root = cmd::repo_root();
        self.mkcg("")?;
        if usage_usec(&std::fs::read_to_string(self.cg.join("cpu.stat"))?).is_none() {
            bail!("{} has no usage_usec", self.cg.join("cpu.stat").display());
        }
        self.make_filesystem(opts.parallel)?;
        let publish = self.publish(data, opts.delta_level)?;
        std::fs::create_dir_all(self.mnt.join("clients"))?;
        self.make_network()?;
        self.start_servers(&root)?;
        let mut tallies: BTreeMap<Method, Tally> = BTreeMap::new();
        let all: Vec<usize> = (0..opts.clients).collect();
        let waves_t0 = Instant::now();
        let mut done = 0;
        for wave in all.chunks(opts.parallel) {
            if waves_t0.elapsed() > Duration::from_secs(opts.max_minutes * 60) {
                eprintln!(
                    "fleet: --max-minutes {} reached; no new wave",
                    opts.max_minutes
                );
                break;
            }
            self.wave(wave, Duration::from_secs(opts.sync_timeout), &mut tallies)?;
            done += wave.len();
            eprintln!(
                "fleet: {done}/{} clients done ({:.0} s)",
                opts.clients,
                t0.elapsed().as_secs_f64()
            );
        }
        let report = report_json(opts, done, &publish, &tallies, t0.elapsed().as_secs_f64());
        std::fs::write(
            self.out.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        std::fs::write(self.out.join("report.md"), report_md(&report))?;
        Ok(report)
    }
}

/// Fails when the run measured nothing: a method without clients, a sync that
/// moved no bytes on the wire or took no time, or a live rsync daemon that
/// spent no CPU (its cgroup would not be counting it).
pub fn check_measured(r: &Value) -> Result<()> {
    let done = r["clients_done"].as_u64().unwrap_or(0);
    if done == 0 {
        bail!("the fleet measured no client (clients_done is 0)");
    }
    for m in Method::ALL {
        let x = &r["methods"][m.key()];
        if x["clients"].as_u64() != Some(done) {
            bail!("{}: {} samples for {done} clients", m.label(), x["clients"]);
        }
        for c in x["per_client"].as_array().into_iter().flatten() {
            for k in ["wire_bytes", "payload_bytes", "seconds"] {
                if c[k].as_f64().unwrap_or(0.0) <= 0.0 {
                    bail!(
                        "{}: client {} has {k} 0: nothing was measured",
                        m.label(),
                        c["client"]
                    );
                }
            }
        }
    }
    let rsync = &r["methods"][Method::RsyncLive.key()]["server_cpu_seconds"];
    if rsync.as_f64().unwrap_or(0.0) <= 0.0 {
        bail!("the rsync daemon's cgroup counted no CPU time: its children were not measured");
    }
    Ok(())
}

fn stats(v: &[f64]) -> Value {
    let mean = if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    };
    json!({"p50": percentile(v, 50.0), "p99": percentile(v, 99.0), "max": percentile(v, 100.0), "mean": mean})
}

fn method_json(t: &Tally) -> Value {
    let n = t.samples.len();
    let col = |f: &dyn Fn(&Sample) -> f64| t.samples.iter().map(f).collect::<Vec<f64>>();
    let server = t.server_usec as f64 / 1e6;
    json!({
        "clients": n,
        "wire_bytes": stats(&col(&|s| s.wire_bytes as f64)),
        "wire_bytes_total": t.samples.iter().map(|s| s.wire_bytes).sum::<u64>(),
        "payload_bytes": stats(&col(&|s| s.payload_bytes as f64)),
        "seconds": stats(&col(&|s| s.seconds)),
        "client_cpu_seconds": stats(&col(&|s| s.client_cpu_seconds)),
        "server_cpu_seconds": server,
        "server_cpu_seconds_per_client": if n == 0 { 0.0 } else { server / n as f64 },
        "server_cpu_after_clients": t.series.iter().map(|(k, s)| json!([k, s])).collect::<Vec<_>>(),
        "per_client": t.samples.iter().map(|s| json!({
            "client": s.client, "seconds": s.seconds, "wire_bytes": s.wire_bytes,
            "payload_bytes": s.payload_bytes, "client_cpu_seconds": s.client_cpu_seconds,
        })).collect::<Vec<_>>(),
    })
}

fn machine() -> Value {
    let out = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .current_dir(cmd::repo_root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = crate::cmd::cpu_model();
    let dirty = !out("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    json!({
        "commit": format!("{}{}", out("git", &["rev-parse", "--short", "HEAD"]), if dirty { "+dirty" } else { "" }),
        "nproc": out("nproc", &[]),
        "cpu": cpu,
        "kernel": out("uname", &["-r"]),
        "nginx": String::from_utf8_lossy(&Command::new("nginx").arg("-v").output().map(|o| o.stderr).unwrap_or_default()).trim().to_string(),
        "rsync": out("rsync", &["--version"]).lines().next().unwrap_or("").to_string(),
        "date": out("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    })
}

fn report_json(
    opts: &Options,
    done: usize,
    publish: &Value,
    tallies: &BTreeMap<Method, Tally>,
    secs: f64,
) -> Value {
    let mut methods = json!({});
    for (m, t) in tallies {
        methods[m.key()] = method_json(t);
        methods[m.key()]["label"] = json!(m.label());
        methods[m.key()]["server"] = json!(m.server());
    }
    json!({
        "clients": opts.clients,
        "clients_done": done,
        "complete": done == opts.clients,
        "parallel": opts.parallel,
        "delta_level": opts.delta_level,
        "machine": machine(),
        "publish": publish,
        "methods": methods,
        "wall_seconds": secs,
        "how": "each client in its own network namespace, one veth pair to the mirror's; \
                clients run in waves of `parallel`; wire bytes are the veth counters (both \
                directions, headers included); server CPU is the cgroup v2 usage of the \
                server's processes and children over the phases that used it",
    })
}

fn mib(b: f64) -> String {
    format!("{:.2} MiB", b / (1u64 << 20) as f64)
}

fn report_md(r: &Value) -> String {
    let m = &r["machine"];
    let mut s = format!(
        "# Serving a fleet: `cargo xtask fleet --clients {}`\n\n\
         Commit {}, {} ({} cores, kernel {}), {}; {}, {}.\n\
         {} of {} clients, {} at a time (waves), static deltas at level {}; {:.0} s in all.\n\n",
        r["clients"],
        m["commit"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or(""),
        m["nproc"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        m["date"].as_str().unwrap_or(""),
        m["nginx"].as_str().unwrap_or(""),
        m["rsync"].as_str().unwrap_or(""),
        r["clients_done"],
        r["clients"],
        r["parallel"],
        r["delta_level"],
        r["wall_seconds"].as_f64().unwrap_or(0.0),
    );
    s.push_str(
        "| per client | wire p50 | wire p99 | reimage payload p50 | time p50 | time p99 | client CPU p50 | server CPU / client | server CPU total |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    for m in Method::ALL {
        let x = &r["methods"][m.key()];
        if x.is_null() {
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} s | {:.2} s | {:.2} s | {:.3} s | {:.2} s |\n",
            m.label(),
            mib(f(&x["wire_bytes"]["p50"])),
            mib(f(&x["wire_bytes"]["p99"])),
            mib(f(&x["payload_bytes"]["p50"])),
            f(&x["seconds"]["p50"]),
            f(&x["seconds"]["p99"]),
            f(&x["client_cpu_seconds"]["p50"]),
            f(&x["server_cpu_seconds_per_client"]),
            f(&x["server_cpu_seconds"]),
        ));
    }
    s.push_str("\nServer CPU seconds after each wave (clients done: seconds):\n\n");
    for m in Method::ALL {
        let series = r["methods"][m.key()]["server_cpu_after_clients"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let pts: Vec<String> = series
            .iter()
            .map(|p| format!("{}: {:.2}", p[0], f(&p[1])))
            .collect();
        s.push_str(&format!(
            "- {} ({}): {}\n",
            m.label(),
            m.server(),
            pts.join(", ")
        ));
    }
    let p = &r["publish"];
    s.push_str(&format!(
        "\nPublishing (once, on the server): v1 {:.1} s ({:.1} s CPU); v2 with deltas {:.1} s ({:.1} s CPU).\n\n",
        f(&p["v1"]["seconds"]), f(&p["v1"]["cpu_seconds"]), f(&p["v2"]["seconds"]), f(&p["v2"]["cpu_seconds"]),
    ));
    s.push_str(&format!("How: {}.\n", r["how"].as_str().unwrap_or("")));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=8).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 4.0);
        assert_eq!(percentile(&v, 99.0), 8.0);
        assert_eq!(percentile(&v, 100.0), 8.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let w: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&w, 99.0), 198.0);
        assert_eq!(percentile(&w, 50.0), 100.0);
        assert_eq!(percentile(&[3.5], 99.0), 3.5);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn client_links_get_disjoint_private_30s() {
        assert_eq!(addresses(0), ("10.200.0.1".into(), "10.200.0.2".into()));
        assert_eq!(
            addresses(63),
            ("10.200.0.253".into(), "10.200.0.254".into())
        );
        assert_eq!(addresses(64), ("10.200.1.1".into(), "10.200.1.2".into()));
        let (m, c) = addresses(MAX_CLIENTS - 1);
        assert!(
            m.starts_with("10.200.") && c.starts_with("10.200."),
            "{m} {c}"
        );
    }

    #[test]
    fn a_run_that_measured_nothing_fails() {
        let t = |bytes: u64, usec: u64| Tally {
            samples: vec![Sample {
                client: 0,
                seconds: 1.0,
                wire_bytes: bytes,
                payload_bytes: bytes,
                client_cpu_seconds: 0.1,
            }],
            server_usec: usec,
            series: vec![],
        };
        let report = |bytes: u64, usec: u64| {
            let mut methods = json!({});
            for m in Method::ALL {
                methods[m.key()] = method_json(&t(bytes, usec));
            }
            json!({"clients_done": 1, "methods": methods})
        };
        check_measured(&report(1000, 5)).unwrap();
        assert!(check_measured(&report(0, 5)).is_err());
        assert!(check_measured(&report(1000, 0)).is_err());
        assert!(check_measured(&json!({"clients_done": 0})).is_err());
        assert!(check_measured(&json!({"clients_done": 1, "methods": {}})).is_err());
    }

    #[test]
    fn cpu_stat_usage_is_read() {
        let s = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n";
        assert_eq!(usage_usec(s), Some(1234567));
        assert_eq!(usage_usec("user_usec 5\n"), None);
    }

    #[test]
    fn report_divides_server_cpu_by_clients() {
        let t = Tally {
            samples: (0..4)
                .map(|i| Sample {
                    client: i,
                    seconds: 1.0 + i as f64,
                    wire_bytes: 100 * (i as u64 + 1),
                    payload_bytes: 90,
                    client_cpu_seconds: 0.5,
                })
                .collect(),
            server_usec: 2_000_000,
            series: vec![(4, 2.0)],
        };
        let j = method_json(&t);
        assert_eq!(j["server_cpu_seconds"], 2.0);
        assert_eq!(j["server_cpu_seconds_per_client"], 0.5);
        assert_eq!(j["wire_bytes_total"], 1000);
        assert_eq!(j["wire_bytes"]["p50"], 200.0);
        assert_eq!(j["seconds"]["p99"], 4.0);
    }
}
