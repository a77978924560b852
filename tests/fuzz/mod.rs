//! The corpus generator of the seeded mutation suite (`tests/fuzz_inputs.rs`): a small
//! deterministic PRNG, the seeds under `tests/fuzz/seeds/`, the mutators, and a process monitor
//! (exit status, signal, wall time, peak resident memory) for the binary's runs.
//!
//! Everything here is deterministic for a given seed: the same seed and scale give byte-identical
//! corpora on every machine. Nothing it generates is committed; see `tests/fuzz/README.md`.

#![allow(dead_code)] // each test uses a subset

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Seed, scale, PRNG

/// The default seed ("batchsco" in ASCII). `BATCHSCORE_FUZZ_SEED` (decimal or 0x-hex) overrides
/// it for exploration; CI uses this one.
pub const DEFAULT_SEED: u64 = 0x6261_7463_6873_636f;

/// The suite's seed.
pub fn seed() -> u64 {
    match std::env::var("BATCHSCORE_FUZZ_SEED") {
        Ok(s) if !s.trim().is_empty() => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("BATCHSCORE_FUZZ_SEED={s:?}: {e}"))
        }
        _ => DEFAULT_SEED,
    }
}

/// The case-count multiplier, `BATCHSCORE_FUZZ_SCALE` (default 1; `10` for a long local run).
pub fn scale() -> f64 {
    match std::env::var("BATCHSCORE_FUZZ_SCALE") {
        Ok(s) if !s.trim().is_empty() => {
            let v: f64 = s.trim().parse().unwrap_or_else(|e| panic!("BATCHSCORE_FUZZ_SCALE={s:?}: {e}"));
            assert!(v > 0.0 && v.is_finite(), "BATCHSCORE_FUZZ_SCALE must be a positive number, got {s:?}");
            v
        }
        _ => 1.0,
    }
}

/// `n` times the scale, at least 1.
pub fn scaled(n: usize) -> usize {
    ((n as f64 * scale()).round() as usize).max(1)
}

/// splitmix64: tiny, fast, and good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    /// Offsets uniform over the file instead of biased towards its start and end.
    pub uniform_offsets: bool,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed, uniform_offsets: false }
    }

    /// An independent stream for one part of the suite: `seed` mixed with a label (FNV-1a), so
    /// that adding cases to one kind does not change the corpus of another.
    pub fn derive(seed: u64, label: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut r = Rng::new(seed ^ h);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo { lo } else { lo + self.below(hi - lo + 1) }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// One committed seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    /// File name, e.g. `pandas-gzip.csv.gz`.
    pub name: String,
    /// Everything after the first dot: `csv.gz`, `png`, `onnx`.
    pub ext: String,
    pub bytes: Vec<u8>,
}

/// `tests/fuzz/seeds`.
pub fn seeds_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds")
}

/// The seeds of one folder of `tests/fuzz/seeds/`, sorted by name.
pub fn seeds(folder: &str) -> Vec<Seed> {
    let dir = seeds_root().join(folder);
    let mut v: Vec<Seed> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("a seed entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let ext = name.split_once('.').map(|(_, e)| e.to_string()).unwrap_or_default();
            Seed { bytes: std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())), name, ext }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

// ---------------------------------------------------------------------------------------------
// Formats and mutation

/// What a seed holds: picks the mutators that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Yaml,
    /// A compressed text file (the codec comes from the seed's extension).
    Compressed,
    Parquet,
    Image,
    Onnx,
}

/// One generated case: its bytes, the seed it started from and the mutators applied, in order.
#[derive(Debug, Clone)]
pub struct Mutant {
    pub bytes: Vec<u8>,
    pub seed: usize,
    pub steps: Vec<String>,
}

impl Mutant {
    pub fn describe(&self, seeds: &[Seed]) -> String {
        format!("seed {} via {}", seeds[self.seed].name, self.steps.join(" + "))
    }
}

/// How many "big" mutations (huge header, long line: each MBs of disk and parse time) a corpus
/// may still use.
#[derive(Debug, Clone)]
pub struct Budget {
    pub big: usize,
}

/// Makes one case from `seeds` (all of `format`): 1-3 mutators.
pub fn mutate(rng: &mut Rng, seeds: &[Seed], format: Format, budget: &mut Budget) -> Mutant {
    let seed = rng.below(seeds.len());
    let mut steps = Vec::new();
    let bytes = match format {
        Format::Compressed if rng.chance(1, 2) => {
            // Mutate the text inside, then compress it again: reaches the CSV reader.
            let codec = seeds[seed].ext.rsplit('.').next().unwrap_or_default().to_string();
            let plain_seeds: Vec<Seed> = seeds
                .iter()
                .map(|s| Seed { bytes: decompress(s.ext.rsplit('.').next().unwrap(), &s.bytes), ..s.clone() })
                .collect();
            let plain = plain_seeds[seed].bytes.clone();
            let text = apply_steps(rng, plain, seed, &plain_seeds, Format::Csv, budget, &mut steps);
            steps.push(format!("recompress-{codec}"));
            compress(&codec, &text)
        }
        _ => apply_steps(rng, seeds[seed].bytes.clone(), seed, seeds, format, budget, &mut steps),
    };
    Mutant { bytes, seed, steps }
}

