//! What a user waits for (issue 18): the update end to end, from "a new
//! image version is published" to "a deployment of it is the default for the
//! next boot", next to the snapper way (download the packages, snapshot,
//! `rpm -U`); `apply-live` alone at two update sizes; and how the cost of
//! the everyday commands and the disk grow with history (20 views, 5
//! deployments).
//!
//! Every client here is a filesystem of its own (a loop-mounted btrfs made
//! for the repetition, untimed), because a deployment's sysroot is a
//! filesystem's top level; the mirror is a stock `rsync --daemon` on
//! 127.0.0.1 serving `reimage publish` repositories and the `.rpm` files.
use super::*;

/// The inputs the sections share with the rest of the run.
pub struct Inputs<'a> {
    pub ctx: &'a Ctx,
    pub scratch: &'a Path,
    pub v1: &'a [PathBuf],
    pub v2: &'a [PathBuf],
    /// v1 with 10 packages at their v2 version.
    pub list_u10: &'a [PathBuf],
    pub up10: &'a [PathBuf],
    pub changed: &'a [PathBuf],
    /// The v1 rpm root, a subvolume (the snapper way snapshots it).
    pub rpm_root_v1: Option<&'a Path>,
    pub reps: usize,
    pub delta_level: u32,
}

/// `rsync --daemon` on 127.0.0.1, stopped on drop.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Daemon {
    fn start(dir: &Path, modules: &[(&str, &Path)]) -> Result<Daemon> {
        let port = free_port()?;
        let mut conf = format!(
            "port = {port}\naddress = 127.0.0.1\npid file = {}\nuse chroot = no\nuid = root\ngid = root\nread only = yes\nsocket options = TCP_NODELAY\n",
            dir.join("rsyncd.pid").display()
        );
        for (name, path) in modules {
            conf.push_str(&format!("[{name}]\n    path = {}\n", path.display()));
        }
        let path = dir.join("rsyncd.conf");
        fs::write(&path, conf)?;
        let child = Command::new("rsync")
            .args(["--daemon", "--no-detach"])
            .arg(format!("--config={}", path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("rsync --daemon")?;
        let d = Daemon { child, port };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t.elapsed().as_secs() > 10 {
                bail!("rsync --daemon did not listen on port {port}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(d)
    }
    fn url(&self, module: &str) -> String {
        format!("rsync://127.0.0.1:{}/{module}", self.port)
    }
}

/// A client system on a filesystem of its own: a pool that synced v1 of
/// `url` and composed it, deployed as the default.
fn client(ctx: &Ctx, url: &str) -> Result<ScratchFs> {
    let fs_ = ScratchFs::new(FsType::Btrfs, 6 << 30)?;
    let root = fs_.path();
    let pool = root.join("pool");
    ctx.run(ctx.reimage(&pool).arg("init"))?;
    ctx.run(
        ctx.reimage(&pool)
            .args(["sync", url, "bench", "1", "--compose", "bench-1"]),
    )?;
    ctx.run(
        ctx.reimage(&pool)
            .args(["deploy", "bench-1", "--sysroot"])
            .arg(root),
    )?;
    Ok(fs_)
}

fn link_all(dir: &Path, files: &[PathBuf]) -> Result<()> {
    fs::create_dir_all(dir)?;
    for f in files {
        fs::copy(f, dir.join(f.file_name().unwrap()))?;
    }
    Ok(())
}

/// `du`-like: data + metadata used on the filesystem holding `p`.
fn used_bytes(ctx: &Ctx, p: &Path) -> Result<(u64, u64)> {
    ctx.run(Command::new("btrfs").args(["filesystem", "sync"]).arg(p))?;
    let out = ctx.run(
        Command::new("btrfs")
            .args(["filesystem", "df", "-b"])
            .arg(p),
    )?;
    let get = |kind: &str| -> u64 {
        out.lines()
            .filter(|l| l.starts_with(kind))
            .filter_map(|l| l.split("used=").nth(1))
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum()
    };
    Ok((get("Data"), get("Metadata")))
}

/// The end-to-end update section and what it found besides the timings.
pub fn end_to_end(inp: &Inputs) -> Result<(Section, Value)> {
    let ctx = inp.ctx;
    let dir = inp.scratch.join("e2e");
    fs::create_dir_all(&dir)?;
    // The publisher: v1 and v2 of the realistic set, and v1 with 10 packages
    // updated, each with static deltas from v1.
    let pubpool = dir.join("pubpool");
    ctx.run(ctx.reimage(&pubpool).arg("init"))?;
    let level = inp.delta_level.to_string();
    let mut publish_s = serde_json::Map::new();
    for (repo, second) in [("repo-v2", inp.v2), ("repo-10", inp.list_u10)] {
        let r = dir.join(repo);
        ctx.run(
            ctx.reimage(&pubpool)
                .arg("publish")
                .arg(&r)
                .args(["bench", "1"])
                .args(inp.v1),
        )?;
        let t = Instant::now();
        ctx.run(
            ctx.reimage(&pubpool)
                .arg("publish")
                .arg(&r)
                .args(["bench", "2"])
                .args(second)
                .args(["--deltas-from", "1", "--delta-level", &level]),
        )?;
        publish_s.insert(repo.into(), json!(t.elapsed().as_secs_f64()));
    }
    let rpms_v2 = dir.join("rpms-v2");
    let rpms_10 = dir.join("rpms-10");
    link_all(&rpms_v2, inp.changed)?;
    link_all(&rpms_10, inp.up10)?;
    let daemon = Daemon::start(
        &dir,
        &[
            ("repo-v2", &dir.join("repo-v2")),
            ("repo-10", &dir.join("repo-10")),
            ("rpms-v2", &rpms_v2),
            ("rpms-10", &rpms_10),
        ],
    )?;
    let last: std::cell::RefCell<serde_json::Map<String, Value>> = Default::default();
    let mut cs: Vec<Contender> = vec![];
    for (tag, n) in [("10", inp.up10.len()), ("v2", inp.changed.len())] {
        let key: &'static str = if tag == "10" { "e2e_10" } else { "e2e_v2" };
        let url = daemon.url(&format!("repo-{tag}"));
        let (last, bin) = (&last, &ctx.bin);
        cs.push(Contender::new(
            key,
            &format!("reimage upgrade ({n}-package update)"),
            format!(
                "reimage upgrade  # sync from rsync://127.0.0.1/repo-{tag} (static deltas), compose --from the booted view, deploy as the default"
            ),
            Box::new(move |rep| {
                let c = client(ctx, &url)?;
                let root = c.path();
                let out = root.join("upgrade.json");
                let r = ctx.timed(&mut sh(&format!(
                    "{b} --pool {p} --json upgrade --sysroot {r} > {o}\nsync -f {r}",
                    b = q(bin),
                    p = q(&root.join("pool")),
                    r = q(root),
                    o = q(&out),
                )));
                if r.is_ok() {
                    let v: Value = serde_json::from_str(&fs::read_to_string(&out)?)?;
                    if v["deploy"].is_null() || v["up_to_date"] == true {
                        bail!("upgrade did not deploy a new version: {v}");
                    }
                    let mut l = last.borrow_mut();
                    l.insert(
                        key.to_string(),
                        json!({
                            "rep": rep,
                            "seconds": v["seconds"],
                            "sync_seconds": v["sync"]["seconds"],
                            "wire_bytes": v["sync"]["wire_bytes"],
                            "by_delta": v["sync"]["by_delta"],
                            "compose_seconds": v["compose"]["seconds"],
                            "stored_placements": v["compose"]["stored_placements"],
                            "deploy_seconds": v["deploy"]["seconds"],
                        }),
                    );
                }
                drop(c);
                r
            }),
        ));
        if let Some(rr) = inp.rpm_root_v1 {
            let snap_key: &'static str = if tag == "10" {
                "e2e_snapper_10"
            } else {
                "e2e_snapper_v2"
            };
            let url = daemon.url(&format!("rpms-{tag}"));
            let (rr, dir) = (rr.to_path_buf(), dir.clone());
            cs.push(
                Contender::new(
                    snap_key,
                    &format!("download + snapshot + rpm -U ({n} packages)"),
                    format!(
                        "rsync -a --sockopts=TCP_NODELAY rsync://127.0.0.1/rpms-{tag}/ DL/ && btrfs subvolume snapshot ROOT S && rpm -U --root S {} DL/*.rpm",
                        RPM_FLAGS.join(" ")
                    ),
                    Box::new(move |rep| {
                        let dl = dir.join(format!("dl-{tag}-{rep}"));
                        let snap = dir.join(format!("snap-{tag}-{rep}"));
                        let r = ctx.timed(&mut sh(&format!(
                            "rsync -a --sockopts=TCP_NODELAY {url}/ {d}/\nbtrfs -q subvolume snapshot {root} {s}\nrpm -U --root {s} {flags} {d}/*.rpm\nsync -f {s}",
                            d = q(&dl),
                            root = q(&rr),
                            s = q(&snap),
                            flags = RPM_FLAGS.join(" "),
                        )));
                        if snap.exists() {
                            ctx.run(Command::new("btrfs").args(["subvolume", "delete"]).arg(&snap))?;
                        }
                        let _ = fs::remove_dir_all(&dl);
                        r
                    }),
                )
                .vs(key),
            );
        }
    }
    let section = measure(
        "update",
        &format!(
            "the update a user waits for: published -> default for the next boot, {} and {} (v1 -> v2) packages, from a local rsync daemon",
            inp.up10.len(),
            inp.changed.len()
        ),
        None,
        "",
        cs,
        inp.reps,
    );
    drop(daemon);
    let extra = json!({"publish_seconds": publish_s, "last_rep": Value::Object(last.into_inner())});
    Ok((section, extra))
}

/// A system with 20 views and 5 deployments: the everyday commands' times,
/// and the disk per extra view and per extra deployment.
pub fn history(inp: &Inputs) -> Result<(Section, Value)> {
    let ctx = inp.ctx;
    let fs_ = ScratchFs::new(FsType::Btrfs, 8 << 30)?;
    let root = fs_.path().to_path_buf();
    let pool = root.join("pool");
    ctx.run(ctx.reimage(&pool).arg("init"))?;
    ctx.run(ctx.reimage(&pool).arg("import").args(inp.v1).args(inp.v2))?;
    let lists = root.join("lists");
    fs::create_dir_all(&lists)?;
    // 20 versions: v1, then each one more package at its v2 version (the
    // history of a system updated a package at a time), composed as a user
    // would (compose picks its base itself).
    let pairs: Vec<(usize, &PathBuf)> = inp
        .v1
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            inp.changed
                .iter()
                .find(|n| rpm_name(n) == rpm_name(p))
                .map(|n| (i, n))
        })
        .collect();
    if pairs.is_empty() {
        bail!("no v2 package pairs with a v1 package by name");
    }
    let mut list: Vec<PathBuf> = inp.v1.to_vec();
    let (d0, m0) = used_bytes(ctx, &root)?;
    let mut first: Option<(u64, u64)> = None;
    let t = Instant::now();
    for k in 0..20 {
        if k > 0 {
            let (i, n) = pairs[(k - 1) % pairs.len()];
            list[i] = n.clone();
        }
        let l = lists.join(format!("h{k}.list"));
        write_list(&l, &list)?;
        ctx.run(
            ctx.reimage(&pool)
                .args(["compose", &format!("h{k}"), "--list"])
                .arg(&l),
        )?;
        if k == 0 {
            first = Some(used_bytes(ctx, &root)?);
        }
    }
    let compose_20_s = t.elapsed().as_secs_f64();
    let (d20, m20) = used_bytes(ctx, &root)?;
    let (d1, m1) = first.unwrap();
    let per_view = (d20 + m20).saturating_sub(d1 + m1) / 19;
    // 5 deployments of the newest views.
    ctx.run(
        ctx.reimage(&pool)
            .args(["deploy", "h15", "--no-cleanup", "--sysroot"])
            .arg(&root),
    )?;
    let (dd1, md1) = used_bytes(ctx, &root)?;
    for k in 16..20 {
        ctx.run(
            ctx.reimage(&pool)
                .args(["deploy", &format!("h{k}"), "--no-cleanup", "--sysroot"])
                .arg(&root),
        )?;
    }
    let (dd5, md5) = used_bytes(ctx, &root)?;
    let per_deployment = (dd5 + md5).saturating_sub(dd1 + md1) / 4;
    let cmds: [(&'static str, &str, Vec<String>); 5] = [
        (
            "h_status",
            "status (5 deployments)",
            vec![
                "status".into(),
                "--sysroot".into(),
                root.display().to_string(),
            ],
        ),
        (
            "h_list",
            "list VIEW (one of 20 views)",
            vec!["list".into(), "h19".into()],
        ),
        (
            "h_gc",
            "gc (20 views, nothing to collect)",
            vec!["gc".into()],
        ),
        (
            "h_fsck",
            "fsck (20 views, 5 deployments)",
            vec!["fsck".into()],
        ),
        ("h_usage", "usage (20 views)", vec!["usage".into()]),
    ];
    let mut cs: Vec<Contender> = vec![];
    for (key, label, args) in cmds {
        let pool = pool.clone();
        cs.push(Contender::new(
            key,
            label,
            format!("reimage {}", args.join(" ")),
            Box::new(move |_| {
                let mut c = Command::new(&ctx.bin);
                c.arg("--pool").arg(&pool).arg("--json").args(&args);
                ctx.timed(&mut c)
            }),
        ));
    }
    let section = measure(
        "history",
        "history: a pool with 20 views (a package updated per version) and 5 deployments",
        None,
        "",
        cs,
        inp.reps,
    );
    let extra = json!({
        "views": 20,
        "deployments": 5,
        "compose_20_seconds": compose_20_s,
        "first_view_bytes": (d1 + m1).saturating_sub(d0 + m0),
        "bytes_per_extra_view": per_view,
        "metadata_per_extra_view": m20.saturating_sub(m1) / 19,
        "bytes_per_extra_deployment": per_deployment,
        "metadata_per_extra_deployment": md5.saturating_sub(md1) / 4,
        "data_used": d20,
    });
    drop(fs_);
    Ok((section, extra))
}

/// `apply-live` alone, for a 1-package and a v1 -> v2 update: the running
/// system is deployment 1 mounted in a private mount namespace (`unshare
/// -m`), as tests/live.rs does; each repetition stages the update, applies
/// it live (timed inside the namespace) and undeploys it again.
pub fn live(inp: &Inputs) -> Result<Section> {
    let ctx = inp.ctx;
    let fs_ = ScratchFs::new(FsType::Btrfs, 6 << 30)?;
    let root = fs_.path().to_path_buf();
    let pool = root.join("pool");
    ctx.run(ctx.reimage(&pool).arg("init"))?;
    ctx.run(ctx.reimage(&pool).arg("import").args(inp.v1).args(inp.v2))?;
    let lists = root.join("lists");
    fs::create_dir_all(&lists)?;
    let l1 = lists.join("v1.list");
    write_list(&l1, inp.v1)?;
    // One package updated: the first changed one.
    let one = inp
        .changed
        .first()
        .context("no changed package between v1 and v2")?;
    let l_one = lists.join("one.list");
    write_list(
        &l_one,
        &inp.v1
            .iter()
            .map(|p| {
                if rpm_name(p) == rpm_name(one) {
                    one.clone()
                } else {
                    p.clone()
                }
            })
            .collect::<Vec<_>>(),
    )?;
    let l2 = lists.join("v2.list");
    write_list(&l2, inp.v2)?;
    for (name, l) in [("lv1", &l1), ("lone", &l_one), ("lv2", &l2)] {
        ctx.run(ctx.reimage(&pool).args(["compose", name, "--list"]).arg(l))?;
    }
    ctx.run(
        ctx.reimage(&pool)
            .args(["deploy", "lv1", "--sysroot"])
            .arg(&root),
    )?;
    let dev = fs_.device().display().to_string();
    let next = std::cell::Cell::new(2u64);
    let mut cs: Vec<Contender> = vec![];
    for (key, view, n) in [
        ("live_1", "lone", 1usize),
        ("live_v2", "lv2", inp.changed.len()),
    ] {
        let (pool, root, dev, next) = (pool.clone(), root.clone(), dev.clone(), &next);
        cs.push(Contender::new(
            key,
            &format!("apply-live ({n}-package update)"),
            "reimage apply-live  # staged deployment's view over the running /usr".into(),
            Box::new(move |rep| {
                let run = root.join(format!("running-{key}-{rep}"));
                let b = q(&ctx.bin);
                let p = q(&pool);
                let r = q(&run);
                let d = q(Path::new(&dev));
                let script = format!(
                    "mkdir -p {r}\nmount --make-rprivate /\n\
                     mount -t btrfs -o subvol=/reimage/deployments/1 {d} {r}\n\
                     mount -t btrfs -o ro,subvol=/pool/views/lv1 {d} {r}/usr\n\
                     if [ -d {r}/usr/local ]; then mount -t btrfs -o subvol=/shared/usr-local {d} {r}/usr/local; fi\n\
                     mount -t tmpfs tmpfs {r}/run\n\
                     {b} --pool {p} -q deploy {view} --no-cleanup --sysroot {s}\n\
                     t0=$(date +%s%N)\n\
                     {b} --pool {p} -q apply-live --allow-replacement --sysroot {s} --root {r}\n\
                     t1=$(date +%s%N)\n\
                     echo \"live-seconds $(( (t1 - t0) / 1000 ))\"\n",
                    s = q(&root),
                );
                let out = ctx.run(
                    Command::new("unshare")
                        .args(["-m", "bash", "-c"])
                        .arg(format!("set -eo pipefail\n{script}")),
                )?;
                let us: f64 = out
                    .lines()
                    .find_map(|l| l.strip_prefix("live-seconds "))
                    .and_then(|v| v.trim().parse().ok())
                    .context("apply-live time not printed")?;
                // Deployment 1 the default again, then the update removed.
                let id = next.get();
                next.set(id + 1);
                ctx.run(
                    ctx.reimage(&pool)
                        .args(["rollback", "--sysroot"])
                        .arg(&root),
                )?;
                ctx.run(
                    ctx.reimage(&pool)
                        .args(["undeploy", &id.to_string(), "--sysroot"])
                        .arg(&root),
                )?;
                let _ = fs::remove_dir(&run);
                Ok(Sample {
                    done: us / 1e6,
                    durable: us / 1e6,
                })
            }),
        ));
    }
    let section = measure(
        "live",
        "apply-live alone: a 1-package and the v1 -> v2 update, on a running root in a private mount namespace",
        None,
        "",
        cs,
        inp.reps,
    );
    drop(fs_);
    Ok(section)
}
