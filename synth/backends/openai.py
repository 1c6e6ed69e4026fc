"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM's `vllm serve`, SGLang,
llama.cpp's server, Ollama, hosted APIs).

- Requests run concurrently (asyncio + httpx), at most `concurrency` at a time.
- 429, 5xx, timeouts, dropped connections and malformed bodies are retried with exponential backoff and
  full jitter (a server's `Retry-After` is honoured); other 4xx answers are final for that request.
  401/403 (bad key) and 404 (wrong URL or model) stop the run: every request would fail the same way.
- `n` is sent to the server (`n_mode="auto"`); a server that returns fewer choices than asked has the rest
  requested one by one, and is not asked for `n` again. `n_mode="emulate"` never sends it.
- The key is read from the environment variable `api_key_env` (default `OPENAI_API_KEY`); without one, no
  Authorization header is sent (local servers need none).

>>> from synth.backends.openai import OpenAIBackend
>>> backend = OpenAIBackend(model="Qwen/Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:8000/v1", concurrency=64)
>>> backend.info()["concurrency"]
64
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Sequence

from synth.backends import BackendError, ChatRequest, ChatResult, Completion, OnResult

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
FATAL_STATUS = {
    401: "the server refused the API key",
    403: "the server refused the API key",
    404: "not found: check --base-url (it should end in /v1) and --model",
}


class _Retryable(Exception):
    pass


class _Final(Exception):
    pass


class _Fatal(Exception):
    pass


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        n_mode: str = "auto",
    ):
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise BackendError("the openai backend needs httpx: pip install 'posttrain[openai]'") from None
        if n_mode not in ("auto", "emulate"):
            raise BackendError(f"n_mode must be auto or emulate, not {n_mode!r}")
        if concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, got {concurrency}")
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"--base-url must start with http:// or https://, got {base_url!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.n_mode = n_mode
        self.sends_n = n_mode == "auto"
        self.retries = 0  # attempts beyond the first, over the backend's life (for the manifest)
        self.failures = 0

    # -- one HTTP exchange -----------------------------------------------------------------------------

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _payload(self, req: ChatRequest, n: int, seed: int | None) -> dict:
        body = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in req.messages],
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
        }
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        if req.stop:
            body["stop"] = list(req.stop)
        return body

    async def _post(self, client, body: dict) -> list[Completion]:
        import httpx

        try:
            resp = await client.post(f"{self.base_url}/chat/completions", json=body, headers=self._headers())
        except httpx.TimeoutException:
            raise _Retryable(f"no answer within {self.timeout:g}s") from None
        except httpx.TransportError as e:
            raise _Retryable(f"connection failed ({type(e).__name__}: {e})") from None
        if resp.status_code in FATAL_STATUS:
            hint = FATAL_STATUS[resp.status_code]
            if resp.status_code in (401, 403):
                hint += f" (the key comes from ${self.api_key_env}"
                hint += ", which is set)" if os.environ.get(self.api_key_env) else ", which is not set)"
            raise _Fatal(f"HTTP {resp.status_code} from {self.base_url}: {hint}; {_error_text(resp)}")
        if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
            raise _Retryable(f"HTTP {resp.status_code}: {_error_text(resp)}", _retry_after(resp))
        if resp.status_code != 200:
            raise _Final(f"HTTP {resp.status_code}: {_error_text(resp)}")
        return _parse(resp)

    async def _post_with_retries(self, client, body: dict) -> list[Completion]:
        attempt = 0
        while True:
            try:
                return await self._post(client, body)
            except _Retryable as e:
                if attempt >= self.max_retries:
                    raise _Final(f"{e.args[0]} (gave up after {attempt + 1} attempts)") from None
                retry_after = e.args[1] if len(e.args) > 1 else None
                attempt += 1
                self.retries += 1
                await asyncio.sleep(self.delay(attempt, retry_after))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based): the server's Retry-After if it sent one,
        else exponential backoff with full jitter (uniform in [0, backoff * 2**(attempt-1)], capped)."""
        if retry_after is not None:
            return min(self.max_backoff, retry_after)
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * random.random()

    # -- one request (n samples) -----------------------------------------------------------------------

    async def _one(self, client, gate: asyncio.Semaphore, req: ChatRequest) -> ChatResult:
        completions: list[Completion] = []
        try:
            # Greedy samples are asked for one by one: some servers (vLLM) refuse n > 1 at temperature 0.
            if (self.sends_n and req.temperature > 0) or req.n == 1:
                async with gate:
                    completions = await self._post_with_retries(client, self._payload(req, req.n, req.seed))
                if len(completions) > req.n:
                    completions = completions[: req.n]
                if len(completions) < req.n and req.n > 1:
                    self.sends_n = False  # the server ignores n: emulate it from now on

            async def single(k: int) -> list[Completion]:
                # Distinct seeds, or every emulated sample of a seeded request would be the same.
                seed = None if req.seed is None else req.seed + k
                async with gate:
                    return await self._post_with_retries(client, self._payload(req, 1, seed))

            missing = range(len(completions), req.n)
            for got in await asyncio.gather(*(single(k) for k in missing)):
                completions.extend(got[:1])
        except _Final as e:
            self.failures += 1
            return ChatResult(error=str(e))
        return ChatResult(completions=completions)

    async def _agenerate(
        self, requests: Sequence[ChatRequest], on_result: OnResult | None
    ) -> list[ChatResult]:
        import httpx

        gate = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)

        async def reported(i: int, client) -> ChatResult:
            res = await self._one(client, gate, requests[i])
            if on_result is not None:
                on_result(i, res)
            return res

        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), limits=limits) as client:
            tasks = [asyncio.ensure_future(reported(i, client)) for i in range(len(requests))]
            try:
                return list(await asyncio.gather(*tasks))
            except _Fatal:
                for t in tasks:
                    t.cancel()
                raise

    def generate(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[ChatResult]:
        try:
            return _run(self._agenerate(requests, on_result))
        except _Fatal as e:
            raise BackendError(str(e)) from None

    def info(self) -> dict:
        return {
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout,
            "max_retries": self.max_retries,
            "n_mode": self.n_mode
            if self.sends_n or self.n_mode == "emulate"
            else "auto (server ignored n: emulated)",
            "retries": self.retries,
            "failed_requests": self.failures,
        }

    def close(self) -> None:
        pass


def _run(coro):
    """`asyncio.run`, also from inside a running event loop (a notebook): then on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _error_text(resp) -> str:
    try:
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:300]
    except ValueError:
        return resp.text[:300] or "(empty body)"


