"""k-mer spectrum of a genome, chunk by chunk, with checkpoints: a CPU batch job for spot.

Run by examples/genomics/kmer.yaml.

* Real mode: reads the FASTA file at $GENOME (a mounted bucket), counts canonical k-mers
  (k = $K, default 12; 4^12 counters) over chunks of $CHUNK_MB megabases.
* REHEARSAL mode (REHEARSAL=1, or no $GENOME file): generates a synthetic genome of
  $REHEARSAL_MB megabases (seeded: the same every run, with a planted repeat that shows up as
  high-copy k-mers) and counts 8-mers the same way, in chunks of $REHEARSAL_CHUNK_MB (0.1).

Either way the counts and the next chunk are checkpointed to $CKPT_DIR/kmer_state.npz every
CKPT_SECONDS (atomic write + rename), a restarted run resumes from there, and the fraction of
chunks done is reported to $SKYBROKER_PROGRESS_FILE for the managed-job controller. The result
(top k-mers, GC content, high-copy k-mers) goes to $CKPT_DIR/kmer_result.json. Restarts do not change
the result: a resumed run's counts equal an uninterrupted run's.

Knobs: REHEARSAL_STOP_AFTER (stop cleanly after this many chunks in this run: a stand-in
preemption), REHEARSAL_SECONDS (pace the run to take this long). Under a managed job the chunks follow the
job's clock (see `pacer`): the run lasts the job's duration, in job time.
"""

from __future__ import annotations

import json
import os
import sys
import time

CODE = bytes.maketrans(b"ACGTacgt", b"\x00\x01\x02\x03\x00\x01\x02\x03")


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def report_progress(fraction: float) -> None:
    """The managed-job controller reads this file at each decision (docs/managed-jobs.md)."""
    path = os.environ.get("SKYBROKER_PROGRESS_FILE")
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, f"fraction={min(max(fraction, 0.0), 1.0):.6f}\n")


def pacer(total: int, done: int):
    """A function giving how many of `total` units may be finished by now.

    Under a managed job the stand-in's work follows the job's clock: after the restart overhead,
    `total` units over the job's duration, from the tick this run was decided at (so its
    progress reports match the controller's model even on a time-compressed rehearsal trace,
    and a slow start is caught up). REHEARSAL_SECONDS paces a plain run; otherwise no pacing."""
    env = os.environ
    if env.get("REHEARSAL_SECONDS"):
        t0, secs = time.time(), float(env["REHEARSAL_SECONDS"])
        return lambda: done + (time.time() - t0) / secs * total
    duration = float(env.get("SKYBROKER_JOB_DURATION_S") or 0)
    if duration <= 0:
        return lambda: float("inf")
    scale = float(env.get("SKYBROKER_JOB_TIME_SCALE") or 1)
    t0 = float(env.get("SKYBROKER_RUN_STARTED_AT") or time.time())
    overhead = float(env.get("SKYBROKER_RESTART_OVERHEAD_S") or 0)
    return lambda: done + max(0.0, (time.time() - t0) * scale - overhead) / duration * total


def wait_for(allowed, units: int) -> None:
    """Sleep until `units` may be finished (the pace), in short naps."""
    while allowed() < units:
        time.sleep(0.02)


