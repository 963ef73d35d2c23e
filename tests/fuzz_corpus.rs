//! Replays every committed fuzz corpus file (`tests/corpus/<target>/*`)
//! through the same checks the fuzz targets run, on stable, in a plain
//! `cargo test`. Seeds are cut from the test vectors and from the fixtures;
//! `SOTTOVOCE_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_corpus` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/checks.rs"]
mod checks;

use std::path::PathBuf;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 7] = [
    ("roundtrip", checks::roundtrip),
    ("x3dh_respond", checks::x3dh_respond),
    ("session_decrypt", checks::session_decrypt),
    ("group_decrypt", checks::group_decrypt),
    ("conversation", checks::conversation),
    ("records", checks::records),
    ("pqxdh_respond", checks::pqxdh_respond),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(target)
}

/// Every hex string under the vectors' byte-carrying keys.
fn vector_strings() -> Vec<Vec<u8>> {
    fn walk(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let (true, Some(s)) = (
                        ["message", "encoded", "state", "distribution", "bundle", "sealed", "upload", "account"]
                            .contains(&k.as_str()),
                        v.as_str(),
                    ) && let Ok(b) = hex::decode(s)
                    {
                        out.push(b);
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for name in ["wire", "session", "sender_keys", "persistence", "x3dh"] {
        let path = format!("{}/test-vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
        walk(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(), &mut out);
    }
    out.sort();
    out.dedup();
    // Keep the corpus small: at most 64 inputs, short ones first, plus 16
    // of the version-2 encodings (SPEC.md §6.8), which are all longer.
    out.sort_by_key(Vec::len);
    out.truncate(64);
    let mut pq = Vec::new();
    let path = format!("{}/test-vectors/pqxdh.json", env!("CARGO_MANIFEST_DIR"));
    walk(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(), &mut pq);
    pq.retain(|b| b.len() < 4096);
    pq.sort();
    pq.dedup();
    pq.sort_by_key(Vec::len);
    out.extend(pq.into_iter().step_by(3).take(16));
    out
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "roundtrip" => vector_strings(),
        "x3dh_respond" => checks::x3dh_seeds(),
        "session_decrypt" => checks::session_seeds(),
        "group_decrypt" => checks::group_seeds(),
        "records" => checks::record_seeds(),
        "pqxdh_respond" => checks::pqxdh_seeds(),
        _ => vec![
            // send, deliver, reply, deliver; group send/deliver; rotation; tamper; replay
            vec![0x00, 0x02, 0x00, 0x80, 0x82, 0x00, 0x07, 0x09, 0x00, 0x0d, 0x27, 0x09, 0x00, 0x05, 0x00, 0x80, 0x01],
            (0u8..64).map(|i| [0x00, 0x80, 0x02, 0x82, 0x07, 0x09, 0x0c, 0x04][usize::from(i % 8)]).collect(),
            vec![0x00, 0x00, 0x00, 0x03, 0x02, 0x80, 0x83, 0x06, 0x86, 0x0f, 0x8f, 0x03, 0x01, 0x04, 0x00],
        ],
    }
}

#[test]
fn every_corpus_file_passes_its_target_checks() {
    let write = std::env::var_os("SOTTOVOCE_WRITE_FUZZ_SEEDS").is_some();
    let mut total = 0;
    for (target, check) in TARGETS {
        let dir = corpus_dir(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds(target).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
            }
        }
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|_| panic!("missing corpus {}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "empty corpus for {target}");
        for f in &files {
            check(&std::fs::read(f).unwrap());
        }
        total += files.len();
    }
    println!("replayed {total} corpus files");
}

#[test]
fn seeds_reach_the_deep_paths() {
    // The seeds for the decrypt targets are genuine messages: without them
    // the fuzzer would start from nothing that authenticates.
    for s in checks::session_seeds() {
        let _ = sottovoce::Message::try_from(s.as_slice()).unwrap();
    }
    for s in checks::group_seeds() {
        let _ = sottovoce::GroupMessage::try_from(s.as_slice()).unwrap();
    }
    for s in checks::x3dh_seeds() {
        let _ = sottovoce::PreKeyMessage::try_from(s.as_slice()).unwrap();
    }
    // The PQXDH seeds decode, and all but the replay and the classical one
    // start a session.
    let mut started = 0;
    for s in checks::pqxdh_seeds() {
        let m = sottovoce::PreKeyMessage::try_from(s.as_slice()).unwrap();
        let mut bob = checks::pq_bob();
        started += usize::from(sottovoce::Session::respond(&mut bob, &m, b"").is_ok());
    }
    assert_eq!(started, 3);
}
