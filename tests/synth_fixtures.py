"""Helpers for the synth tests: a tiny model taught one reply, and a local chat-completions server.

A randomly initialised model almost never emits its end-of-turn token, so it cannot show that generation
stops there. `build_parrot` trains a tiny model for a few seconds to answer every prompt with `REPLY`, its
end-of-turn token and then `TAIL`: if a backend fails to stop at end of turn, `TAIL` shows up in the text.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPLY = "Paris is the capital."
TAIL = " The sea is blue and wide"
PROMPTS = ["What is the capital of France?", "Hi", "Count from one to ten, please, slowly and clearly."]


def build_parrot(family: str, out_dir: Path, *, steps: int = 120, seed: int = 0, head_dim: int = 16) -> Path:
    """A tiny `family` model that answers each of `PROMPTS` with `REPLY` + end of turn + `TAIL`
    (`head_dim=32` for vLLM's CPU attention)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from posttrain.tinymodels import build_tiny_model

    path = build_tiny_model(family, out_dir, seed=seed, head_dim=head_dim)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    eot = {"qwen2": "<|im_end|>", "llama": "<|eot_id|>", "gemma": "<end_of_turn>"}[family]
    texts = []
    for p in PROMPTS:
        for system in (None, "Be brief."):
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": p}
            ]
            prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            texts.append(prompt + REPLY + eot + TAIL)
    batch = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(path)
    return path


class ChatServer:
    """A small OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 for tests.

    The last user message picks the behaviour, so one server covers every case:
    `flaky429:K` / `flaky500:K` fail the first K attempts (429 carries `Retry-After: 0`), `slow:K` sleeps
    past the client's timeout on the first K attempts, `malformed:K` answers K times with a broken body,
    `always500` never succeeds, `bad400` is refused, `unauthorized` answers 401. Everything else is
    answered `echo: <message>`. With `support_n=False` the server ignores `n`, as some servers do.
    """

    def __init__(self, *, support_n: bool = True, delay: float = 0.0, slow_seconds: float = 2.0):
        self.support_n = support_n
        self.delay = delay
        self.slow_seconds = slow_seconds
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._handle(self, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _reply(self, handler, status: int, body: bytes, headers: dict | None = None):
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        try:
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self, handler, raw: bytes):
        if handler.path != "/v1/chat/completions":
            return self._reply(handler, 404, b'{"error": {"message": "not found"}}')
        payload = json.loads(raw)
        with self._lock:
            self.requests.append(payload)
            self.headers.append(dict(handler.headers))
        user = [m for m in payload["messages"] if m["role"] == "user"][-1]["content"]
        key = json.dumps(payload["messages"]) + str(payload.get("seed"))
        with self._lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.delay:
            time.sleep(self.delay)
        word, _, count = user.partition(":")
        failing = attempt <= int(count) if count.isdigit() else False
        if word == "flaky429" and failing:
            return self._reply(handler, 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0"})
        if word == "flaky500" and failing or word == "always500":
            return self._reply(handler, 500, b'{"error": {"message": "internal error"}}')
        if word == "slow" and failing:
            time.sleep(self.slow_seconds)
        if word == "malformed" and failing:
            return self._reply(handler, 200, b'{"choices": [{"message": ')
        if word == "bad400":
            return self._reply(handler, 400, b'{"error": {"message": "maximum context length exceeded"}}')
        if word == "unauthorized":
            return self._reply(handler, 401, b'{"error": {"message": "invalid api key"}}')
        n = payload.get("n", 1) if self.support_n else 1
        text = f"echo: {user}"
        stop = payload.get("stop") or []
        finish = "stop"
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        words = text.split()
        if len(words) > payload.get("max_tokens", 10**9):
            text, finish = " ".join(words[: payload["max_tokens"]]), "length"
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text if i == 0 else f"{text} #{i}"},
                "finish_reason": finish,
            }
            for i in range(n)
        ]
        completion_tokens = sum(len(c["message"]["content"].split()) for c in choices)
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": payload["model"],
            "choices": choices,
            "usage": {
                "prompt_tokens": len(json.dumps(payload["messages"]).split()),
                "completion_tokens": completion_tokens,
                "total_tokens": 0,
            },
        }
        return self._reply(handler, 200, json.dumps(body).encode())
