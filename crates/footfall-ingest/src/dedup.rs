//! The set of client-given event ids (`id` of the bulk and events APIs), to answer
//! re-sends idempotently: exact, with 2 bytes per id in memory and the rest of each id in
//! a temporary file, so the resident set does not grow by 6 bytes for every id stored.

use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Ids accepted since the last fold. foldhash (seeded per process) instead of std's
/// SipHash: the ids are hashes already, and this set takes every bulk event.
type PendingIds = HashSet<u64, foldhash::fast::RandomState>;

const DEDUP_SHARDS: usize = 16;

/// Bits of an id that select its bucket; the other 48 are stored.
const BUCKET_BITS: u32 = 16;
const BUCKETS: usize = 1 << BUCKET_BITS;
const LOW_BITS: u32 = 64 - BUCKET_BITS;
/// Buckets per chunk. The set is kept in 16 chunks (the top 4 bits of an id) that a fold
/// rewrites one at a time, so it holds one chunk twice rather than the whole set: at 10M
/// ids the old and the new whole set (~115 MB) were the largest item of a bulk load's
/// peak. Not more chunks: a chunk's arrays then fall in mimalloc's size classes below
/// 512 KiB, which share 4 MiB pages, and the arrays each fold frees leave those pages
/// partly used (with 256 chunks a server kept ~10 MiB more after a 10M-event load);
/// larger arrays get pages of their own, returned whole when freed.
const CHUNK_BUCKETS: usize = 4096;
const CHUNKS: usize = BUCKETS / CHUNK_BUCKETS;

fn bucket_of(id: u64) -> usize {
    (id >> LOW_BITS) as usize
}

fn chunk_of(id: u64) -> usize {
    bucket_of(id) / CHUNK_BUCKETS
}

/// Bits 32..48 of an id: what a chunk keeps of it in memory.
fn mid16(id: u64) -> u16 {
    (id >> 32) as u16
}

/// One chunk's ids while the start-up load places them: bits 0..32 and 32..48 of each,
/// and where each of the chunk's buckets starts.
#[derive(Default)]
struct ChunkBuilder {
    low: Vec<u32>,
    mid: Vec<u16>,
    starts: Vec<u32>,
}

impl ChunkBuilder {
    fn low48_at(&self, i: usize) -> u64 {
        (u64::from(self.mid[i]) << 32) | u64::from(self.low[i])
    }

    /// Stores the low 48 bits of `id` at `i` (what `low48_at` reads back).
    fn set(&mut self, i: usize, id: u64) {
        self.low[i] = id as u32;
        self.mid[i] = mid16(id);
    }

    /// Every id of chunk `index`, ascending.
    fn ids(&self, index: usize) -> impl Iterator<Item = u64> + '_ {
        ids_of(index, &self.starts, &self.mid, &self.low)
    }
}

/// The ids of chunk `index` from their parts, ascending.
fn ids_of<'a>(
    index: usize,
    starts: &'a [u32],
    mid: &'a [u16],
    low: &'a [u32],
) -> impl Iterator<Item = u64> + 'a {
    starts
        .windows(2)
        .enumerate()
        .flat_map(move |(bucket, range)| {
            let top = ((index * CHUNK_BUCKETS + bucket) as u64) << LOW_BITS;
            (range[0] as usize..range[1] as usize)
                .map(move |i| top | (u64::from(mid[i]) << 32) | u64::from(low[i]))
        })
}

/// A chunk of ascending `ids` (duplicates skipped), about `len_hint` of them: bits 32..48
/// and the bucket starts in memory, bits 0..32 streamed to a new unlinked file in `dir`
/// (so a fold holds no second copy of them).
fn write_chunk(ids: impl Iterator<Item = u64>, len_hint: usize, dir: &Path) -> io::Result<Chunk> {
    let mut mid = Vec::with_capacity(len_hint);
    let mut starts = Vec::with_capacity(CHUNK_BUCKETS + 1);
    let mut out: Option<BufWriter<File>> = None;
    let mut last = None;
    for id in ids {
        if last == Some(id) {
            continue;
        }
        last = Some(id);
        while starts.len() <= bucket_of(id) % CHUNK_BUCKETS {
            starts.push(mid.len() as u32);
        }
        let file = match &mut out {
            Some(file) => file,
            None => out.insert(BufWriter::with_capacity(
                1 << 16,
                tempfile::tempfile_in(dir)?,
            )),
        };
        file.write_all(&(id as u32).to_le_bytes())?;
        mid.push(mid16(id));
    }
    let Some(out) = out else {
        return Ok(Chunk::default());
    };
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    while starts.len() <= CHUNK_BUCKETS {
        starts.push(mid.len() as u32);
    }
    mid.shrink_to_fit();
    Ok(Chunk {
        mid,
        starts,
        low: Some(file),
    })
}

