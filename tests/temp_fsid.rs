//! A copy of a mounted btrfs mounted beside it (a cloned disk, a power-cut
//! image checked on the host) gets a random in-memory "temp-fsid" from
//! Linux 6.7+. reimage names a system's pool root file and its boot entries
//! by the filesystem's UUID, so it must read the UUID on disk (what blkid
//! and `UUID=` name), not the temporary one (found by `cargo xtask
//! powercut`: fsck looked for `roots/system-<temp-fsid>.json`).
use reimage_testkit::{require_root, FsType, ScratchFs};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(o.status.success(), "{c:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// The copy: its loop device and mount, removed on drop.
struct Copy {
    dev: String,
    mnt: PathBuf,
    mounted: bool,
}

impl Drop for Copy {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_dir(&self.mnt);
    }
}

fn uuid_of(p: &Path) -> String {
    reimage::sys::btrfs_uuid(&std::fs::File::open(p).unwrap()).unwrap()
}

#[test]
fn the_uuid_is_the_one_on_disk_when_a_copy_is_mounted_beside_it() {
    require_root!();
    let fs = ScratchFs::new(FsType::Btrfs, 256 << 20).expect("a scratch btrfs");
    std::fs::write(fs.path().join("f"), b"x").unwrap();
    run(Command::new("btrfs")
        .args(["filesystem", "sync"])
        .arg(fs.path()));
    let on_disk = run(Command::new("blkid")
        .args(["-p", "-s", "UUID", "-o", "value"])
        .arg(fs.device()));
    assert_eq!(uuid_of(fs.path()), on_disk);

    let img = fs.path().with_extension("copy.img");
    let _ = std::fs::remove_file(&img);
    run(Command::new("cp").arg(fs.device()).arg(&img));
    let dev = run(Command::new("losetup").args(["--find", "--show"]).arg(&img));
    let mut copy = Copy {
        dev,
        mnt: fs.path().with_extension("copy"),
        mounted: false,
    };
    std::fs::create_dir_all(&copy.mnt).unwrap();
    run(Command::new("mount").arg(&copy.dev).arg(&copy.mnt));
    copy.mounted = true;
    let _ = std::fs::remove_file(&img); // the loop device keeps it
    assert_eq!(std::fs::read(copy.mnt.join("f")).unwrap(), b"x");
    // The kernel gave the copy a temp-fsid (Linux 6.7+; older kernels
    // refuse the mount above).
    let temp = std::fs::read_dir("/sys/fs/btrfs")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            std::fs::read_to_string(e.path().join("temp_fsid")).is_ok_and(|t| t.trim() == "1")
        });
    assert!(temp, "the copy was mounted without a temp-fsid");
    assert_eq!(uuid_of(&copy.mnt), on_disk, "the copy's UUID");
    assert_eq!(uuid_of(fs.path()), on_disk, "the original's UUID");
}
