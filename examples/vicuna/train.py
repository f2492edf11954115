"""Vicuna-style fine-tuning entry point: FastChat + PyTorch FSDP on a GPU cluster, or a CPU
rehearsal of the same checkpoint/resume/progress loop when there is no GPU.

Run on every node by examples/vicuna/finetune.yaml.

* GPU mode: builds the multi-node `torchrun` command from SKYPILOT_NODE_RANK,
  SKYPILOT_NODE_IPS, SKYPILOT_NUM_NODES and SKYPILOT_NUM_GPUS_PER_NODE and runs FastChat's
  trainer with FSDP, writing checkpoints to $CKPT_DIR (a mounted bucket). FastChat's trainer
  resumes from the latest `checkpoint-*` in its output dir by itself; the head node also reports
  progress (global_step / max_steps of the latest checkpoint) to the managed-job controller.
* REHEARSAL mode (no `nvidia-smi`, no torch, or no CUDA; or REHEARSAL=1): rank 0 trains a
  linear model by minibatch SGD on synthetic data it generates (numpy), checkpoints every
  CKPT_SECONDS to $CKPT_DIR/rehearsal.npz, resumes from it when restarted, and writes its
  progress to $SKYBROKER_PROGRESS_FILE. The batches depend only on (SEED, step), so an
  interrupted-and-resumed run ends with exactly the weights of an uninterrupted one. Other ranks
  print the torchrun wiring they would use and exit.

Rehearsal knobs (envs): STEPS (total steps, default 400), CKPT_SECONDS (default 2),
REHEARSAL_STOP_AFTER (stop cleanly after this many steps in this run: a stand-in preemption),
REHEARSAL_SECONDS (pace the whole run to take this long). Under a managed job the steps follow
the job's clock (see `pacer`): the run lasts the job's duration, in job time.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

DIM = 64
ROWS = 4096
BATCH = 128


def has_gpu() -> bool:
    forced = os.environ.get("REHEARSAL", "").strip().lower()
    if forced in ("1", "true", "yes"):
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


def torchrun_args() -> list[str]:
    """The multi-node torchrun wiring, from the variables every node of a cluster gets."""
    ips = [ip for ip in os.environ.get("SKYPILOT_NODE_IPS", "127.0.0.1").splitlines() if ip]
    return ["torchrun",
            f"--nnodes={os.environ.get('SKYPILOT_NUM_NODES', '1')}",
            f"--nproc_per_node={os.environ.get('SKYPILOT_NUM_GPUS_PER_NODE', '1')}",
            f"--node_rank={os.environ.get('SKYPILOT_NODE_RANK', '0')}",
            f"--master_addr={ips[0]}", f"--master_port={os.environ.get('MASTER_PORT', '29500')}"]


# ---------------------------------------------------------------- GPU mode (FastChat + FSDP)

def fastchat_args(ckpt_dir: str) -> list[str]:
    env = os.environ
    return [os.path.expanduser(env.get("FASTCHAT_DIR", "~/FastChat")) + "/fastchat/train/train_mem.py",
            "--model_name_or_path", env.get("BASE_MODEL", "meta-llama/Llama-2-7b-hf"),
            "--data_path", os.path.expanduser(env.get(
                "DATA_PATH", "~/FastChat/data/dummy_conversation.json")),
            "--bf16", "True", "--tf32", "True",
            "--output_dir", ckpt_dir,
            "--num_train_epochs", env.get("EPOCHS", "3"),
            "--per_device_train_batch_size", env.get("PER_DEVICE_BATCH", "2"),
            "--gradient_accumulation_steps", env.get("GRAD_ACCUM", "8"),
            "--save_strategy", "steps", "--save_steps", env.get("SAVE_STEPS", "200"),
            "--save_total_limit", "3",
            "--learning_rate", "2e-5", "--weight_decay", "0.", "--warmup_ratio", "0.03",
            "--lr_scheduler_type", "cosine", "--logging_steps", "1",
            "--fsdp", "full_shard auto_wrap",
            "--fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer",
            "--model_max_length", env.get("MAX_LEN", "2048"),
            "--gradient_checkpointing", "True", "--lazy_preprocess", "True"]


def watch_hf_checkpoints(ckpt_dir: str, stop: threading.Event) -> None:
    """Head node: report global_step / max_steps of the newest HF checkpoint as progress."""
    while not stop.wait(30):
        states = glob.glob(os.path.join(ckpt_dir, "checkpoint-*", "trainer_state.json"))
        if not states:
            continue
        newest = max(states, key=lambda p: int(p.split("checkpoint-")[-1].split(os.sep)[0]))
        try:
            with open(newest) as f:
                st = json.load(f)
            if st.get("max_steps"):
                report_progress(st["global_step"] / st["max_steps"])
        except (OSError, ValueError, KeyError):
            continue


def train_gpu(ckpt_dir: str) -> int:
    cmd = torchrun_args() + fastchat_args(ckpt_dir)
    print("running:", " ".join(cmd), flush=True)
    stop = threading.Event()
    if os.environ.get("SKYPILOT_NODE_RANK", "0") == "0":
        threading.Thread(target=watch_hf_checkpoints, args=(ckpt_dir, stop), daemon=True).start()
    try:
        return subprocess.call(cmd)
    finally:
        stop.set()


# ---------------------------------------------------------------- REHEARSAL mode (numpy SGD)

def synthetic_problem(seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ROWS, DIM))
    w_true = rng.standard_normal(DIM)
    y = x @ w_true + 0.1 * rng.standard_normal(ROWS)
    return x, y, w_true


def sgd_step(w, x, y, seed: int, step: int, lr: float):
    import numpy as np

    idx = np.random.default_rng((seed, step)).integers(0, len(y), BATCH)
    xb, yb = x[idx], y[idx]
    grad = xb.T @ (xb @ w - yb) / BATCH
    return w - lr * grad


def load_checkpoint(path: str):
    import numpy as np

    if not os.path.exists(path):
        return None
    with np.load(path) as z:
        return z["w"].copy(), int(z["step"]), z["losses"].tolist()


def save_checkpoint(path: str, w, step: int, losses: list[float]) -> None:
    import numpy as np

    tmp = f"{path}.tmp.{os.getpid()}.npz"
    np.savez(tmp, w=w, step=step, losses=np.asarray(losses, dtype=float))
    os.replace(tmp, path)


def rehearse(ckpt_dir: str, steps: int, seed: int = 0, stop_after: int | None = None,
             ckpt_seconds: float = 2.0, log=print) -> dict:
    """Train (or resume training) the stand-in; return its summary."""
    import numpy as np

    os.makedirs(ckpt_dir, exist_ok=True)
    path = os.path.join(ckpt_dir, "rehearsal.npz")
    x, y, w_true = synthetic_problem(seed)
    state = load_checkpoint(path)
    if state is None:
        w, step, losses = np.zeros(DIM), 0, []
        log(f"rehearsal: starting from scratch ({steps} steps)")
    else:
        w, step, losses = state
        log(f"rehearsal: resumed from checkpoint at step {step}")
    allowed = pacer(steps, step)
    last_ckpt, ran = time.time(), 0
    while step < steps:
        if stop_after is not None and ran >= stop_after:
            save_checkpoint(path, w, step, losses)
            report_progress(step / steps)
            log(f"rehearsal: stopping after {ran} steps this run (REHEARSAL_STOP_AFTER), "
                f"checkpoint at step {step}")
            return {"step": step, "finished": False}
        w = sgd_step(w, x, y, seed, step, lr=0.05)
        step += 1
        ran += 1
        if step % 50 == 0 or step == steps:
            losses.append(float(np.mean((x @ w - y) ** 2)))
            log(f"step {step}/{steps} loss {losses[-1]:.5f}")
        wait_for(allowed, step)
        if time.time() - last_ckpt >= ckpt_seconds or step == steps:
            save_checkpoint(path, w, step, losses)
            report_progress(step / steps)
            last_ckpt = time.time()
    result = {"step": step, "finished": True, "loss": float(np.mean((x @ w - y) ** 2)),
              "weight_error": float(np.linalg.norm(w - w_true)),
              "w_sha": hashlib.sha256(w.tobytes()).hexdigest()[:16]}
    write_atomic(os.path.join(ckpt_dir, "result.json"), json.dumps(result))
    log(f"rehearsal: done: {json.dumps(result)}")
    return result


def main() -> int:
    ckpt_dir = os.path.expanduser(os.environ.get("CKPT_DIR", "~/checkpoints"))
    if has_gpu():
        return train_gpu(ckpt_dir)
    rank = os.environ.get("SKYPILOT_NODE_RANK", "0")
    print(f"REHEARSAL (no GPU) on rank {rank}; GPU mode would run: "
          + " ".join(torchrun_args()) + " fastchat/train/train_mem.py ...", flush=True)
    if rank != "0":
        return 0  # the stand-in trains on the head node only
    stop_after = os.environ.get("REHEARSAL_STOP_AFTER")
    rehearse(ckpt_dir, steps=int(os.environ.get("STEPS", "400")),
             seed=int(os.environ.get("SEED", "0")),
             stop_after=int(stop_after) if stop_after else None,
             ckpt_seconds=float(os.environ.get("CKPT_SECONDS", "2")),
             log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