/// Where `key` is in the ascending `bucket`. Ids are hashes, so bits 32..48 spread
/// evenly over a bucket and `key`'s place is close to `key / 65536` of the way in: the
/// search starts there and walks, a step or two in one cache line where a binary search
/// over ~150 entries took 8 steps, most of them mispredicted branches (~6 % of the
/// request threads' time under bulk load). Too far off (ids not spread, as in tests) it
/// falls back to a binary search.
fn equal_range(bucket: &[u16], key: u16) -> std::ops::Range<usize> {
    /// Steps walked before a binary search: the place of one of 150 spread keys is off
    /// its estimate by ~6 at one standard deviation.
    const WALK: usize = 24;
    let n = bucket.len();
    let mut at = (usize::from(key) * n) >> 16;
    let mut steps = 0;
    // The first place whose key is not below `key`.
    let start = loop {
        if at > 0 && bucket[at - 1] >= key {
            at -= 1;
        } else if at < n && bucket[at] < key {
            at += 1;
        } else {
            break at;
        }
        steps += 1;
        if steps == WALK {
            break bucket.partition_point(|&m| m < key);
        }
    };
    let len = bucket[start..].iter().take_while(|&&m| m == key).count();
    start..start + len
}

/// Sorted ids of one chunk, exact (every bit of every id is kept). The top 16 bits of an
/// id are implied by the chunk and its bucket (`starts`: where each of the chunk's 4,096
/// buckets starts); bits 32..48 (`mid`) stay in memory, in id order; bits 0..32 are in a
/// file, read only for the few ids whose top 32 bits match: 2 bytes per id resident,
/// where keeping all 48 bits cost 6 (62 MB at 10M ids, a fifth of a bulk load's peak).
/// Client event ids are hashes, so buckets fill evenly: at 10M ids a bucket holds ~150,
/// and a new id shares its bits 32..48 with one of its bucket's in ~0.2 % of lookups,
/// each then a 4-byte read of a file the page cache keeps.
#[derive(Default)]
struct Chunk {
    /// Bits 32..48 of each id, in id order (so ascending within a bucket).
    mid: Vec<u16>,
    /// `starts[b]..starts[b + 1]`: the ids of the chunk's bucket `b`. Empty when the
    /// chunk has no ids.
    starts: Vec<u32>,
    /// Bits 0..32 of each id, in id order, little-endian: an unlinked temporary file
    /// (no leftovers after a crash; start-up loads the ids from the store again).
    low: Option<File>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.mid.len()
    }

    /// Bits 0..32 of the ids at `at..at + n`.
    fn read_low(&self, at: usize, n: usize) -> io::Result<Vec<u32>> {
        let Some(file) = &self.low else {
            return Ok(Vec::new());
        };
        let mut bytes = vec![0u8; n * 4];
        file.read_exact_at(&mut bytes, at as u64 * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Every id of chunk `index`, ascending.
    fn ids(&self, index: usize) -> io::Result<Vec<u64>> {
        let low = self.read_low(0, self.len())?;
        Ok(ids_of(index, &self.starts, &self.mid, &low).collect())
    }

    /// This chunk (number `index`) rewritten with the ascending `added` ids merged in and
    /// `removed` left out.
    fn rewritten(
        &self,
        index: usize,
        added: &[u64],
        removed: Option<u64>,
        dir: &Path,
    ) -> io::Result<Chunk> {
        let low = self.read_low(0, self.len())?;
        let old = ids_of(index, &self.starts, &self.mid, &low);
        let ids = merge_sorted(old, added.iter().copied()).filter(|&id| Some(id) != removed);
        write_chunk(ids, self.len() + added.len(), dir)
    }

    fn contains(&self, id: u64) -> io::Result<bool> {
        let bucket = bucket_of(id) % CHUNK_BUCKETS;
        let (Some(&lo), Some(&hi)) = (self.starts.get(bucket), self.starts.get(bucket + 1)) else {
            return Ok(false);
        };
        let (lo, hi) = (lo as usize, hi as usize);
        let found = equal_range(&self.mid[lo..hi], mid16(id));
        if found.is_empty() {
            return Ok(false);
        }
        Ok(self
            .read_low(lo + found.start, found.len())?
            .contains(&(id as u32)))
    }

    /// Bytes held in memory.
    fn bytes(&self) -> usize {
        self.mid.capacity() * 2 + self.starts.capacity() * 4
    }
}

/// Every compacted id, in `CHUNKS` chunks by their top 4 bits, the chunks' files in `dir`.
struct SortedIds {
    dir: PathBuf,
    chunks: Vec<Chunk>,
}

impl SortedIds {
    fn new(dir: PathBuf) -> Self {
        SortedIds {
            dir,
            chunks: (0..CHUNKS).map(|_| Chunk::default()).collect(),
        }
    }

    fn len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }

    /// Every id, ascending (tests).
    #[cfg(test)]
    fn all(&self) -> io::Result<Vec<u64>> {
        let mut all = Vec::with_capacity(self.len());
        for (index, chunk) in self.chunks.iter().enumerate() {
            all.extend(chunk.ids(index)?);
        }
        Ok(all)
    }

    /// Whether `id` is held. A file that cannot be read counts as "not held": the hit is
    /// then stored, perhaps twice, rather than refused and lost.
    fn contains(&self, id: u64) -> bool {
        self.chunks[chunk_of(id)].contains(id).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the de-dup set's file; taking the id as new");
            false
        })
    }

    /// Merges ascending `ids` in, rewriting only the chunks they fall in, one at a time.
    /// Returns the ids of chunks that could not be rewritten (their files), for the
    /// caller to keep in memory.
    fn merge(&mut self, ids: &[u64]) -> Vec<u64> {
        let mut rest = ids;
        let mut unmerged = Vec::new();
        for (index, chunk) in self.chunks.iter_mut().enumerate() {
            let n = rest.partition_point(|&id| chunk_of(id) == index);
            if n == 0 {
                continue;
            }
            let (mine, after) = rest.split_at(n);
            rest = after;
            let merged = chunk.rewritten(index, mine, None, &self.dir);
            match merged {
                Ok(new) => *chunk = new,
                Err(e) => {
                    tracing::error!(error = %e, dir = %self.dir.display(), "cannot write the de-dup set's file; keeping its new ids in memory");
                    unmerged.extend_from_slice(mine);
                }
            }
        }
        unmerged
    }

    /// Removes `id`; false when its chunk could not be rewritten.
    fn remove(&mut self, id: u64) -> bool {
        let index = chunk_of(id);
        let chunk = &self.chunks[index];
        if !chunk.contains(id).unwrap_or(true) {
            return true;
        }
        let rest = chunk.rewritten(index, &[], Some(id), &self.dir);
        match rest {
            Ok(rest) => {
                self.chunks[index] = rest;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot rewrite the de-dup set's file");
                false
            }
        }
    }

    /// Bytes held in memory (the memory report and tests).
    fn bytes(&self) -> usize {
        self.chunks.iter().map(Chunk::bytes).sum()
    }
}