fn apply_steps(
    rng: &mut Rng,
    mut b: Vec<u8>,
    seed: usize,
    seeds: &[Seed],
    format: Format,
    budget: &mut Budget,
    steps: &mut Vec<String>,
) -> Vec<u8> {
    let n = rng.range(1, 3);
    // Parquet: keep the footer framing intact for some cases so that the metadata parser, or
    // the page decoders, see mutated bytes instead of stopping at "no footer".
    if format == Format::Parquet && rng.chance(2, 3) {
        return parquet_region(rng, b, n, seeds, seed, steps);
    }
    for _ in 0..n {
        b = one_step(rng, b, seed, seeds, format, budget, steps);
    }
    if format == Format::Image && seeds[seed].ext == "png" && rng.chance(2, 3) {
        png_fix_crcs(&mut b);
        steps.push("png-fix-crc".into());
    }
    b
}

/// Mutates the Parquet footer (thrift metadata) or the body (pages) alone, then writes a
/// consistent footer length and magic.
fn parquet_region(
    rng: &mut Rng,
    b: Vec<u8>,
    n: usize,
    seeds: &[Seed],
    seed: usize,
    steps: &mut Vec<String>,
) -> Vec<u8> {
    let len = b.len();
    if len < 12 || &b[len - 4..] != b"PAR1" {
        return b;
    }
    let flen = u32::from_le_bytes(b[len - 8..len - 4].try_into().unwrap()) as usize;
    if flen + 12 > len {
        return b;
    }
    let (body, footer) = (b[..len - 8 - flen].to_vec(), b[len - 8 - flen..len - 8].to_vec());
    let mut budget = Budget { big: 0 };
    let (body, footer) = if rng.chance(1, 2) {
        steps.push("parquet-footer".into());
        let mut f = footer;
        for _ in 0..n {
            f = one_step(rng, f, seed, seeds, Format::Onnx, &mut budget, steps);
        }
        (body, f)
    } else {
        steps.push("parquet-body".into());
        let mut bd = body;
        let keep = bd.len();
        for _ in 0..n {
            // In place only, so that the footer's offsets still point at the pages.
            match rng.below(3) {
                0 => flip(rng, &mut bd, steps),
                1 => overwrite(rng, &mut bd, steps),
                _ => huge_len(rng, &mut bd, steps),
            }
        }
        bd.truncate(keep);
        (bd, footer)
    };
    let mut out = body;
    out.extend_from_slice(&footer);
    out.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    out.extend_from_slice(b"PAR1");
    out
}

/// One mutator chosen for `format`.
fn one_step(
    rng: &mut Rng,
    mut b: Vec<u8>,
    seed: usize,
    seeds: &[Seed],
    format: Format,
    budget: &mut Budget,
    steps: &mut Vec<String>,
) -> Vec<u8> {
    let text = matches!(format, Format::Csv | Format::Jsonl | Format::Yaml);
    let image = format == Format::Image;
    // Generic byte mutators: 0-7; text: 8-18; format specific: 19+.
    let choice = loop {
        let c = if text && rng.chance(2, 3) {
            8 + rng.below(11)
        } else if image && rng.chance(1, 4) {
            19
        } else if format == Format::Jsonl && rng.chance(1, 6) {
            20 + rng.below(3)
        } else if format == Format::Yaml && rng.chance(1, 2) {
            23 + rng.below(7)
        } else if format == Format::Onnx && rng.chance(2, 3) {
            // Models: mostly in place, so that more of them still parse and reach ONNX
            // Runtime's checks of shapes, types and attributes.
            *rng.pick(&[1, 1, 2, 3, 3])
        } else {
            rng.below(8)
        };
        // The billion laughs costs a few hundred ms a case (debug build): a third as often.
        if c == 23 && rng.chance(2, 3) {
            continue;
        }
        let big = c == 8 || c == 9;
        if big && budget.big == 0 {
            continue;
        }
        if big {
            budget.big -= 1;
        }
        break c;
    };
    match choice {
        0 => truncate(rng, &mut b, steps),
        1 => flip(rng, &mut b, steps),
        2 => overwrite(rng, &mut b, steps),
        3 => huge_len(rng, &mut b, steps),
        4 => insert_chunk(rng, &mut b, steps),
        5 => delete_chunk(rng, &mut b, steps),
        6 => duplicate_chunk(rng, &mut b, steps),
        7 => b = splice(rng, &b, seed, seeds, steps),
        8 => b = huge_header(rng, &b, format, steps),
        9 => b = long_line(rng, &b, format, steps),
        10 => quotes(rng, &mut b, steps),
        11 => nul_bytes(rng, &mut b, steps),
        12 => bad_utf8(rng, &mut b, steps),
        13 => b = line_ends(rng, &b, steps),
        14 => bom(rng, &mut b, steps),
        15 => b = numbers(rng, &b, steps),
        16 => b = duplicate_lines(rng, &b, steps),
        17 => b = ragged(rng, &b, format, steps),
        18 => b = blank_lines(rng, &b, steps),
        19 => huge_dims(rng, &mut b, &seeds[seed].ext, steps),
        20 | 24 => b = deep_nesting(rng, &b, format, steps),
        21 | 26 => b = wrong_types(rng, &b, format, steps),
        22 | 27 => b = duplicate_keys(rng, &b, format, steps),
        23 => b = billion_laughs(rng, &b, steps),
        25 => b = yaml_tags(rng, &b, steps),
        28 => b = yaml_documents(rng, &b, steps),
        29 => b = yaml_anchors(rng, &b, steps),
        _ => unreachable!(),
    }
    b
}

