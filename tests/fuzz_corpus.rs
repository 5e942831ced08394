//! Replays every checked-in fuzz corpus file on stable through the same entry points the cargo-fuzz targets call,
//! and checks that every target has a fuzz_targets file and a non-empty seed corpus.

use std::{fs, path::Path};

#[test]
fn every_corpus_file_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0usize;
    let mut names = Vec::new();
    for (name, target) in mtproto_sansio::fuzzing::targets() {
        names.push(name);
        let src = root.join("fuzz_targets").join(format!("{name}.rs"));
        let text = fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        assert!(
            text.contains(&format!("fuzzing::{}", name.replace('-', "_"))) || text.contains("fuzzing::"),
            "{} does not call the library entry point",
            src.display()
        );
        let dir = root.join("corpus").join(name);
        let mut files = 0usize;
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = fs::read(&path).unwrap();
            target(&data);
            files += 1;
        }
        assert!(files > 0, "empty seed corpus for {name}");
        replayed += files;
    }
    // Every corpus directory belongs to a registered target (a stale directory means a target was dropped).
    for entry in fs::read_dir(root.join("corpus")).unwrap() {
        let dir = entry.unwrap().file_name().into_string().unwrap();
        assert!(names.contains(&dir.as_str()), "corpus/{dir} has no registered target");
    }
    println!("replayed {replayed} corpus files across {} targets", names.len());
}