def _retry_after(resp) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _parse(resp) -> list[Completion]:
    """Read a chat-completions body defensively; anything unexpected is a (retryable) malformed answer."""
    try:
        data = resp.json()
    except ValueError:
        raise _Retryable(f"malformed response (not JSON): {resp.text[:120]!r}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise _Retryable(f"malformed response (no choices): {str(data)[:120]!r}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
    total = usage.get("completion_tokens") if isinstance(usage.get("completion_tokens"), int) else None
    texts, reasons = [], []
    for c in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
        message = c.get("message") if isinstance(c, dict) else None
        if not isinstance(message, dict):
            raise _Retryable(f"malformed response (choice without message): {str(c)[:120]!r}")
        content = message.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise _Retryable(f"malformed response (content is {type(content).__name__})")
        texts.append(content)
        reason = c.get("finish_reason")
        reasons.append("length" if reason == "length" else "stop")
    # usage counts all choices together: split it in proportion to the text lengths.
    counts: list[int | None] = [None] * len(texts)
    if total is not None:
        if len(texts) == 1:
            counts = [total]
        else:
            weights = [len(t) + 1 for t in texts]
            counts = [total * w // sum(weights) for w in weights]
            counts[-1] += total - sum(counts)
    return [Completion(t, r, prompt_tokens, k) for t, r, k in zip(texts, reasons, counts, strict=True)]
