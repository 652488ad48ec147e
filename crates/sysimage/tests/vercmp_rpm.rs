//! Generated version pairs compared with ours and the real
//! `rpm --eval '%{lua: print(rpm.vercmp(a, b))}'`, in one rpm invocation.
//! rpm 4.18's `rpm.vercmp` parses both sides as `[E:]V[-R]` and compares with
//! `rpmverCmp`, so pairs are EVRs: those without `:` or `-` test `rpmvercmp`
//! alone, the others the epoch and release rules too.
//! Without rpm the test is skipped, unless `CI=true`: then it fails.
use std::cmp::Ordering;
use std::process::Command;
use sysimage::vercmp::rpmvercmp;
use sysimage::Evr;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn version(r: &mut Rng) -> String {
    const SEPS: &[&str] = &[".", ".", ".", "~", "^", "_", "+", ""];
    const ALPHA: &[&str] = &["a", "b", "rc", "fc", "git", "pre", "z", "Z", "beta"];
    let mut s = String::new();
    for i in 0..1 + r.below(5) {
        if i > 0 || r.below(8) == 0 {
            s.push_str(SEPS[r.below(SEPS.len())]);
        }
        if r.below(3) == 0 {
            s.push_str(ALPHA[r.below(ALPHA.len())]);
        } else {
            let n = match r.below(4) {
                0 => r.below(3),
                1 => r.below(20),
                2 => r.below(100_000),
                _ => r.below(1000),
            };
            if r.below(6) == 0 {
                s.push('0');
            }
            s.push_str(&n.to_string());
        }
    }
    if s.is_empty() {
        s.push('1');
    }
    s
}

/// An EVR: sometimes with an epoch, sometimes with a release.
fn evr(r: &mut Rng, v: String) -> String {
    let mut s = v;
    if r.below(4) == 0 {
        s = format!("{}:{s}", r.below(3));
    }
    if r.below(3) == 0 {
        s = format!("{s}-{}", ["1", "2", "1.fc38", "0.rc1", "10"][r.below(5)]);
    }
    s
}

/// Mutates a version a little so pairs are often close.
fn near(r: &mut Rng, v: &str) -> String {
    let mut s = v.to_string();
    match r.below(6) {
        0 => s.push_str(["~rc1", "^git1", ".1", "a", "~", "^"][r.below(6)]),
        1 => {
            if s.len() > 1 {
                s.pop();
            }
        }
        2 => s = s.replace('.', "_"),
        3 => s = format!("{s}0"),
        4 => {}
        _ => s = version(r),
    }
    s
}

#[test]
fn agrees_with_real_rpm() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if Command::new("rpm").arg("--version").output().is_err() {
        if ci {
            panic!(
                "rpm is not installed and CI=true: cannot compare rpmvercmp against the real rpm"
            );
        }
        eprintln!("SKIPPED: rpm is not installed (set CI=true to make this a failure)");
        return;
    }
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pairs = Vec::new();
    for _ in 0..400 {
        let a = version(&mut r);
        let b = if r.below(3) == 0 {
            version(&mut r)
        } else {
            near(&mut r, &a)
        };
        let (a, b) = if r.below(4) == 0 {
            (evr(&mut r, a), evr(&mut r, b))
        } else {
            (a, b)
        };
        pairs.push((a, b));
    }
    let table: Vec<String> = pairs
        .iter()
        .map(|(a, b)| format!("{{\"{a}\",\"{b}\"}}"))
        .collect();
    let script = format!(
        "%{{lua: local t = {{{}}} for _,p in ipairs(t) do print(rpm.vercmp(p[1],p[2]) .. \",\") end}}",
        table.join(",")
    );
    let out = Command::new("rpm")
        .arg("--eval")
        .arg(&script)
        .output()
        .expect("run rpm");
    assert!(
        out.status.success(),
        "rpm --eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<i32> = text
        .trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().parse().expect("rpm printed a number"))
        .collect();
    assert_eq!(got.len(), pairs.len(), "rpm output: {text}");
    let mut distinct = [0usize; 3];
    for ((a, b), want) in pairs.iter().zip(got) {
        let ours = if a.contains([':', '-']) || b.contains([':', '-']) {
            Evr::parse(a).unwrap().cmp_rpm(&Evr::parse(b).unwrap())
        } else {
            rpmvercmp(a, b)
        };
        let ours = match ours {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        };
        assert_eq!(
            ours, want,
            "rpmvercmp({a:?}, {b:?}): ours {ours}, rpm {want}"
        );
        distinct[(want + 1) as usize] += 1;
    }
    // The generator must exercise all three outcomes.
    assert!(distinct.iter().all(|&n| n > 20), "{distinct:?}");
}