def synthetic_genome(megabases: float, seed: int = 7):
    """Random bases (GC 41%, like human) with a 300-bp element planted 200 times."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(megabases * 1_000_000)
    seq = rng.choice(np.arange(4, dtype=np.uint8), size=n, p=[0.295, 0.205, 0.205, 0.295])
    element = rng.integers(0, 4, 300, dtype=np.uint8)
    for pos in rng.integers(0, max(n - 300, 1), 200):
        seq[pos:pos + 300] = element
    return seq


def read_fasta_codes(path: str):
    """2-bit codes of every A/C/G/T of a FASTA file (headers and other letters dropped)."""
    import numpy as np

    with open(path, "rb") as f:
        text = b"".join(line.strip() for line in f if not line.startswith(b">"))
    raw = np.frombuffer(text.upper(), dtype=np.uint8)
    keep = np.isin(raw, np.frombuffer(b"ACGT", dtype=np.uint8))
    return np.frombuffer(raw[keep].tobytes().translate(CODE), dtype=np.uint8)


def kmer_codes(seq, k: int):
    """Canonical k-mer codes (min of forward and reverse complement) of a base array."""
    import numpy as np

    n = len(seq) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    fwd = np.zeros(n, dtype=np.int64)
    rev = np.zeros(n, dtype=np.int64)
    s = seq.astype(np.int64)
    for i in range(k):
        fwd = (fwd << 2) | s[i:i + n]
        rev |= (3 - s[i:i + n]) << (2 * i)
    return np.minimum(fwd, rev)


def count(seq, k: int, chunk: int, state_path: str, *, stop_after: int | None = None,
          ckpt_seconds: float = 2.0, log=print) -> dict:
    """Count k-mers of `seq` chunk by chunk, resuming from `state_path` if it exists."""
    import numpy as np

    chunks = max(1, -(-len(seq) // chunk))
    if os.path.exists(state_path):
        with np.load(state_path) as z:
            counts, done = z["counts"].copy(), int(z["next_chunk"])
            if int(z["k"]) != k or int(z["chunks"]) != chunks:
                raise SystemExit(f"{state_path} is a checkpoint of another run (k or size)")
        log(f"kmer: resumed from checkpoint at chunk {done}/{chunks}")
    else:
        counts, done = np.zeros(4 ** k, dtype=np.int64), 0
        log(f"kmer: starting: {len(seq):,} bases, k={k}, {chunks} chunks")

    def save() -> None:
        tmp = f"{state_path}.tmp.{os.getpid()}.npz"
        np.savez(tmp, counts=counts, next_chunk=done, k=k, chunks=chunks)
        os.replace(tmp, state_path)
        report_progress(done / chunks)

    allowed = pacer(chunks, done)
    last, ran = time.time(), 0
    while done < chunks:
        if stop_after is not None and ran >= stop_after:
            save()
            log(f"kmer: stopping after {ran} chunks this run (REHEARSAL_STOP_AFTER), "
                f"checkpoint at chunk {done}")
            return {"finished": False, "next_chunk": done}
        lo = done * chunk
        hi = min(len(seq), lo + chunk + k - 1)  # overlap so no k-mer straddling chunks is lost
        counts += np.bincount(kmer_codes(seq[lo:hi], k), minlength=4 ** k)
        done += 1
        ran += 1
        wait_for(allowed, done)
        if time.time() - last >= ckpt_seconds or done == chunks:
            save()
            last = time.time()
            log(f"kmer: chunk {done}/{chunks} checkpointed")
    top = np.argsort(counts)[::-1][:5]
    alphabet = "ACGT"
    gc = float(np.isin(seq, (1, 2)).mean()) if len(seq) else 0.0
    return {"finished": True, "bases": int(len(seq)), "k": k, "distinct": int((counts > 0).sum()),
            "total": int(counts.sum()), "gc": round(gc, 4),
            "top": {"".join(alphabet[(int(c) >> (2 * (k - 1 - i))) & 3] for i in range(k)):
                    int(counts[c]) for c in top},
            # k-mers of repeats (the planted element) stand far above the random background
            "high_copy": int((counts > 3 * counts[counts > 0].mean()).sum())}


def main() -> int:
    ckpt_dir = os.path.expanduser(os.environ.get("CKPT_DIR", "~/checkpoints"))
    os.makedirs(ckpt_dir, exist_ok=True)
    genome = os.path.expanduser(os.environ.get("GENOME", ""))
    rehearsal = os.environ.get("REHEARSAL", "0") == "1" or not (genome and os.path.exists(genome))
    if rehearsal:
        mb = float(os.environ.get("REHEARSAL_MB", "2"))
        print(f"REHEARSAL: synthetic genome of {mb:g} Mb (no input data needed)", flush=True)
        chunk = int(float(os.environ.get("REHEARSAL_CHUNK_MB", "0.1")) * 1e6)
        seq, k = synthetic_genome(mb), 8
    else:
        seq = read_fasta_codes(genome)
        k, chunk = int(os.environ.get("K", "12")), int(float(os.environ.get("CHUNK_MB", "10")) * 1e6)
    stop_after = os.environ.get("REHEARSAL_STOP_AFTER")
    result = count(seq, k, chunk, os.path.join(ckpt_dir, "kmer_state.npz"),
                   stop_after=int(stop_after) if stop_after else None,
                   ckpt_seconds=float(os.environ.get("CKPT_SECONDS", "2")),
                   log=lambda m: print(m, flush=True))
    if result["finished"]:
        write_atomic(os.path.join(ckpt_dir, "kmer_result.json"), json.dumps(result, indent=1))
        print("kmer: done:", json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