/// An offset in `0..=len`: anywhere, near the start (headers, magic numbers) or near the end
/// (footers, trailers) with about equal weight.
fn offset(rng: &mut Rng, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    if rng.uniform_offsets {
        return rng.below(len + 1);
    }
    match rng.below(10) {
        0..=3 => rng.below(len + 1),
        4..=6 => rng.below(len.min(64) + 1),
        _ => len - rng.below(len.min(512) + 1),
    }
}

/// A chunk length: mostly short, sometimes up to half the file.
fn chunk_len(rng: &mut Rng, len: usize) -> usize {
    match rng.below(4) {
        0 => rng.range(1, 8),
        1 => rng.range(1, 64),
        2 => rng.range(1, 1024),
        _ => rng.range(1, (len / 2).max(1)),
    }
}

fn truncate(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let at = offset(rng, b.len());
    b.truncate(at);
    steps.push(format!("truncate@{at}"));
}

fn flip(rng: &mut Rng, b: &mut [u8], steps: &mut Vec<String>) {
    if b.is_empty() {
        steps.push("flip(empty)".into());
        return;
    }
    let n = rng.range(1, 8);
    for _ in 0..n {
        let at = offset(rng, b.len() - 1);
        b[at] ^= 1 << rng.below(8);
    }
    steps.push(format!("flip{n}"));
}

fn overwrite(rng: &mut Rng, b: &mut [u8], steps: &mut Vec<String>) {
    if b.is_empty() {
        steps.push("overwrite(empty)".into());
        return;
    }
    let n = rng.range(1, 16);
    let run = rng.chance(1, 2);
    let start = offset(rng, b.len() - 1);
    for i in 0..n {
        let at = if run { (start + i).min(b.len() - 1) } else { offset(rng, b.len() - 1) };
        b[at] = if rng.chance(1, 2) {
            *rng.pick(&[0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, b'\n', b',', b'"', 0x0d])
        } else {
            rng.byte()
        };
    }
    steps.push(format!("overwrite{n}"));
}

/// Overwrites a 2/4/8-byte window with a huge or boundary length, little or big endian.
fn huge_len(rng: &mut Rng, b: &mut [u8], steps: &mut Vec<String>) {
    let w = *rng.pick(&[2usize, 4, 4, 8]);
    if b.len() < w {
        steps.push("huge-len(short)".into());
        return;
    }
    let v: u64 = *rng.pick(&[
        u64::MAX,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        0xffff,
        0x7fff,
        0x8000,
        0,
        0x0100_0000,
    ]);
    let at = offset(rng, b.len() - w);
    let bytes = v.to_le_bytes();
    let big_endian = rng.chance(1, 2);
    for i in 0..w {
        b[at + i] = if big_endian { bytes[w - 1 - i] } else { bytes[i] };
    }
    steps.push(format!("huge-len{w}@{at}={v:#x}{}", if big_endian { "be" } else { "le" }));
}

fn insert_chunk(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let at = offset(rng, b.len());
    let n = chunk_len(rng, b.len()).min(4096);
    let chunk: Vec<u8> = if rng.chance(1, 2) || b.is_empty() {
        (0..n).map(|_| rng.byte()).collect()
    } else {
        let from = rng.below(b.len());
        b[from..(from + n).min(b.len())].to_vec()
    };
    b.splice(at..at, chunk);
    steps.push(format!("insert{n}@{at}"));
}

fn delete_chunk(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let at = offset(rng, b.len());
    let n = chunk_len(rng, b.len()).min(b.len() - at);
    b.drain(at..at + n);
    steps.push(format!("delete{n}@{at}"));
}

fn duplicate_chunk(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    if b.is_empty() {
        steps.push("duplicate(empty)".into());
        return;
    }
    let from = rng.below(b.len());
    let n = chunk_len(rng, b.len()).min(b.len() - from);
    let times = *rng.pick(&[1usize, 1, 2, 8, 64]);
    let chunk = b[from..from + n].to_vec();
    let at = offset(rng, b.len());
    let rep: Vec<u8> = chunk.iter().copied().cycle().take((n * times).min(1 << 20)).collect();
    b.splice(at..at, rep);
    steps.push(format!("duplicate{n}x{times}@{at}"));
}

/// The head of this seed and the tail of another one (or itself) of the same kind.
fn splice(rng: &mut Rng, b: &[u8], seed: usize, seeds: &[Seed], steps: &mut Vec<String>) -> Vec<u8> {
    let other = rng.below(seeds.len());
    let o = &seeds[other].bytes;
    let (i, j) = (offset(rng, b.len()), offset(rng, o.len()));
    let mut out = b[..i].to_vec();
    out.extend_from_slice(&o[j..]);
    steps.push(format!("splice({}@{i}+{}@{j})", seeds[seed].name, seeds[other].name));
    out
}

fn lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect()
}

fn join_lines(ls: &[Vec<u8>]) -> Vec<u8> {
    ls.join(&b'\n')
}