/// Builds the compact set from ids in any order, read twice: counted per bucket, then
/// placed. Loading the store's ids at start-up so holds 6 bytes per id and little else
/// (each chunk then goes to its file, keeping 2); reading them into a `Vec<u64>` to sort
/// first held 8 more bytes per id at the start-up peak (80 MB at 10M ids).
pub struct IdLoader {
    /// Ids per bucket, from `count`.
    counts: Vec<u32>,
    /// From the first `place`: the chunks being filled, each bucket's next free slot (an
    /// index into its chunk), and ids beyond a bucket's count (the two passes saw
    /// different ids; none normally).
    placing: Option<(Vec<ChunkBuilder>, Vec<u32>, Vec<u64>)>,
}

impl Default for IdLoader {
    fn default() -> Self {
        IdLoader {
            counts: vec![0; BUCKETS],
            placing: None,
        }
    }
}

impl IdLoader {
    /// First pass.
    pub fn count(&mut self, ids: &[u64]) {
        for &id in ids {
            self.counts[bucket_of(id)] += 1;
        }
    }

    /// Second pass: every id `count` saw, in any order and chunking.
    pub fn place(&mut self, ids: &[u64]) {
        let counts = &self.counts;
        let (chunks, next, overflow) = self.placing.get_or_insert_with(|| {
            let mut next = Vec::with_capacity(BUCKETS);
            let chunks = counts
                .chunks(CHUNK_BUCKETS)
                .map(|counts| {
                    let mut starts = Vec::with_capacity(CHUNK_BUCKETS + 1);
                    let mut total = 0u32;
                    for &n in counts {
                        starts.push(total);
                        total += n;
                    }
                    starts.push(total);
                    next.extend_from_slice(&starts[..CHUNK_BUCKETS]);
                    let len = total as usize;
                    ChunkBuilder {
                        low: vec![0; len],
                        mid: vec![0; len],
                        starts,
                    }
                })
                .collect();
            (chunks, next, Vec::new())
        });
        for &id in ids {
            let bucket = bucket_of(id);
            let chunk = &mut chunks[bucket / CHUNK_BUCKETS];
            let at = next[bucket];
            if at < chunk.starts[bucket % CHUNK_BUCKETS + 1] {
                chunk.set(at as usize, id);
                next[bucket] = at + 1;
            } else {
                overflow.push(id);
            }
        }
    }

