//! heap-check: proves that no secret the library created survives in freed
//! heap memory (STYLE.md item 25). See README.md.
//!
//!   cargo run --release --locked                 # exit 0: clean, 1: secrets found
//!   cargo run --release --locked -- --self-test  # exit 0: the scanner can find a leak
//!
//! Exit 2 means the check itself could not run to the end (a script step
//! failed, a saved state did not parse, or the free table overflowed).

mod conversations;
mod heap;
mod rng;
mod scan;
mod script;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::scan::{Hit, Match};
use crate::secrets::{Observer, Secrets};

#[global_allocator]
static ALLOCATOR: heap::Recording = heap::Recording;

/// Detail lines printed per table before eliding.
const MAX_LINES: usize = 200;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => check_main(false),
        Some("--dump") => check_main(true),
        Some("--self-test") => self_test_main(),
        Some(other) => {
            eprintln!(
                "heap-check: unknown argument {other:?} (--self-test, or --dump to hex-dump blocks with findings)"
            );
            ExitCode::from(2)
        }
    }
}

fn check_main(dump: bool) -> ExitCode {
    let mut obs = Observer::new();
    let mut rng = rng::Recorder::new(0x42);
    let mut storage_key = [0u8; 32];
    ChaCha20Rng::from_seed([0x5e; 32]).fill_bytes(&mut storage_key);

    heap::set_recording(true);
    let result = script::run(&mut obs, &mut rng, &storage_key)
        .and_then(|()| conversations::run(&mut obs, &mut rng, &storage_key));
    heap::set_recording(false);
    heap::set_step(0);

    if let Err(e) = result {
        eprintln!("heap-check: the script failed at step {:?}: {e}", obs.steps.last());
        return ExitCode::from(2);
    }
    obs.derive(&rng.draws);
    rng.wipe();
    // SAFETY: a 32-byte array is valid for 32 byte writes.
    unsafe { heap::wipe_raw(storage_key.as_mut_ptr(), 32) };

    let blocks = heap::blocks();
    let hits = scan::scan(&obs.secrets.list, &blocks);
    let found = report(&obs, &blocks, &hits);
    if dump {
        dump_blocks(&obs, &blocks, &hits);
    }
    let mut failed_to_run = false;
    let errors = obs.parse_errors();
    for e in errors.iter().take(5) {
        eprintln!("heap-check: could not parse the {e} (SPEC.md §11 layout changed? see secrets.rs)");
    }
    if errors.len() > 5 {
        eprintln!("heap-check: ... and {} more saved states", errors.len() - 5);
    }
    failed_to_run |= !errors.is_empty();
    if heap::overflowed() > 0 {
        eprintln!("heap-check: {} frees did not fit the table (raise heap::CAPACITY)", heap::overflowed());
        failed_to_run = true;
    }
    let bytes: usize = blocks.iter().map(|b| b.size).sum();
    println!("heap-check: {found} secrets found in {bytes} freed bytes");
    obs.secrets.wipe();
    if failed_to_run {
        ExitCode::from(2)
    } else if found > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the report; returns the number of distinct secrets found, whole
/// or in part (16 or more of their 32 bytes: chance cannot do that).
fn report(obs: &Observer, blocks: &[heap::Block], hits: &[Hit]) -> usize {
    let secrets = &obs.secrets;
    let bytes: usize = blocks.iter().map(|b| b.size).sum();
    println!(
        "heap-check: {} script steps, {} freed blocks recorded, {bytes} bytes scanned",
        obs.steps.len() - 1,
        blocks.len()
    );
    println!("heap-check: {} distinct secrets collected:", secrets.list.len());
    for (kind, n) in secrets.kinds() {
        println!("    {n:6}  {kind}");
    }
    let step = |n: u32| obs.steps.get(n as usize).map(String::as_str).unwrap_or("?");

    let full: Vec<&Hit> = hits.iter().filter(|h| h.what == Match::Full).collect();
    let whole: BTreeSet<usize> = full.iter().map(|h| h.secret).collect();
    let found: BTreeSet<usize> = hits.iter().map(|h| h.secret).collect();

    // (freed during step, kind, block size) -> (copies, distinct secrets)
    let mut table: BTreeMap<(u32, &str, usize), (usize, BTreeSet<usize>)> = BTreeMap::new();
    for h in &full {
        let b = blocks[h.block];
        let e = table.entry((b.step, secrets.list[h.secret].kind, b.size)).or_default();
        e.0 += 1;
        e.1.insert(h.secret);
    }
    if !table.is_empty() {
        println!();
        println!("Whole 32-byte copies in freed blocks, by the step that freed the block:");
        println!("  copies distinct  block size  kind  <-  freed during step");
        for (i, ((st, kind, size), (copies, distinct))) in table.iter().enumerate() {
            if i == MAX_LINES {
                println!("  ... {} more lines", table.len() - MAX_LINES);
                break;
            }
            println!("  {copies:6} {:8} {size:11}  {kind}  <-  #{st} {}", distinct.len(), step(*st));
        }
    }
    if !found.is_empty() {
        println!();
        println!(
            "Each secret found: kind (first seen after step) -> copies as block size @ offset (freed during step):"
        );
        let mut per_secret: BTreeMap<usize, Vec<&Hit>> = BTreeMap::new();
        for h in hits {
            per_secret.entry(h.secret).or_default().push(h);
        }
        for (i, (s, hs)) in per_secret.iter().enumerate() {
            if i == MAX_LINES {
                println!("  ... {} more secrets", per_secret.len() - MAX_LINES);
                break;
            }
            let sec = &secrets.list[*s];
            let copies: Vec<String> = hs
                .iter()
                .map(|h| {
                    let b = blocks[h.block];
                    let part =
                        if h.len == 32 { String::new() } else { format!(" [{} of 32 bytes, {:?}]", h.len, h.what) };
                    format!("{} B @ {}{part} (#{})", b.size, h.offset, b.step)
                })
                .collect();
            println!("  {} (#{} {}) -> {}", sec.kind, sec.step, step(sec.step), copies.join(", "));
        }
        println!();
        println!("Per kind (distinct secrets found / collected; where the first copy of each was created):");
        let mut per_kind: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        for &s in &found {
            per_kind.entry(secrets.list[s].kind).or_default().insert(s);
        }
        let kinds = secrets.kinds();
        for (kind, set) in &per_kind {
            let mut created: BTreeMap<u32, usize> = BTreeMap::new();
            for &s in set {
                *created.entry(secrets.list[s].step).or_default() += 1;
            }
            let first: Vec<String> =
                created.iter().take(3).map(|(st, n)| format!("{n} after #{st} {}", step(*st))).collect();
            let more = if created.len() > 3 { ", ..." } else { "" };
            println!(
                "  {:5} / {:<5} {kind}  ({}{more})",
                set.len(),
                kinds.get(kind).copied().unwrap_or(0),
                first.join("; ")
            );
        }
    }

    let partial: Vec<&Hit> = hits.iter().filter(|h| h.what != Match::Full).collect();
    if !partial.is_empty() {
        // (freed during step, kind, block size) -> (copies, most bytes matched)
        let mut ptable: BTreeMap<(u32, &str, usize), (usize, usize)> = BTreeMap::new();
        for h in &partial {
            let b = blocks[h.block];
            let e = ptable.entry((b.step, secrets.list[h.secret].kind, b.size)).or_default();
            e.0 += 1;
            e.1 = e.1.max(h.len);
        }
        println!();
        println!("Partial copies (16 to 31 of the 32 bytes: the rest overwritten or past the block's end):");
        println!("  copies  bytes  block size  kind  <-  freed during step");
        for (i, ((st, kind, size), (n, len))) in ptable.iter().enumerate() {
            if i == MAX_LINES {
                println!("  ... {} more lines", ptable.len() - MAX_LINES);
                break;
            }
            println!("  {n:6} {len:6} {size:11}  {kind}  <-  #{st} {}", step(*st));
        }
    }
    println!();
    println!(
        "heap-check: {} secrets found whole, {} more only in part (16+ bytes)",
        whole.len(),
        found.len() - whole.len()
    );
    found.len()
}

/// Hex dump of every block with a finding, each match marked.
fn dump_blocks(obs: &Observer, blocks: &[heap::Block], hits: &[Hit]) {
    let mut by_block: BTreeMap<usize, Vec<&Hit>> = BTreeMap::new();
    for h in hits {
        by_block.entry(h.block).or_default().push(h);
    }
    for (bi, hs) in by_block {
        let b = blocks[bi];
        let label = obs.steps.get(b.step as usize).map(String::as_str).unwrap_or("?");
        println!("block {bi}: {} bytes, freed during #{} {label}", b.size, b.step);
        for h in &hs {
            println!("    @{:<5} {:?} {}", h.offset, h.what, obs.secrets.list[h.secret].kind);
        }
        // SAFETY: recorded blocks are never freed nor written again.
        let bytes = unsafe { b.bytes() };
        for (row, chunk) in bytes.chunks(32).enumerate() {
            let hex: String = chunk.iter().map(|x| format!("{x:02x}")).collect();
            println!("    {:5}  {hex}", row * 32);
        }
    }
}

/// Frees known secrets with recording on: one unwiped, one left behind by
/// a reallocation, one wiped first. The scanner must find the first two
/// and not the third.
fn self_test_main() -> ExitCode {
    let mut secrets = heap::paused(Secrets::default);
    let mut g = ChaCha20Rng::from_seed([0x99; 32]);
    let mut draw = || {
        let mut b = [0u8; 32];
        g.fill_bytes(&mut b);
        b
    };
    let (unwiped, moved, wiped) = (draw(), draw(), draw());
    heap::paused(|| {
        secrets.add(unwiped, "self-test: freed unwiped", 0);
        secrets.add(moved, "self-test: left behind by realloc", 0);
        secrets.add(wiped, "self-test: wiped before free", 0);
    });

    heap::set_recording(true);
    let v = std::hint::black_box(unwiped.to_vec());
    drop(std::hint::black_box(v));
    let mut v: Vec<u8> = Vec::with_capacity(32);
    v.extend_from_slice(&moved);
    std::hint::black_box(&mut v);
    v.extend_from_slice(&[0u8; 4096]); // moves to a new block; the old one keeps `moved`
    heap::wipe_vec(std::hint::black_box(v));
    let v = std::hint::black_box(wiped.to_vec());
    heap::wipe_vec(v);
    heap::set_recording(false);

    let blocks = heap::blocks();
    let hits = scan::scan(&secrets.list, &blocks);
    let found = |k: usize| hits.iter().any(|h| h.secret == k && h.what == Match::Full);
    let bytes: usize = blocks.iter().map(|b| b.size).sum();
    let n = (0..3).filter(|&k| found(k)).count();
    for (k, s) in secrets.list.iter().enumerate() {
        println!("heap-check --self-test: {:<36} {}", s.kind, if found(k) { "found" } else { "not found" });
    }
    println!("heap-check: {n} secrets found in {bytes} freed bytes");
    secrets.wipe();
    if found(0) && found(1) && !found(2) {
        println!("heap-check --self-test: ok (the check finds freed secrets, and only unwiped ones)");
        ExitCode::SUCCESS
    } else {
        println!("heap-check --self-test: FAILED (expected the first two found and the third not)");
        ExitCode::from(1)
    }
}