/// 5,000-30,000 extra columns (CSV header, JSON keys, YAML keys), and with some luck as many
/// values in every row.
fn huge_header(rng: &mut Rng, b: &[u8], format: Format, steps: &mut Vec<String>) -> Vec<u8> {
    let n = *rng.pick(&[20_000usize, 20_000, 5_000, 30_000]);
    let widen_rows = rng.chance(1, 2);
    let mut ls = lines(b);
    match format {
        Format::Jsonl => {
            for (i, l) in ls.iter_mut().enumerate() {
                if (i == 0 || widen_rows) && l.first() == Some(&b'{') {
                    let extra: String = (0..n).map(|k| format!("\"x{k}\":{k},")).collect();
                    l.splice(1..1, extra.into_bytes());
                }
                if i > 40 {
                    break;
                }
            }
        }
        Format::Yaml => {
            let extra: String = (0..n).map(|k| format!("  x{k}: {k}\n")).collect();
            ls.push(format!("settings_extra:\n{extra}").into_bytes());
        }
        _ => {
            let names: String = (0..n).map(|k| format!(",x{k}")).collect();
            let values: String = (0..n).map(|k| format!(",{}", k % 10)).collect();
            for (i, l) in ls.iter_mut().enumerate() {
                if l.is_empty() {
                    continue;
                }
                if i == 0 {
                    l.extend_from_slice(names.as_bytes());
                } else if widen_rows && i <= 40 {
                    l.extend_from_slice(values.as_bytes());
                }
            }
        }
    }
    steps.push(format!("huge-header{n}{}", if widen_rows { "+rows" } else { "" }));
    join_lines(&ls)
}

/// One field of 1-3 MB on one line.
fn long_line(rng: &mut Rng, b: &[u8], format: Format, steps: &mut Vec<String>) -> Vec<u8> {
    let len = rng.range(1 << 20, 3 << 20);
    let style = rng.below(4);
    let field: Vec<u8> = match style {
        0 => vec![b'9'; len],
        1 => vec![b'a'; len],
        2 => {
            let mut f = b"1.".to_vec();
            f.resize(len, b'0');
            f
        }
        _ => {
            let mut f = vec![b'"'];
            f.extend(b"x,\n".iter().copied().cycle().take(len));
            f.push(b'"');
            f
        }
    };
    let mut ls = lines(b);
    let row = if ls.len() > 1 { rng.range(1, ls.len() - 1) } else { 0 };
    if ls.is_empty() {
        ls.push(Vec::new());
    }
    let l = &mut ls[row];
    match format {
        Format::Jsonl | Format::Yaml => {
            // A string (or bare scalar) value.
            let at = l.iter().position(|&c| c == b':').map_or(l.len(), |p| p + 1);
            let mut v = if format == Format::Jsonl { b"\"".to_vec() } else { b" ".to_vec() };
            v.extend(field.iter().filter(|&&c| c != b'"' && c != b'\n'));
            if format == Format::Jsonl {
                v.extend_from_slice(b"\",");
            }
            l.splice(at..at, v);
        }
        _ => {
            let commas: Vec<usize> = l.iter().enumerate().filter(|(_, c)| **c == b',').map(|(i, _)| i + 1).collect();
            let at = if commas.is_empty() { 0 } else { *rng.pick(&commas) };
            let end = l[at..].iter().position(|&c| c == b',').map_or(l.len(), |p| at + p);
            l.splice(at..end, field);
        }
    }
    steps.push(format!("long-line{len}/style{style}@line{row}"));
    join_lines(&ls)
}

fn quotes(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let n = rng.range(1, 3);
    for _ in 0..n {
        let at = offset(rng, b.len());
        b.insert(at, if rng.chance(1, 4) { b'\'' } else { b'"' });
    }
    steps.push(format!("quote{n}"));
}

fn nul_bytes(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let n = rng.range(1, 8);
    for _ in 0..n {
        let at = offset(rng, b.len());
        if rng.chance(1, 2) && at < b.len() {
            b[at] = 0;
        } else {
            b.insert(at, 0);
        }
    }
    steps.push(format!("nul{n}"));
}

fn bad_utf8(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let seqs: &[&[u8]] = &[
        &[0xff],
        &[0xfe, 0xff],
        &[0xc3],
        &[0xe2, 0x82],
        &[0xed, 0xa0, 0x80],
        &[0xf4, 0x90, 0x80, 0x80],
        &[0xc0, 0xaf],
        &[0x80],
        &[0xf0, 0x9f, 0x98],
    ];
    let k = rng.below(seqs.len());
    let at = offset(rng, b.len());
    b.splice(at..at, seqs[k].iter().copied());
    steps.push(format!("bad-utf8-{k}@{at}"));
}

fn line_ends(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let mode = rng.below(4);
    let mut out = Vec::with_capacity(b.len() * 2);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            match mode {
                0 => out.extend_from_slice(b"\r\n"),
                1 => out.push(b'\r'),
                2 => out.extend_from_slice(if i % 3 == 0 {
                    b"\r"
                } else if i % 3 == 1 {
                    b"\r\n"
                } else {
                    b"\n"
                }),
                _ => out.extend_from_slice(b"\n\r"),
            }
        } else {
            out.push(c);
        }
    }
    if mode == 0 && rng.chance(1, 2) {
        // No final line end.
        while out.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            out.pop();
        }
    }
    steps.push(format!("line-ends{mode}"));
    out
}

fn bom(rng: &mut Rng, b: &mut Vec<u8>, steps: &mut Vec<String>) {
    let boms: &[&[u8]] = &[&[0xef, 0xbb, 0xbf], &[0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf], &[0xff, 0xfe], &[0xfe, 0xff]];
    let k = rng.below(boms.len());
    let at = if rng.chance(3, 4) { 0 } else { offset(rng, b.len()) };
    b.splice(at..at, boms[k].iter().copied());
    steps.push(format!("bom{k}@{at}"));
}