    /// Sorts each bucket (duplicates dropped, unfilled slots closed up) and stores each
    /// chunk in its file in `dir`; returns the set with the ids that did not fit or
    /// whose chunk could not be stored.
    fn finish(self, dir: &Path) -> (SortedIds, Vec<u64>) {
        let mut set = SortedIds::new(dir.to_path_buf());
        let Some((builders, next, mut overflow)) = self.placing else {
            return (set, Vec::new());
        };
        let mut sorted = Vec::new();
        for (index, mut chunk) in builders.into_iter().enumerate() {
            let filled = &next[index * CHUNK_BUCKETS..(index + 1) * CHUNK_BUCKETS];
            let mut write = 0usize;
            for (bucket, &end) in filled.iter().enumerate() {
                let start = chunk.starts[bucket] as usize;
                sorted.clear();
                sorted.extend((start..end as usize).map(|i| chunk.low48_at(i)));
                sorted.sort_unstable();
                sorted.dedup();
                // Buckets only shrink, so writing never overtakes reading.
                chunk.starts[bucket] = write as u32;
                for &low48 in &sorted {
                    chunk.set(write, low48);
                    write += 1;
                }
            }
            chunk.starts[CHUNK_BUCKETS] = write as u32;
            chunk.low.truncate(write);
            chunk.mid.truncate(write);
            match write_chunk(chunk.ids(index), write, dir) {
                Ok(stored) => set.chunks[index] = stored,
                Err(e) => {
                    tracing::error!(error = %e, dir = %dir.display(), "cannot write the de-dup set's file; keeping its ids in memory");
                    overflow.extend(chunk.ids(index));
                }
            }
        }
        (set, overflow)
    }
}

/// Merges two ascending sequences.
fn merge_sorted(
    a: impl Iterator<Item = u64>,
    b: impl Iterator<Item = u64>,
) -> impl Iterator<Item = u64> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x <= y => a.next(),
        (Some(_), Some(_)) => b.next(),
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// Event ids that came from client-given ids, to answer re-sends idempotently.
pub struct Dedup {
    /// Ids of the store and those folded in by `compact` (2 bytes each in memory).
    stored: RwLock<SortedIds>,
    /// Ids accepted since the last `compact`, and those a file could not take.
    shards: Vec<Mutex<PendingIds>>,
}

impl Default for Dedup {
    /// A set whose files are in the system's temporary directory (tests).
    fn default() -> Self {
        Dedup::in_dir(std::env::temp_dir())
    }
}

