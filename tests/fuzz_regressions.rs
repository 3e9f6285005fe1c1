//! Every committed fuzz seed (`fuzz/seeds/<target>/`) and every kept crash
//! input (`fuzz/regressions/<target>/`) through the same function its fuzz
//! target calls: none may panic. Runs with `cargo test`, no nightly needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use trackgate::protocol::fuzzing::run_target;

fn targets() -> Vec<String> {
    let mut t: Vec<String> = std::fs::read_dir("fuzz/fuzz_targets")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    t.sort();
    t
}

/// Runs every file under `dir/<target>/`; returns how many ran.
fn run_dir(dir: &str, target: &str) -> usize {
    let d = Path::new(dir).join(target);
    let Ok(entries) = std::fs::read_dir(&d) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let ok = std::panic::catch_unwind(|| run_target(target, &data));
        assert!(
            matches!(ok, Ok(true)),
            "{}: {}",
            path.display(),
            if ok.is_err() {
                "panicked"
            } else {
                "unknown target"
            }
        );
        n += 1;
    }
    n
}

#[test]
fn every_target_has_committed_seeds_and_none_panics() {
    let targets = targets();
    assert_eq!(targets.len(), 11, "{targets:?}");
    let mut total = 0;
    for t in &targets {
        let seeds = run_dir("fuzz/seeds", t);
        assert!(
            seeds > 0,
            "{t}: no committed seeds (run python3 fuzz/seeds.py)"
        );
        total += seeds;
    }
    // Every vector line is a seed of its protocol's target and of `replay`.
    assert!(total >= 1_600, "{total} seeds");
}

#[test]
fn kept_crash_inputs_stay_fixed() {
    let n: usize = targets()
        .iter()
        .map(|t| run_dir("fuzz/regressions", t))
        .sum();
    assert!(n >= 10, "{n} kept inputs");
}

#[test]
fn seeds_match_the_vectors() {
    // The committed seeds are what fuzz/seeds.py writes from the vectors:
    // one file per vector line for the protocol's own target.
    for t in targets().iter().filter(|t| *t != "replay") {
        let tsv = std::fs::read_to_string(format!("protocols/vectors/{t}.tsv")).unwrap();
        let lines = tsv
            .lines()
            .skip(1)
            .filter(|l| l.split('\t').count() == 5)
            .count();
        let seeds = std::fs::read_dir(format!("fuzz/seeds/{t}"))
            .unwrap()
            .count();
        assert_eq!(seeds, lines, "{t}: rerun python3 fuzz/seeds.py");
    }
}