/// Replaces a few numbers with edge cases.
fn numbers(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    const TOKENS: &[&str] = &[
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "1e999",
        "-1e999",
        "1e-400",
        "-0",
        "",
        "0x10",
        "1,5",
        " 5.1 ",
        "5.1.2",
        "+",
        "-",
        ".",
        "e5",
        "99999999999999999999999999999999",
        "1_000",
        "٣",
        "5.1\u{0}",
        "340282366920938463463374607431768211457",
        "-9223372036854775809",
        "null",
        "true",
        "\"5.1\"",
    ];
    let runs: Vec<(usize, usize)> = {
        let mut v = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let s = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                v.push((s, i));
            } else {
                i += 1;
            }
        }
        v
    };
    if runs.is_empty() {
        steps.push("numbers(none)".into());
        return b.to_vec();
    }
    let n = rng.range(1, 4);
    let mut chosen: Vec<(usize, usize, &str)> =
        (0..n).map(|_| (*rng.pick(&runs), *rng.pick(TOKENS))).map(|((s, e), t)| (s, e, t)).collect();
    chosen.sort_by_key(|c| std::cmp::Reverse(c.0));
    chosen.dedup_by_key(|c| c.0);
    let mut out = b.to_vec();
    for (s, e, t) in &chosen {
        out.splice(*s..*e, t.bytes());
    }
    steps.push(format!("numbers{}", chosen.len()));
    out
}

/// A line repeated up to 2,000 times.
fn duplicate_lines(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let mut ls = lines(b);
    let i = rng.below(ls.len());
    let times = *rng.pick(&[2usize, 10, 500, 2000]);
    let l = ls[i].clone();
    ls.splice(i..i, std::iter::repeat_n(l, times));
    steps.push(format!("dup-line{i}x{times}"));
    join_lines(&ls)
}

/// A field more or less on some lines (CSV), or a member removed (JSON).
fn ragged(rng: &mut Rng, b: &[u8], format: Format, steps: &mut Vec<String>) -> Vec<u8> {
    let mut ls = lines(b);
    let n = rng.range(1, 3);
    for _ in 0..n {
        let i = rng.below(ls.len());
        let l = &mut ls[i];
        let sep = if format == Format::Yaml { b':' } else { b',' };
        let at: Vec<usize> = l.iter().enumerate().filter(|(_, c)| **c == sep).map(|(i, _)| i).collect();
        if at.is_empty() || rng.chance(1, 2) {
            l.push(sep);
        } else {
            l.remove(*rng.pick(&at));
        }
    }
    steps.push(format!("ragged{n}"));
    join_lines(&ls)
}

fn blank_lines(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let mut ls = lines(b);
    let i = rng.below(ls.len() + 1);
    let options: [&[u8]; 6] = [b"", b" ", b"\t", b",,,,", b"#comment", b"\r"];
    let what: &[u8] = rng.pick::<&[u8]>(&options);
    let times = rng.range(1, 5);
    ls.splice(i..i, std::iter::repeat_n(what.to_vec(), times));
    steps.push(format!("blank-lines{i}x{times}"));
    join_lines(&ls)
}