impl Dedup {
    /// A set whose files are created (unlinked) in `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        Dedup {
            stored: RwLock::new(SortedIds::new(dir)),
            shards: (0..DEDUP_SHARDS)
                .map(|_| Mutex::new(PendingIds::default()))
                .collect(),
        }
    }

    fn keep_pending(&self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            self.shards[id as usize % DEDUP_SHARDS].lock().insert(id);
        }
    }

    /// Records `id`; false when it was already there.
    pub fn insert(&self, id: u64) -> bool {
        // Held across both lookups so `compact` cannot move the id in between.
        let stored = self.stored.read();
        if stored.contains(id) {
            return false;
        }
        self.shards[id as usize % DEDUP_SHARDS].lock().insert(id)
    }

    /// Records each of `ids` (one request's, in order); for each, false when it was
    /// already there (an earlier request's, or an earlier one in `ids`). The same as
    /// `insert` for each in turn, with the locks taken once per call and per shard
    /// instead of once per id: two workers accepting bulk requests otherwise pass the
    /// read lock's counter between their cores for every id.
    pub fn insert_batch(&self, ids: &[u64]) -> Vec<bool> {
        let stored = self.stored.read();
        let mut new: Vec<bool> = ids.iter().map(|&id| !stored.contains(id)).collect();
        for (index, shard) in self.shards.iter().enumerate() {
            let mut pending = None;
            for (id, new) in ids.iter().zip(new.iter_mut()) {
                if *new && *id as usize % DEDUP_SHARDS == index {
                    *new = pending.get_or_insert_with(|| shard.lock()).insert(*id);
                }
            }
        }
        new
    }

    /// Ids accepted since the last `compact` (hash sets at ~16 bytes per id).
    pub fn pending(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Adds the ids an `IdLoader` read (the store's, at start-up).
    pub fn load(&self, loader: IdLoader) {
        let mut stored = self.stored.write();
        let (loaded, mut overflow) = loader.finish(&stored.dir);
        if stored.len() == 0 {
            *stored = loaded;
        } else {
            // Ids were already held: rare (start-up loads into an empty set).
            for (index, chunk) in loaded.chunks.iter().enumerate() {
                match chunk.ids(index) {
                    Ok(ids) => overflow.extend(ids),
                    Err(e) => tracing::error!(error = %e, "cannot read the de-dup set's file"),
                }
            }
        }
        // The second pass saw ids the first did not: none normally.
        overflow.sort_unstable();
        let unmerged = stored.merge(&overflow);
        self.keep_pending(unmerged);
    }

    /// Adds `ids`, in any order (tests; the store's ids come through `load`).
    #[cfg(test)]
    fn extend(&self, ids: &[u64]) {
        let mut loader = IdLoader::default();
        loader.count(ids);
        loader.place(ids);
        self.load(loader);
    }

    /// `compact` once at least `min` ids wait and they are a sixteenth of the compact
    /// set: a fold rewrites the whole set, so the second bound keeps the rewriting per
    /// id (about 16 moves) from growing with the store.
    pub fn compact_if_many(&self, min: usize) {
        let pending = self.pending();
        if pending >= min && pending >= self.stored.read().len() / 16 {
            self.compact();
        }
    }

    /// Moves the ids accepted since the last call into the compact set (upkeep).
    pub fn compact(&self) {
        let mut stored = self.stored.write();
        let mut ids = Vec::with_capacity(self.pending());
        for shard in &self.shards {
            let mut set = shard.lock();
            ids.extend(set.iter().copied());
            *set = PendingIds::default();
        }
        if ids.is_empty() {
            return;
        }
        // A merge, not a sort of everything: acceptance waits while this runs.
        ids.sort_unstable();
        let unmerged = stored.merge(&ids);
        self.keep_pending(unmerged);
    }

    /// Forgets an id accepted earlier (its write failed, so a retry must pass).
    pub fn remove(&self, id: u64) {
        let mut stored = self.stored.write();
        if !self.shards[id as usize % DEDUP_SHARDS].lock().remove(&id) && !stored.remove(id) {
            tracing::error!(id, "a client id whose write failed stays in the de-dup set");
        }
    }

    /// Ids held, and bytes of the compact part in memory (for logs and tests).
    pub fn footprint(&self) -> (usize, usize) {
        let stored = self.stored.read();
        (stored.len() + self.pending(), stored.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::{Dedup, SortedIds, equal_range};

    #[test]
    fn a_batch_is_decided_as_one_insert_after_another() {
        let (one_by_one, batched) = (Dedup::default(), Dedup::default());
        for d in [&one_by_one, &batched] {
            d.extend(&[5, 1 << 60, u64::MAX]);
            assert!(d.insert(7));
        }
        // Stored, pending, new, and repeats inside the batch.
        let ids = [5, 7, 9, 9, 1 << 60, 11, 5, 11, u64::MAX, 12];
        let expected: Vec<bool> = ids.iter().map(|&id| one_by_one.insert(id)).collect();
        assert_eq!(
            expected,
            [
                false, false, true, false, false, true, false, false, false, true
            ]
        );
        assert_eq!(batched.insert_batch(&ids), expected);
        assert_eq!(batched.footprint().0, one_by_one.footprint().0);
    }

    #[test]
    fn equal_range_agrees_with_binary_search_on_spread_and_skewed_buckets() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for round in 0..2_000 {
            let n = rng.random_range(0..400usize);
            // Spread keys as hashed ids give, and skewed ones (a narrow range, many
            // repeats) that send the walk to its binary-search fallback.
            let mut bucket: Vec<u16> = if round % 2 == 0 {
                (0..n).map(|_| rng.random()).collect()
            } else {
                (0..n).map(|_| rng.random_range(0..8u16) * 3).collect()
            };
            bucket.sort_unstable();
            let mut keys: Vec<u16> = bucket.clone();
            keys.extend((0..50).map(|_| rng.random::<u16>()));
            keys.extend([0, 1, 2, 3, u16::MAX]);
            for key in keys {
                let from = bucket.partition_point(|&m| m < key);
                let to = bucket.partition_point(|&m| m <= key);
                assert_eq!(
                    equal_range(&bucket, key),
                    from..to,
                    "key {key} in {bucket:?}"
                );
            }
        }
    }

    #[test]
    fn stored_and_new_ids_are_both_seen() {
        let d = Dedup::default();
        d.extend(&[30, 10, 20, 10]);
        assert!(!d.insert(10));
        assert!(!d.insert(30));
        assert!(d.insert(15));
        assert!(!d.insert(15));
        d.remove(15);
        assert!(d.insert(15));
        d.extend(&[40]);
        assert!(!d.insert(20) && !d.insert(40));
        assert!(d.insert(25));
        d.compact();
        assert!(!d.insert(25) && !d.insert(15) && !d.insert(10));
        d.remove(25);
        assert!(d.insert(25));
        // Many ids: every one is found, and nothing else.
        let many: Vec<u64> = (0..100_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let d = Dedup::default();
        d.extend(&many);
        assert!(many.iter().all(|&id| !d.insert(id)));
        assert!(d.insert(u64::MAX) && d.insert(12345));
    }

    /// The two passes over the store's ids may differ (they are two scans): an id only
    /// the second saw is kept, one only the first saw leaves no trace, duplicates count
    /// once.
    #[test]
    fn loading_in_two_passes_keeps_exactly_the_placed_ids() {
        let id = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let counted: Vec<u64> = (0..30_000).map(id).collect();
        let mut placed: Vec<u64> = (1_000..31_000).map(id).collect();
        placed.extend((5_000..5_100).map(id));
        let mut loader = super::IdLoader::default();
        for chunk in counted.chunks(2_048) {
            loader.count(chunk);
        }
        for chunk in placed.chunks(2_048) {
            loader.place(chunk);
        }
        let d = Dedup::default();
        d.load(loader);
        let all: Vec<u64> = d.stored.read().all().unwrap();
        let mut expected: Vec<u64> = (1_000..31_000).map(id).collect();
        expected.sort_unstable();
        assert_eq!(all, expected);
        assert!((0..1_000).map(id).all(|i| d.insert(i)));
        // Nothing counted: every placed id goes through the merge.
        let mut loader = super::IdLoader::default();
        loader.place(&[7, 3, 7]);
        let d = Dedup::default();
        d.load(loader);
        assert_eq!(d.stored.read().all().unwrap(), vec![3, 7]);
        // Nothing at all.
        let d = Dedup::default();
        d.load(super::IdLoader::default());
        assert_eq!(d.footprint(), (0, 0));
    }

    #[test]
    fn ids_sharing_their_low_bits_stay_distinct() {
        // Same low 48 bits, different buckets; same bucket, neighbouring low bits; the
        // extremes of the id space.
        let ids = [
            0x0001_0000_0000_0005,
            0x0002_0000_0000_0005,
            0x0002_0000_0000_0006,
            0x0002_ffff_ffff_ffff,
            0,
            u64::MAX,
            0xffff_0000_0000_0000,
        ];
        let d = Dedup::default();
        d.extend(&ids);
        for id in ids {
            assert!(!d.insert(id), "{id:#x} should be known");
        }
        for id in [
            0x0003_0000_0000_0005,
            0x0002_0000_0000_0004,
            0x0002_0001_0000_0005,
            1,
            u64::MAX - 1,
        ] {
            assert!(d.insert(id), "{id:#x} should be new");
        }
    }

    #[test]
    fn compact_keeps_every_id_in_order_at_two_bytes_each_in_memory() {
        let d = Dedup::default();
        let first: Vec<u64> = (0..50_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        d.extend(&first);
        let later: Vec<u64> = (50_000..80_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        assert!(later.iter().all(|&id| d.insert(id)));
        d.compact();
        let stored = d.stored.read();
        let all: Vec<u64> = stored.all().unwrap();
        let mut expected: Vec<u64> = first.iter().chain(&later).copied().collect();
        expected.sort_unstable();
        assert_eq!(all, expected);
        assert_eq!(
            stored.bytes(),
            80_000 * 2 + super::CHUNKS * (super::CHUNK_BUCKETS + 1) * 4
        );
        drop(stored);
        assert!(first.iter().chain(&later).all(|&id| !d.insert(id)));
        assert_eq!(SortedIds::new(std::env::temp_dir()).bytes(), 0);
    }

    #[test]
    fn pending_counts_ids_since_the_last_compact() {
        let d = Dedup::default();
        for id in 1..=1_000u64 {
            assert!(d.insert(id << 20));
        }
        // A re-sent id is refused and not counted.
        assert!(!d.insert(5 << 20));
        assert_eq!(d.pending(), 1_000);
        d.remove(7 << 20);
        assert_eq!(d.pending(), 999);
        d.compact();
        assert_eq!(d.pending(), 0);
        assert_eq!(d.footprint().0, 999);
        // Removing a compacted id leaves the pending count alone.
        d.remove(9 << 20);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.footprint().0, 998);
        assert!(d.insert(9 << 20));
        assert_eq!(d.pending(), 1);
        // 998 compacted: a fold waits for 62 new ids (a sixteenth) as well as `min`.
        for id in 2_000..2_060u64 {
            assert!(d.insert(id << 20));
        }
        d.compact_if_many(10);
        assert_eq!(d.pending(), 61);
        assert!(d.insert(3_000 << 20));
        d.compact_if_many(100);
        assert_eq!(d.pending(), 62);
        d.compact_if_many(10);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.footprint().0, 1_060);
    }

    /// Ids whose top 32 bits (all that memory keeps) are equal differ only in the file's
    /// part: each is told apart by reading it. And with no directory to write to, the set
    /// stays exact in memory.
    #[test]
    fn ids_differing_only_in_the_file_part_stay_distinct_and_a_failed_file_loses_nothing() {
        let base = 0x1234_5678_9abc_0000u64;
        let held: Vec<u64> = (0..50u64).map(|i| base | (i * 2)).collect();
        let d = Dedup::default();
        d.extend(&held);
        assert!(held.iter().all(|&id| !d.insert(id)));
        assert!((0..50u64).all(|i| d.insert(base | (i * 2 + 1))));
        assert_eq!(d.pending(), 50);

        let nowhere = tempfile::tempdir().unwrap().path().join("gone");
        let d = Dedup::in_dir(nowhere);
        d.extend(&held);
        assert_eq!(d.footprint().0, 50);
        assert!(held.iter().all(|&id| !d.insert(id)));
        assert!(d.insert(base | 1) && !d.insert(base | 1));
        d.compact();
        assert_eq!(d.pending(), 51, "kept in memory: no file could be written");
        assert!(!d.insert(base | 1) && !d.insert(held[7]));
    }

    /// Folds running while requests insert never let an id be accepted twice.
    #[test]
    fn inserts_racing_folds_see_every_id_once() {
        let d = Dedup::default();
        let id = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        d.extend(&(0..20_000).map(id).collect::<Vec<_>>());
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let d = &d;
                scope.spawn(move || {
                    for i in 0..20_000 {
                        let fresh = id(20_000 + t * 20_000 + i);
                        assert!(d.insert(fresh));
                        assert!(!d.insert(fresh));
                        assert!(!d.insert(id(i)));
                    }
                });
            }
            for _ in 0..200 {
                d.compact();
            }
        });
        d.compact();
        assert_eq!(d.footprint().0, 100_000);
        assert!((0..100_000).all(|i| !d.insert(id(i))));
    }
}
