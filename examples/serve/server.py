"""An OpenAI-compatible model server: vLLM on a GPU, or a small CPU stand-in for rehearsals.

Run by examples/serve/serve.yaml (which also waits for readiness and sends a smoke request).

* GPU mode: `python -m vllm.entrypoints.openai.api_server` for $MODEL on $PORT, tensor-parallel
  over the node's GPUs, with the weights cached in $CKPT_DIR (a mounted bucket): a replacement
  spot node starts from the cache instead of downloading the model again.
* REHEARSAL mode (no `nvidia-smi`, no torch, or no CUDA; or REHEARSAL=1): a stdlib HTTP server
  with the same routes (`GET /health`, `GET /v1/models`, `POST /v1/completions`,
  `POST /v1/chat/completions`) answering from a character bigram model that it trains on a
  corpus it generates (seeded). The trained model is saved to $CKPT_DIR/bigram.npz and loaded
  from there on a restart, like the GPU mode's weight cache.

Knobs: PORT (8000), MODEL_ID (the served model name), SERVE_MAX_COMPLETIONS (exit after this
many completions; 0 = serve forever; rehearsals use it to end).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CORPUS = ("spot instances are cheap until the deadline comes near then on demand is the safe "
          "choice the broker weighs price against time and moves the job where capacity is")


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


def serve_vllm(port: int, ckpt_dir: str) -> None:
    gpus = os.environ.get("SKYPILOT_NUM_GPUS_PER_NODE", "1")
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", os.environ.get("MODEL", "lmsys/vicuna-7b-v1.5"),
           "--served-model-name", os.environ.get("MODEL_ID", "vicuna-7b-v1.5"),
           "--host", "0.0.0.0", "--port", str(port), "--tensor-parallel-size", gpus,
           "--download-dir", ckpt_dir]
    print("running:", " ".join(cmd), flush=True)
    os.execv(sys.executable, cmd)


# ---------------------------------------------------------------- REHEARSAL mode

def train_bigram(seed: int = 0, words: int = 200_000):
    """Byte-bigram counts of a generated corpus (real work: ~1 MB of text)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.asarray(CORPUS.split())
    text = " ".join(vocab[rng.integers(0, len(vocab), words)]).encode()
    b = np.frombuffer(text, dtype=np.uint8)
    counts = np.zeros((256, 256), dtype=np.int64)
    np.add.at(counts, (b[:-1], b[1:]), 1)
    return counts


def load_or_train(ckpt_dir: str, log=print):
    import numpy as np

    path = os.path.join(ckpt_dir, "bigram.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            log(f"server: loaded the model from checkpoint {path}")
            return z["counts"].copy()
    t = time.time()
    counts = train_bigram()
    os.makedirs(ckpt_dir, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}.npz"
    np.savez(tmp, counts=counts)
    os.replace(tmp, path)
    log(f"server: trained the model in {time.time() - t:.2f}s, saved to {path}")
    return counts


def generate(counts, prompt: str, max_tokens: int, seed: int = 0) -> str:
    import numpy as np

    rng = np.random.default_rng(seed)
    last = (prompt.encode() or b" ")[-1]
    out = bytearray()
    for _ in range(max_tokens):
        row = counts[last]
        if row.sum() == 0:
            row = counts[ord(" ")]
        last = int(rng.choice(256, p=row / row.sum()))
        out.append(last)
    return out.decode(errors="replace")


def make_handler(counts, model_id: str, on_completion):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # keep the job log readable
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                self._json(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": model_id, "object": "model"}]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            try:
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            except ValueError:
                return self._json(400, {"error": {"message": "body is not JSON"}})
            n = int(req.get("max_tokens") or 16)
            if self.path == "/v1/completions":
                text = generate(counts, str(req.get("prompt", "")), n)
                choice = {"index": 0, "text": text, "finish_reason": "length"}
            elif self.path == "/v1/chat/completions":
                msgs = req.get("messages") or [{"content": ""}]
                text = generate(counts, str(msgs[-1].get("content", "")), n)
                choice = {"index": 0, "finish_reason": "length",
                          "message": {"role": "assistant", "content": text}}
            else:
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            self._json(200, {"object": "text_completion", "model": model_id, "choices": [choice],
                             "usage": {"completion_tokens": n}})
            on_completion()

    return Handler


def serve_rehearsal(port: int, ckpt_dir: str) -> None:
    counts = load_or_train(ckpt_dir, log=lambda m: print(m, flush=True))
    limit = int(os.environ.get("SERVE_MAX_COMPLETIONS", "0"))
    served = [0]
    lock = threading.Lock()

    def on_completion() -> None:
        with lock:
            served[0] += 1
            if limit and served[0] >= limit:
                print(f"server: served {served[0]} completion(s), exiting "
                      "(SERVE_MAX_COMPLETIONS)", flush=True)
                threading.Thread(target=httpd.shutdown, daemon=True).start()

    model_id = os.environ.get("MODEL_ID", "vicuna-7b-v1.5")
    httpd = ThreadingHTTPServer(("0.0.0.0", port), make_handler(counts, model_id, on_completion))
    print(f"server: REHEARSAL stand-in for {model_id} on port {port}", flush=True)
    httpd.serve_forever()
    httpd.server_close()


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    ckpt_dir = os.path.expanduser(os.environ.get("CKPT_DIR", "~/model_cache"))
    if has_gpu():
        serve_vllm(port, ckpt_dir)
    serve_rehearsal(port, ckpt_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