/// Writes a huge or zero width/height into the image header where the format keeps it.
fn huge_dims(rng: &mut Rng, b: &mut Vec<u8>, ext: &str, steps: &mut Vec<String>) {
    let v: u32 = *rng.pick(&[0, 1, 0x7fff, 0xffff, 16_384, 46_341, 100_000, 0x7fff_ffff, 0xffff_ffff]);
    let which = rng.below(3); // width, height, both
    let put = |at: usize, width: usize, be: bool, b: &mut Vec<u8>| {
        if at + width > b.len() {
            return;
        }
        let bytes = if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let src = if be { &bytes[4 - width..] } else { &bytes[..width] };
        b[at..at + width].copy_from_slice(src);
    };
    let mut fields: Vec<(usize, usize, bool)> = Vec::new(); // (offset, width, big endian) for w, h
    match ext {
        "png" => fields = vec![(16, 4, true), (20, 4, true)],
        "bmp" => fields = vec![(18, 4, false), (22, 4, false)],
        "gif" => {
            fields = vec![(6, 2, false), (8, 2, false)];
            // The first image descriptor too.
            if let Some(p) = b.iter().position(|&c| c == 0x2c) {
                fields.push((p + 5, 2, false));
                fields.push((p + 7, 2, false));
            }
        }
        "tga" => fields = vec![(12, 2, false), (14, 2, false)],
        "qoi" => fields = vec![(4, 4, true), (8, 4, true)],
        "jpg" | "jfif" => {
            if let Some(p) = b.windows(2).position(|w| w[0] == 0xff && matches!(w[1], 0xc0..=0xc2)) {
                fields = vec![(p + 7, 2, true), (p + 5, 2, true)];
            }
        }
        "ico" => fields = vec![(6, 1, false), (7, 1, false)],
        "webp" => {
            if b.len() > 30 && &b[12..16] == b"VP8X" {
                fields = vec![(24, 3, false), (27, 3, false)];
            } else if b.len() > 30 && &b[12..16] == b"VP8 " {
                fields = vec![(26, 2, false), (28, 2, false)];
            }
        }
        "ppm" | "pgm" | "pbm" => {
            // Text header: "P6\n<w> <h>\n<max>\n".
            let s = format!("{v} ");
            if let Some(p) = b.iter().skip(2).position(|c| c.is_ascii_digit()) {
                let p = p + 2;
                let end = b[p..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |e| p + e);
                b.splice(p..end, s.trim_end().bytes());
            }
            steps.push(format!("huge-dims-pnm={v}"));
            return;
        }
        "tif" => {
            // Find the ImageWidth (0x100) / ImageLength (0x101) entries of the first IFD.
            let le = b.starts_with(b"II");
            let rd16 = |b: &[u8], at: usize| {
                let x = [b[at], b[at + 1]];
                if le { u16::from_le_bytes(x) } else { u16::from_be_bytes(x) }
            };
            if b.len() > 8 {
                let x = [b[4], b[5], b[6], b[7]];
                let ifd = if le { u32::from_le_bytes(x) } else { u32::from_be_bytes(x) } as usize;
                if ifd + 2 <= b.len() {
                    let count = rd16(b, ifd) as usize;
                    for e in 0..count {
                        let at = ifd + 2 + 12 * e;
                        if at + 12 > b.len() {
                            break;
                        }
                        let tag = rd16(b, at);
                        let typ = rd16(b, at + 2);
                        if tag == 0x100 || tag == 0x101 {
                            // Make it a LONG so that the whole value fits.
                            let t = 4u16;
                            b[at + 2..at + 4].copy_from_slice(&if le { t.to_le_bytes() } else { t.to_be_bytes() });
                            let _ = typ;
                            fields.push((at + 8, 4, !le));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if fields.is_empty() {
        steps.push(format!("huge-dims-none({ext})"));
        return;
    }
    for (k, (at, w, be)) in fields.iter().enumerate() {
        let is_w = k % 2 == 0;
        if which == 2 || (which == 0) == is_w {
            put(*at, *w, *be, b);
        }
    }
    steps.push(format!("huge-dims{which}={v}"));
}

/// `[` (or `{"a":`, YAML block nesting) repeated 100-100,000 times.
fn deep_nesting(rng: &mut Rng, b: &[u8], format: Format, steps: &mut Vec<String>) -> Vec<u8> {
    // YAML's parser (unsafe-libyaml) takes time quadratic in the depth of flow collections:
    // 10,000 is about a second in a debug build, 100,000 about a minute (a finding kept as
    // tests/fuzz/crashes/yaml-flow-nesting-quadratic-hang.yml), so YAML stays at 10,000.
    let depths: &[usize] =
        if format == Format::Yaml { &[100, 100, 1_000, 1_000, 2_000, 10_000] } else { &[100, 1_000, 10_000, 100_000] };
    let depth = *rng.pick(depths);
    let balanced = rng.chance(1, 2);
    let style = rng.below(if format == Format::Yaml { 4 } else { 3 });
    let (open, close): (&[u8], &[u8]) = match (format, style) {
        (Format::Jsonl, 1) => (b"{\"a\":", b"}"),
        (Format::Yaml, 1) => (b"{a: ", b"}"),
        (Format::Yaml, 2) => (b"- ", b""),
        _ => (b"[", b"]"),
    };
    let mut nest: Vec<u8> = Vec::new();
    if style == 3 {
        // A quote inside a plain scalar first: a scanner that takes it for the start of a
        // quoted string does not count the brackets after it.
        nest.extend_from_slice(b"[x'y, ");
    }
    nest.extend(open.repeat(depth));
    if balanced {
        nest.extend_from_slice(b"1");
        nest.extend(close.repeat(depth));
    }
    let mut ls = lines(b);
    let i = rng.below(ls.len());
    let l = &mut ls[i];
    let at = l.iter().position(|&c| c == b':').map_or(l.len(), |p| p + 1);
    if format == Format::Yaml {
        l.splice(at..at, b" ".iter().copied().chain(nest));
    } else {
        l.splice(at..at, nest);
    }
    steps.push(format!("deep-nesting{depth}/style{style}{}", if balanced { "" } else { "/open" }));
    join_lines(&ls)
}

/// A value replaced by one of another type.
fn wrong_types(rng: &mut Rng, b: &[u8], format: Format, steps: &mut Vec<String>) -> Vec<u8> {
    let values: &[&str] = if format == Format::Jsonl {
        &[
            "\"5.1\"",
            "true",
            "null",
            "[1,2]",
            "{\"a\":1}",
            "1e400",
            "-1e400",
            "\"\"",
            "18446744073709551616",
            "[]",
            "{}",
        ]
    } else {
        &[
            "[1, 2]",
            "{a: 1}",
            "\"text\"",
            "1e999",
            "-1",
            "-9999999999999999999999",
            "99999999999999999999",
            "true",
            "null",
            "~",
            "''",
            ".nan",
            ".inf",
            "0x7fffffff",
            "0o777",
            "1_000",
            "2GB",
            "-5MB",
            "1e3",
            "3.5",
            "!!binary aGVsbG8=",
            "[[[]]]",
            "{settings: {}}",
            "|\n    a\n    b",
            ">-\n    folded",
        ]
    };
    let mut ls = lines(b);
    let candidates: Vec<usize> = (0..ls.len()).filter(|&i| ls[i].contains(&b':')).collect();
    if candidates.is_empty() {
        steps.push("wrong-type(none)".into());
        return b.to_vec();
    }
    let n = rng.range(1, 3);
    for _ in 0..n {
        let i = *rng.pick(&candidates);
        let l = &mut ls[i];
        let colons: Vec<usize> = l.iter().enumerate().filter(|(_, c)| **c == b':').map(|(k, _)| k).collect();
        let c = *rng.pick(&colons) + 1;
        let end = if format == Format::Jsonl {
            l[c..].iter().position(|&x| x == b',' || x == b'}').map_or(l.len(), |p| c + p)
        } else {
            l.len()
        };
        let v = *rng.pick(values);
        let v = if format == Format::Yaml { format!(" {v}") } else { v.to_string() };
        l.splice(c..end, v.into_bytes());
    }
    steps.push(format!("wrong-type{n}"));
    join_lines(&ls)
}

fn duplicate_keys(rng: &mut Rng, b: &[u8], format: Format, steps: &mut Vec<String>) -> Vec<u8> {
    let mut ls = lines(b);
    let candidates: Vec<usize> = (0..ls.len()).filter(|&i| ls[i].contains(&b':')).collect();
    if candidates.is_empty() {
        steps.push("dup-key(none)".into());
        return b.to_vec();
    }
    let i = *rng.pick(&candidates);
    if format == Format::Jsonl {
        // Repeat the first member inside the object.
        let l = &mut ls[i];
        if let Some(end) = l.iter().position(|&c| c == b',')
            && l.first() == Some(&b'{')
        {
            let member = l[1..=end].to_vec();
            l.splice(1..1, member);
        }
    } else {
        let l = ls[i].clone();
        let times = *rng.pick(&[1usize, 1, 100]);
        ls.splice(i + 1..i + 1, std::iter::repeat_n(l, times));
    }
    steps.push(format!("dup-key@{i}"));
    join_lines(&ls)
}

/// The "billion laughs": nested anchors and aliases that expand to 9^depth nodes.
fn billion_laughs(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let depth = rng.range(4, 12);
    let mut s = String::from("lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for d in 1..=depth {
        let p = d - 1;
        s.push_str(&format!(
            "lol{d}: &lol{d} [*lol{p}, *lol{p}, *lol{p}, *lol{p}, *lol{p}, *lol{p}, *lol{p}, *lol{p}, *lol{p}]\n"
        ));
    }
    let whre = rng.below(3);
    let out = match whre {
        0 => {
            let mut o = s.into_bytes();
            o.extend_from_slice(b);
            o
        }
        1 => {
            // As the value of a setting that is read.
            let mut o = b.to_vec();
            o.extend_from_slice(b"\n");
            o.extend_from_slice(s.as_bytes());
            o.extend_from_slice(format!("tags: *lol{depth}\n").as_bytes());
            o
        }
        _ => {
            let mut o = s.into_bytes();
            let text = String::from_utf8_lossy(b).replace("passthrough: [id]", &format!("passthrough: *lol{depth}"));
            o.extend_from_slice(text.as_bytes());
            o
        }
    };
    steps.push(format!("billion-laughs{depth}/{whre}"));
    out
}

fn yaml_tags(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let tags = [
        "!!str",
        "!!int",
        "!!float",
        "!!map",
        "!!seq",
        "!!binary",
        "!custom",
        "!<tag:yaml.org,2002:str>",
        "!!null",
        "!",
    ];
    let t = *rng.pick(&tags);
    let mut ls = lines(b);
    let cands: Vec<usize> = (0..ls.len()).filter(|&i| ls[i].contains(&b':')).collect();
    if let Some(&i) = cands.get(rng.below(cands.len().max(1))) {
        let l = &mut ls[i];
        let c = l.iter().position(|&x| x == b':').unwrap() + 1;
        l.splice(c..c, format!(" {t}").into_bytes());
    }
    steps.push(format!("yaml-tag{t}"));
    join_lines(&ls)
}

fn yaml_documents(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let what = *rng.pick(&["---", "...", "%YAML 1.1\n---", "%TAG ! tag:x,2000:\n---", "--- !!seq\n- a"]);
    let mut ls = lines(b);
    let i = rng.below(ls.len() + 1);
    ls.insert(i, what.as_bytes().to_vec());
    steps.push(format!("yaml-doc{what:?}@{i}"));
    join_lines(&ls)
}

fn yaml_anchors(rng: &mut Rng, b: &[u8], steps: &mut Vec<String>) -> Vec<u8> {
    let text = String::from_utf8_lossy(b).into_owned();
    let k = rng.below(5);
    let out = match k {
        0 => text.replacen("settings:", "settings: &s", 1) + "\nbatchscore_copy: *s\n",
        1 => text.replacen("mini_batch_size: 2", "mini_batch_size: *nope", 1),
        2 => text.replacen("settings:", "settings: &s", 1).replacen("resources:", "resources:\n  <<: *s", 1),
        3 => text.replacen("settings:", "settings:\n  <<: {max_retries: 1, <<: [{timeout: 2}]}", 1),
        _ => text.replacen("retry_settings:", "retry_settings: &r\n    self: *r", 1),
    };
    steps.push(format!("yaml-anchor{k}"));
    out.into_bytes()
}

/// Recomputes the CRC of every PNG chunk that fits, so that decoders look past it.
pub fn png_fix_crcs(b: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = at.checked_add(8).and_then(|x| x.checked_add(len)) else { break };
        if end + 4 > b.len() {
            break;
        }
        let mut crc = flate2::Crc::new();
        crc.update(&b[at + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        at = end + 4;
    }
}

pub fn decompress(codec: &str, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match codec {
        "gz" => flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out).map(|_| ()),
        "zst" => zstd::stream::read::Decoder::new(b).and_then(|mut d| d.read_to_end(&mut out)).map(|_| ()),
        "bz2" => bzip2::read::MultiBzDecoder::new(b).read_to_end(&mut out).map(|_| ()),
        other => panic!("no codec {other}"),
    }
    .unwrap_or_else(|e| panic!("decompress a {codec} seed: {e}"));
    out
}

pub fn compress(codec: &str, b: &[u8]) -> Vec<u8> {
    match codec {
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(b, 1).unwrap(),
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        }
        other => panic!("no codec {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Corpus folders

/// The case name `case-0001.<ext>` (wider when there are more than 9,999 cases).
pub fn case_name(i: usize, total: usize, ext: &str) -> String {
    let width = total.to_string().len().max(4);
    format!("case-{i:0width$}.{ext}")
}

/// Writes `n` mutated cases and the unmutated seeds (`seed-<name>`) into `dir`; returns
/// (file name, how it was made) for every file written.
pub fn write_corpus(
    dir: &Path,
    rng: &mut Rng,
    seeds: &[Seed],
    format: Format,
    n: usize,
    big: usize,
) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut budget = Budget { big };
    let mut made = Vec::new();
    for i in 1..=n {
        let m = mutate(rng, seeds, format, &mut budget);
        let name = case_name(i, n, &seeds[m.seed].ext);
        std::fs::write(dir.join(&name), &m.bytes).unwrap();
        made.push((name, m.describe(seeds)));
    }
    for s in seeds {
        let name = format!("seed-{}", s.name);
        std::fs::write(dir.join(&name), &s.bytes).unwrap();
        made.push((name, "unmutated seed".into()));
    }
    made
}

// ---------------------------------------------------------------------------------------------
// Process monitor

/// How one monitored run of the binary ended.
#[derive(Debug)]
pub struct Monitored {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The highest VmHWM (or VmRSS) seen in /proc/<pid>/status, in KiB.
    pub peak_kib: u64,
    /// Killed for running past the wall-clock limit.
    pub hung: bool,
    /// Killed for passing the hard memory limit.
    pub killed_for_memory: bool,
}

impl Monitored {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal())
    }

    /// Everything wrong with the run that is not about its exit code: a panic, a signal, a hang,
    /// memory over `max_kib`.
    pub fn crash_problems(&self, max_kib: u64) -> Vec<String> {
        let mut p = Vec::new();
        for (what, text) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let panics = panic_sites(text);
            if !panics.is_empty() {
                let list: Vec<String> =
                    panics.iter().map(|(site, (n, msg))| format!("  {n} x panicked at {site}: {msg}")).collect();
                p.push(format!("panics in {what}, by place:\n{}", list.join("\n")));
            } else if text.contains("RUST_BACKTRACE") || text.contains("stack backtrace") {
                p.push(format!("a backtrace in {what}:\n{}", excerpt_around(text, "backtrace")));
            }
            if text.contains("stack overflow") {
                p.push(format!("a stack overflow in {what}:\n{}", excerpt_around(text, "overflow")));
            }
        }
        if self.hung {
            p.push(format!("hung: killed after {:.0?}", self.elapsed));
        }
        if self.killed_for_memory {
            p.push(format!("memory blow-up: killed at {} MiB resident", self.peak_kib / 1024));
        } else if self.peak_kib > max_kib {
            p.push(format!(
                "memory: peak {} MiB resident, over the {} MiB bound",
                self.peak_kib / 1024,
                max_kib / 1024
            ));
        }
        if let Some(sig) = self.signal()
            && !self.hung
            && !self.killed_for_memory
        {
            p.push(format!("killed by signal {sig}; stderr tail:\n{}", tail(&self.stderr, 3000)));
        }
        p
    }
}

/// Each place a panic message names (`panicked at src/x.rs:1:2:`), with how many times and the
/// first message (its first line, shortened).
pub fn panic_sites(text: &str) -> std::collections::BTreeMap<String, (usize, String)> {
    let mut sites = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some(at) = l.find("panicked at ") {
            let site = l[at + "panicked at ".len()..].trim_end_matches(':').to_string();
            let msg: String = lines.next().unwrap_or_default().chars().take(300).collect();
            sites.entry(site).or_insert((0, msg)).0 += 1;
        }
    }
    sites
}

/// Up to 4,000 characters of `text` around the first `needle`.
pub fn excerpt_around(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let mut start = at.saturating_sub(500);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 3500).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[start..end].to_string()
}

pub fn tail(text: &str, n: usize) -> String {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// VmHWM (peak) or, failing that, VmRSS of a live process, in KiB.
fn resident_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    field("VmHWM:").or_else(|| field("VmRSS:"))
}

/// Kill a child past this resident size (KiB) to protect the machine: 8 GiB.
pub const HARD_MEMORY_KIB: u64 = 8 << 20;

/// Runs `cmd` to its end, polling its memory every 50 ms; kills it after `limit` (a hang) or
/// past [`HARD_MEMORY_KIB`].
pub fn run_monitored(mut cmd: Command, limit: Duration) -> Monitored {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A panic shows where it happened.
    cmd.env("RUST_BACKTRACE", "1");
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the batchscore binary");
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let (mut peak, mut hung, mut killed_for_memory) = (0u64, false, false);
    let status = loop {
        if let Some(kib) = resident_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(st) = child.try_wait().expect("wait for the binary") {
            break Some(st);
        }
        if peak > HARD_MEMORY_KIB {
            killed_for_memory = true;
        } else if started.elapsed() > limit {
            hung = true;
        }
        if hung || killed_for_memory {
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    Monitored {
        status,
        stdout: String::from_utf8_lossy(&out_t.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        elapsed,
        peak_kib: peak,
        hung,
        killed_for_memory,
    }
}
