"""MT-Bench-style evaluation of one shard of the questions, LLM-as-a-judge, resumable.

Run by examples/mtbench/eval.yaml, one managed job per shard ($SHARD of $NUM_SHARDS).

* GPU mode: FastChat's llm_judge. The shard's questions become a bench of their own
  (`data/mt_bench_shard<i>/`); `gen_model_answer` answers those not answered yet (answers are
  kept in $CKPT_DIR, a mounted bucket, so a preempted run only redoes the question it was on),
  then `gen_judgment` grades them (single-answer grading, GPT-4 judge: OPENAI_API_KEY).
* REHEARSAL mode (no `nvidia-smi`, no torch, or no CUDA; or REHEARSAL=1): the same shard
  bookkeeping over synthetic questions. Each question has a reference answer and two candidate
  answers (model A and model B, generated from the reference with different error rates, seeded
  by question id); the stand-in judge scores each answer 1-10 by its edit-distance similarity to
  the reference (a dynamic program per answer), and picks a pairwise winner.

Either way each judged question is appended to $CKPT_DIR/judgments-shard<i>.jsonl (flushed and
fsynced: the checkpoint), a restarted run skips what is there, progress (questions done / shard
size) goes to $SKYBROKER_PROGRESS_FILE, and the shard's summary (mean scores, A's win rate with a
bootstrap 95% interval) to $CKPT_DIR/summary-shard<i>.json. When every shard is done,
`python judge.py merge DIR` summarizes all the judgments files of DIR (the bucket) as one.

Knobs: NUM_QUESTIONS (80, as MT-Bench), SEED, REHEARSAL_STOP_AFTER (stop cleanly after this many
questions in this run: a stand-in preemption), REHEARSAL_SECONDS (pace the shard to take this
long). Under a managed job the questions follow the job's clock (see `pacer`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time


def has_gpu() -> bool:
    if os.environ.get("REHEARSAL", "").strip().lower() in ("1", "true", "yes"):
        return False
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch  # lazily: only GPU images have it
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


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


def shard_ids(total: int, shard: int, num_shards: int) -> list[int]:
    """Contiguous, disjoint ranges covering 0..total-1 (MT-Bench ids are 81..160: add 81)."""
    if not 0 <= shard < num_shards:
        raise SystemExit(f"SHARD={shard} is not in 0..{num_shards - 1}")
    return list(range(shard * total // num_shards, (shard + 1) * total // num_shards))


def done_ids(path: str) -> set[int]:
    """Question ids already judged (a torn last line from a kill is ignored)."""
    out: set[int] = set()
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    out.add(int(json.loads(line)["question_id"]))
                except (ValueError, KeyError):
                    continue
    return out


# ---------------------------------------------------------------- REHEARSAL mode

def synthetic_question(qid: int, seed: int = 0):
    """A reference answer and two candidates (A: 10% errors, B: 25%), as token arrays."""
    import numpy as np

    rng = np.random.default_rng((seed, qid))
    ref = rng.integers(0, 50, int(rng.integers(60, 140)))

    def noisy(rate: float):
        keep = rng.random(len(ref)) >= rate / 2  # deletions
        out = ref[keep].copy()
        sub = rng.random(len(out)) < rate / 2  # substitutions
        out[sub] = rng.integers(0, 50, int(sub.sum()))
        return out

    return ref, noisy(0.10), noisy(0.25)


def edit_distance(a, b) -> int:
    """Levenshtein distance, one numpy row per token of `a`."""
    import numpy as np

    prev = np.arange(len(b) + 1)
    for i, tok in enumerate(a, 1):
        sub = prev[:-1] + (b != tok)
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(prev[1:] + 1, sub)
        # insertions propagate left to right: a running minimum of (cur[j] - j) + j
        cur = np.minimum.accumulate(cur - np.arange(len(cur))) + np.arange(len(cur))
        prev = cur
    return int(prev[-1])


def judge_score(answer, ref) -> int:
    """1-10, as an MT-Bench single-answer grade."""
    sim = 1.0 - edit_distance(answer, ref) / max(len(answer), len(ref), 1)
    return int(round(1 + 9 * max(sim, 0.0)))


def judge_question(qid: int, seed: int = 0) -> dict:
    ref, a, b = synthetic_question(qid, seed)
    sa, sb = judge_score(a, ref), judge_score(b, ref)
    return {"question_id": qid, "score_a": sa, "score_b": sb,
            "winner": "A" if sa > sb else ("B" if sb > sa else "tie")}


def summarize(rows: list[dict], seed: int = 0) -> dict:
    import numpy as np

    a = np.array([r["score_a"] for r in rows], dtype=float)
    b = np.array([r["score_b"] for r in rows], dtype=float)
    win = np.array([1.0 if r["winner"] == "A" else (0.5 if r["winner"] == "tie" else 0.0)
                    for r in rows])
    rng = np.random.default_rng(seed)
    boots = win[rng.integers(0, len(win), (1000, len(win)))].mean(axis=1) if len(win) else [0.0]
    return {"questions": len(rows), "mean_score_a": round(float(a.mean()), 3),
            "mean_score_b": round(float(b.mean()), 3), "win_rate_a": round(float(win.mean()), 3),
            "win_rate_a_ci95": [round(float(np.percentile(boots, 2.5)), 3),
                                round(float(np.percentile(boots, 97.5)), 3)]}


def rehearse(ckpt_dir: str, shard: int, num_shards: int, total: int = 80, seed: int = 0,
             stop_after: int | None = None, log=print) -> dict:
    os.makedirs(ckpt_dir, exist_ok=True)
    path = os.path.join(ckpt_dir, f"judgments-shard{shard}.jsonl")
    ids = shard_ids(total, shard, num_shards)
    done = done_ids(path)
    todo = [q for q in ids if q not in done]
    if done:
        log(f"judge: resumed from checkpoint: {len(done)}/{len(ids)} questions already judged")
    else:
        log(f"judge: shard {shard}/{num_shards}: questions {ids[0]}..{ids[-1]}")
    allowed = pacer(len(ids), len(done))
    with open(path, "a") as out:
        for n, qid in enumerate(todo):
            if stop_after is not None and n >= stop_after:
                log(f"judge: stopping after {n} questions this run (REHEARSAL_STOP_AFTER)")
                return {"finished": False, "done": len(done)}
            out.write(json.dumps(judge_question(qid, seed)) + "\n")
            out.flush()
            os.fsync(out.fileno())
            done.add(qid)
            report_progress(len(done) / len(ids))
            wait_for(allowed, len(done))
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = list({r["question_id"]: r for r in rows if r["question_id"] in set(ids)}.values())
    summary = {"shard": shard, "num_shards": num_shards, **summarize(rows, seed)}
    write_atomic(os.path.join(ckpt_dir, f"summary-shard{shard}.json"), json.dumps(summary))
    log(f"judge: done: {json.dumps(summary)}")
    return {"finished": True, **summary}


# ---------------------------------------------------------------- GPU mode (FastChat llm_judge)

def judge_gpu(ckpt_dir: str, shard: int, num_shards: int) -> int:
    env = os.environ
    data = os.path.expanduser(env.get("FASTCHAT_DIR", "~/FastChat")) + "/fastchat/llm_judge/data"
    model_id = env.get("MODEL_ID", "vicuna-7b-v1.5")
    with open(f"{data}/mt_bench/question.jsonl") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    mine = [questions[i] for i in shard_ids(len(questions), shard, num_shards)]
    answers = os.path.join(ckpt_dir, f"answers-{model_id}-shard{shard}.jsonl")
    answered = done_ids(answers)
    report_progress(len(answered) / (2 * len(mine)))  # answering is the first half of the work
    for bench, qs in ((f"mt_bench_shard{shard}", mine),
                      (f"mt_bench_shard{shard}_todo",
                       [q for q in mine if q["question_id"] not in answered])):
        os.makedirs(f"{data}/{bench}/model_answer", exist_ok=True)
        shutil.copytree(f"{data}/mt_bench/reference_answer", f"{data}/{bench}/reference_answer",
                        dirs_exist_ok=True)
        write_atomic(f"{data}/{bench}/question.jsonl", "".join(json.dumps(q) + "\n" for q in qs))
    cwd = os.path.dirname(data)
    if len(answered) < len(mine):  # appends to the bucket file question by question
        rc = subprocess.call([sys.executable, "-m", "fastchat.llm_judge.gen_model_answer",
                              "--model-path", env.get("MODEL_PATH", "lmsys/vicuna-7b-v1.5"),
                              "--model-id", model_id, "--bench-name", f"mt_bench_shard{shard}_todo",
                              "--answer-file", answers], cwd=cwd)
        if rc:
            return rc
    report_progress(0.5)
    shutil.copy(answers, f"{data}/mt_bench_shard{shard}/model_answer/{model_id}.jsonl")
    rc = subprocess.run([sys.executable, "-m", "fastchat.llm_judge.gen_judgment",
                         "--bench-name", f"mt_bench_shard{shard}", "--model-list", model_id,
                         "--judge-model", env.get("JUDGE_MODEL", "gpt-4"), "--parallel", "2"],
                        cwd=cwd, input=b"\n").returncode  # it asks to press Enter
    for f in os.listdir(f"{data}/mt_bench_shard{shard}/model_judgment"):
        shutil.copy(f"{data}/mt_bench_shard{shard}/model_judgment/{f}",
                    os.path.join(ckpt_dir, f"judgments-shard{shard}-{f}"))
    report_progress(1.0)
    return rc


def merge(ckpt_dir: str, seed: int = 0) -> dict:
    """One summary over every shard's judgments in `ckpt_dir` (rehearsal format)."""
    import glob

    rows: dict[int, dict] = {}
    for path in sorted(glob.glob(os.path.join(ckpt_dir, "judgments-shard*.jsonl"))):
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    rows[int(r["question_id"])] = r
    return summarize([rows[q] for q in sorted(rows)], seed)


def main() -> int:
    if sys.argv[1:2] == ["merge"]:
        print(json.dumps(merge(sys.argv[2] if len(sys.argv) > 2 else os.environ["CKPT_DIR"])))
        return 0
    ckpt_dir = os.path.expanduser(os.environ.get("CKPT_DIR", "~/eval"))
    shard, num_shards = int(os.environ.get("SHARD", "0")), int(os.environ.get("NUM_SHARDS", "1"))
    if has_gpu():
        return judge_gpu(ckpt_dir, shard, num_shards)
    print(f"REHEARSAL (no GPU): synthetic MT-Bench shard {shard} of {num_shards}, "
          "edit-distance judge", flush=True)
    stop_after = os.environ.get("REHEARSAL_STOP_AFTER")
    rehearse(ckpt_dir, shard, num_shards, total=int(os.environ.get("NUM_QUESTIONS", "80")),
             seed=int(os.environ.get("SEED", "0")),
             stop_after=int(stop_after) if stop_after else None,
             log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
