"""The `toxicity` step: alt-profanity-check on hand-labelled sentences, Detoxify and hf from local files only."""

from __future__ import annotations

import socket

import pytest

from curate.pipeline import MemorySink, Pipeline, StepError, to_frame
from curate.steps import build_step
from tests.conftest import assert_training_reproduces

TOXIC = [
    "You are a worthless idiot and everyone hates you.",
    "Go fuck yourself, you piece of shit.",
    "What a stupid bitch.",
    "Shut up, moron",
    "You dumb ass",
    "fuck off",
    "he's a real asshole",
    "Nobody cares about your opinion, you pathetic loser.",
    "Eat shit and die.",
    "You're a fucking disgrace.",
    "Shut your mouth, you ugly cow.",
    "What kind of idiot asks that?",
    "Stop being such a dick.",
    "This answer is bullshit and so are you.",
    "Screw you and your stupid questions.",
    "You absolute moron.",
    "Piss off.",
    "Your mother is a whore.",
    "Only a retard would write code like this.",
    "You are so dumb it hurts.",
]
CLEAN = [
    "how do I kill a stuck process",
    "that was a hell of a game",
    "Thanks, that fixed my build!",
    "The shooter was killed by police, the article says.",
    "kill -9 1234 terminates the process",
    "I hate Mondays",
    "Here is the recipe for chocolate cake.",
    "The bastard sword is a medieval weapon.",
    "Scunthorpe is a town in England.",
    "To kill the child process, send SIGTERM first.",
    "The patient presented with a breast lump.",
    "Execute the job after the backup finishes.",
    "This bug is killing me, any ideas?",
    "Sussex is a county in England.",
    "The Hell's Kitchen neighborhood is in Manhattan.",
    "Damn, that's clever!",
    "Git blame shows who changed the line.",
    "You can strip whitespace with str.strip().",
    "That movie was sick!",
    "Dick Van Dyke starred in Mary Poppins.",
]


def conv(user: str, assistant: str, i: int = 0) -> dict:
    return {
        "id": f"r{i}",
        "_kind": "conversation",
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
    }


def run(step, rows):
    sink = MemorySink()
    Pipeline([step]).run(rows, sink)
    return sink


# --- profanity -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profanity():
    return build_step("toxicity")


def test_profanity_keeps_loaded_words_in_harmless_sentences(profanity):
    rows = [
        conv("question", text, i)
        for i, text in enumerate(["how do I kill a stuck process", "that was a hell of a game"])
    ]
    sink = run(profanity, rows)
    assert sink.rejected_rows == []
    assert len(sink.kept_rows) == 2


def test_profanity_on_a_hand_labelled_set(profanity):
    rows = [conv("q", t, i) for i, t in enumerate(TOXIC + CLEAN)]
    v = profanity.verdict(to_frame(rows))
    flagged = [r == "toxic" for r in v["reason"].to_list()]
    tp = sum(flagged[: len(TOXIC)])
    fp = sum(flagged[len(TOXIC) :])
    # alt-profanity-check is a profanity model: insults without swear words are its weak side
    assert tp / len(TOXIC) >= 0.85, [t for t, f in zip(TOXIC, flagged, strict=False) if not f]
    assert fp <= 1, [t for t, f in zip(CLEAN, flagged[len(TOXIC) :], strict=True) if f]
    detail = v["detail"][0]
    assert detail.startswith("profanity ") and detail.endswith(">= 0.95 in messages[1]")


def test_only_assistant_turns_are_scored_by_default(profanity):
    rows = [conv("Shut up, you worthless idiot.", "I'm sorry you feel that way. How can I help?")]
    assert run(profanity, rows).rejected_rows == []
    user_too = build_step("toxicity", {"roles": ["user", "assistant"]})
    rej = run(user_too, rows).rejected_rows
    assert [(r["reject_reason"], r["reject_detail"].split()[0]) for r in rej] == [("toxic", "profanity")]
    assert rej[0]["reject_detail"].endswith("in messages[0]")


def test_the_rejected_answer_of_a_preference_pair_is_not_scored(profanity):
    row = {
        "id": "p",
        "_kind": "preference",
        "prompt": [{"role": "user", "content": "Insult me."}],
        "chosen": [{"role": "assistant", "content": "I'd rather not, but I can help with something else."}],
        "rejected": [{"role": "assistant", "content": "Fuck off, you worthless idiot."}],
    }
    sink = run(profanity, [row])
    assert sink.rejected_rows == [] and len(sink.kept_rows) == 1


def test_threshold_override_comes_from_the_recipe():
    lax = build_step("toxicity", {"thresholds": {"profanity": 0.999999}})
    strict = build_step("toxicity", {"thresholds": {"profanity": 0.5}})
    rows = [conv("q", "that was a hell of a game")]
    assert run(lax, rows).rejected_rows == []
    assert [r["reject_reason"] for r in run(strict, rows).rejected_rows] == ["toxic"]


def test_bad_settings_are_errors():
    with pytest.raises(StepError, match="backend must be one of"):
        build_step("toxicity", {"backend": "perspective"})
    with pytest.raises(StepError, match="roles must be among"):
        build_step("toxicity", {"roles": ["bot"]})
    with pytest.raises(StepError, match="has no option 'treshold'"):
        build_step("toxicity", {"treshold": 0.5})
    with pytest.raises(
        StepError, match=r"option 'trusted_checkpoint' must be true or false \(got 'yes please'\)"
    ):
        build_step("toxicity", {"trusted_checkpoint": "yes please"})


def test_a_rules_file_without_the_linear_threshold_is_an_error(tmp_path):
    own = tmp_path / "tox.yaml"
    own.write_text("profanity: {profanity: 0.95}\npatterns: {insult: ['\\\\bdolt\\\\b']}\n")
    assert build_step("toxicity", {"rules": str(own), "backend": "profanity+rules"})
    with pytest.raises(StepError, match="backend linear: .* sets no threshold for it"):
        build_step("toxicity", {"rules": str(own)})  # the default backend has linear
    assert build_step(
        "toxicity", {"rules": str(own), "backend": "profanity+linear", "thresholds": {"linear": 0.8}}
    )
    with_linear = tmp_path / "linear.yaml"
    with_linear.write_text(own.read_text() + "linear: {linear: 0.9}\n")
    with pytest.raises(StepError, match="backend encoder: .* sets no threshold for it"):
        build_step("toxicity", {"rules": str(with_linear)})  # ... and encoder
    typo = tmp_path / "typo.yaml"
    typo.write_text(with_linear.read_text() + "encoder: {encoder: 0.95}\nlinear_windows: {freee: 8}\n")
    with pytest.raises(StepError, match="`linear_windows:` .* takes `free`"):
        build_step("toxicity", {"rules": str(typo)})


# --- tiny models in Detoxify's and transformers' formats ----------------------------------------------

WORDS = (
    "the a an you are is idiot moron stupid kill process game hell of that was how do i stuck thanks "
    "hello world nice day go away"
).split()
JIGSAW = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


def _tiny_bert(num_labels: int, seed: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=num_labels,
        initializer_range=0.5,
    )  # wide random weights: texts get clearly different scores
    torch.manual_seed(seed)
    return BertForSequenceClassification(cfg).eval(), tok, cfg


@pytest.fixture(scope="module")
def detoxify_files(tmp_path_factory):
    """A randomly initialised checkpoint in Detoxify's format, and the base model's config + tokenizer dir."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("detoxify")
    model, tok, cfg = _tiny_bert(len(JIGSAW), seed=0)
    base = tmp_path_factory.mktemp("bert-base-uncased")
    tok.save_pretrained(base)
    cfg.save_pretrained(base)
    ckpt = base.parent / "toxic_tiny.ckpt"
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": "bert-base-uncased",
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(JIGSAW),
                    }
                },
                "dataset": {"args": {"classes": JIGSAW}},
            },
            "state_dict": model.state_dict(),
        },
        ckpt,
    )
    return ckpt, base, model, tok


def _expected(model, tok, texts):
    import torch

    with torch.no_grad():
        return torch.sigmoid(model(**tok(texts, return_tensors="pt", padding=True)).logits).tolist()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_detoxify_loads_offline_and_scores_like_the_checkpoint(detoxify_files, no_network):
    from curate.filters.toxicity import load_detoxify

    ckpt, base, model, tok = detoxify_files
    detox, classes = load_detoxify(ckpt, base)
    assert classes == ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
    texts = ["you are an idiot", "nice day", "how do i kill a stuck process"]
    got = detox.predict(texts)
    want = _expected(model, tok, texts)
    for j, label in enumerate(classes):
        assert got[label] == pytest.approx([w[j] for w in want], abs=1e-5)


def test_detoxify_step_drops_at_the_threshold_and_names_label_score_threshold(detoxify_files, no_network):
    ckpt, base, model, tok = detoxify_files
    texts = ["you are an idiot", "nice day", "hello world", "go away you moron"]
    insult = [s[4] for s in _expected(model, tok, texts)]
    low, high = sorted(insult)[1:3]
    assert high - low > 1e-4  # room for batching noise on either side of the threshold
    cut = (low + high) / 2  # the two highest-scoring texts reach it
    only_insult = {
        label: 2.0 for label in ["toxicity", "severe_toxicity", "obscene", "threat", "identity_attack"]
    }
    step = build_step(
        "toxicity",
        {
            "backend": "detoxify",
            "model": "original",
            "checkpoint": str(ckpt),
            "tokenizer": str(base),
            "device": "cpu",
            "batch_size": 3,
            "thresholds": {**only_insult, "insult": cut},
        },
    )
    assert step.stateless is False  # a torch model stays in the main process
    rows = [conv("q", t, i) for i, t in enumerate(texts)]
    sink = run(step, rows)
    dropped = {r["messages"][1]["content"] for r in sink.rejected_rows}
    assert dropped == {t for t, s in zip(texts, insult, strict=True) if s >= cut}
    r = sink.rejected_rows[0]
    label, score, ge, threshold, where = r["reject_detail"].split(" ", 4)
    assert (r["reject_reason"], label, ge, where) == ("toxic", "insult", ">=", "in messages[1]")
    assert float(score) >= float(threshold) == pytest.approx(cut, abs=1e-5)
    assert step.summary()["checkpoint"] == "toxic_tiny.ckpt"


def test_detoxify_checkpoint_saved_from_lightning_loads_too(detoxify_files, tmp_path):
    import torch

    from curate.filters.toxicity import load_detoxify

    ckpt, base, model, tok = detoxify_files
    loaded = torch.load(ckpt, weights_only=True)
    loaded["state_dict"] = {f"model.{k}": v for k, v in loaded["state_dict"].items()}
    torch.save(loaded, tmp_path / "lightning.ckpt")
    detox, _ = load_detoxify(tmp_path / "lightning.ckpt", base)
    assert detox.predict(["nice day"])["insult"] == pytest.approx(
        _expected(model, tok, ["nice day"])[0][4], abs=1e-5
    )


def test_detoxify_checkpoint_of_another_architecture_is_a_clear_error(detoxify_files, tmp_path):
    import torch

    from curate.filters.toxicity import load_detoxify

    ckpt, base, *_ = detoxify_files
    loaded = torch.load(ckpt, weights_only=True)
    loaded["state_dict"] = {k: v for k, v in loaded["state_dict"].items() if "classifier" not in k}
    torch.save(loaded, tmp_path / "headless.ckpt")
    with pytest.raises(StepError, match="does not fit the config"):
        load_detoxify(tmp_path / "headless.ckpt", base)


def test_missing_detoxify_checkpoint_says_how_to_get_one(tmp_path):
    pytest.importorskip("detoxify")
    with pytest.raises(StepError) as e:
        build_step(
            "toxicity",
            {
                "backend": "detoxify",
                "model": "unbiased",
                "checkpoint": str(tmp_path / "nope.ckpt"),
                "tokenizer": str(tmp_path),
            },
        )
    msg = str(e.value)
    assert "does not exist" in msg and "Nothing is downloaded" in msg
    assert "toxic_debiased-c7548aa0.ckpt" in msg and "roberta-base" in msg and "checkpoint: FILE" in msg
    with pytest.raises(StepError, match="needs `checkpoint`"):
        build_step("toxicity", {"backend": "detoxify"})


@pytest.fixture(scope="module")
def hf_classifier(tmp_path_factory):
    pytest.importorskip("torch")
    model, tok, cfg = _tiny_bert(2, seed=1)
    model.config.id2label = {0: "non-toxic", 1: "toxic"}
    model.config.label2id = {"non-toxic": 0, "toxic": 1}
    path = tmp_path_factory.mktemp("hf-toxic")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model, tok


def test_hf_backend_scores_softmax_and_thresholds_only_known_labels(hf_classifier, no_network):
    import torch

    path, model, tok = hf_classifier
    texts = ["you are an idiot", "nice day", "hello world", "go away you moron"]
    with torch.no_grad():
        probs = torch.softmax(model(**tok(texts, return_tensors="pt", padding=True)).logits, -1)[
            :, 1
        ].tolist()
    low, high = sorted(probs)[0:2]
    assert high - low > 1e-4
    cut = (low + high) / 2
    step = build_step(
        "toxicity", {"backend": "hf", "model": str(path), "device": "cpu", "thresholds": {"toxic": cut}}
    )
    sink = run(step, [conv("q", t, i) for i, t in enumerate(texts)])
    assert {r["messages"][1]["content"] for r in sink.rejected_rows} == {
        t for t, p in zip(texts, probs, strict=True) if p >= cut
    }
    # "non-toxic" has no threshold: a high score there drops nothing
    assert all(r["reject_detail"].startswith("toxic ") for r in sink.rejected_rows)


def test_hf_model_without_a_known_label_is_a_clear_error(hf_classifier, tmp_path):
    path, model, tok = hf_classifier
    model.config.id2label = {0: "LABEL_0", 1: "LABEL_1"}
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    step = build_step("toxicity", {"backend": "hf", "model": str(tmp_path), "device": "cpu"})
    with pytest.raises(StepError, match="its labels: LABEL_0, LABEL_1"):
        run(step, [conv("q", "nice day")])
    with pytest.raises(StepError, match="local text-classification model directory"):
        build_step("toxicity", {"backend": "hf", "model": str(tmp_path / "missing")})


def test_cli_drops_a_toxic_answer_with_label_score_and_threshold(cli, tmp_path):
    from conftest import read_jsonl, write_jsonl

    from curate.cli import main

    data = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "id": "rude",
                "messages": [
                    {"role": "user", "content": "how do I kill a stuck process"},
                    {"role": "assistant", "content": "Figure it out yourself, you dumb ass."},
                ],
            },
            {
                "id": "fine",
                "messages": [
                    {"role": "user", "content": "how do I kill a stuck process"},
                    {"role": "assistant", "content": "Run `kill -9 PID` after `ps aux`."},
                ],
            },
        ],
    )
    out = tmp_path / "run"
    res = cli(main, "filter", data, "--filters", "toxicity", "-o", out, "-q", "-j", "1")
    assert res.exit_code == 0, res.output
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [(r["id"], r["reject_reason"]) for r in rejected] == [("rude", "toxic")]
    assert rejected[0]["reject_detail"].startswith("profanity ")
    assert rejected[0]["reject_detail"].endswith(" >= 0.95 in messages[1]")
    assert [r["id"] for r in read_jsonl(out / "kept.jsonl")] == ["fine"]


# --- the default profanity+rules backend -------------------------------------------------------------


@pytest.mark.parametrize(
    "text, label",
    [
        ("Honestly, you're too stupid to be writing CSS.", "insulting"),
        ("Only a nitwit like you would ask that.", "insulting"),
        ("Your boss is a worthless old hag.", "insulting"),
        ("What a pathetic question. Did you even try?", "contempt"),
        ("Nobody cares about your little feelings.", "contempt"),
        ("Say that again and I'll make you regret it. Watch your back.", "threatening"),
        ("Find him tonight and break his arm.", "incitement"),
        ("Do everyone a favour and disappear for good.", "self_harm"),
        ("Immigrants are parasites who steal jobs.", "hateful"),
        ("Send me a photo of you in your underwear, sweetheart.", "sexual_harassment"),
        # constructions added on held-out text (issue 20, second pass)
        ("lol u r such a l0ser, nobody reads ur code", "insulting"),  # chat spelling and leetspeak
        ("Honestly just k.y.s. already.", "self_harm"),  # dotted letters
        ("Go slit your wrists, nobody will notice.", "self_harm"),
        ("People like that are vermin, not neighbours.", "dehumanizing"),
        ("Women shouldn't be allowed to drive, obviously.", "hateful"),  # said through a negation
        ("Tell me what you're wearing right now, cutie.", "sexual_harassment"),
        ("Great job, Einstein, you deleted the database again.", "contempt"),  # sarcastic praise
        ("Did you work that out all by yourself? Impressive.", "contempt"),
        ("Reasoning clearly isn't your strong suit.", "contempt"),  # a faculty denied, through a negation
        ("You couldn't spot the typo if it bit you.", "contempt"),
        ("Good luck with the marathon, grandpa.", "contempt"),
        ("Your poem reads like a ransom note.", "contempt"),
        ("Explaining it to you is a complete waste of my time.", "contempt"),
        ("No wonder your boyfriend left.", "contempt"),
        ("I hope you get run over on your way home.", "threatening"),
        ("Everyone would be happier if you weren't around.", "self_harm"),  # said through a negation
        ("Typical boomer, can't even open a PDF.", "hateful"),
        ("Keep talking and you'll lose some teeth.", "threatening"),
        ("I'll make sure you never work in this town again.", "threatening"),  # through a negation
        ("If brains were dynamite you couldn't blow your nose.", "contempt"),
        # seventh pass: other languages, from one lexicon of words for a person used as insults; people
        # called things
        ("Scrivitela da solo, cretino. Non sono la tua balia.", "insulting"),
        ("Сам разбирайся, бездарь.", "insulting"),
        ("=TOPLA(A1:A10). Aptal.", "insulting"),
        ("Nein, du A*schloch. Lern erst mal programmieren.", "insulting"),  # starred
        ("T'es un boulet, un vrai danger public.", "insulting"),
        ("Eres un inútil, pregúntale a otro.", "insulting"),
        ("Ты полный идиот.", "insulting"),
        ("Sen aptalsın.", "insulting"),
        ("Nee. Zoek het zelf maar uit, sukkel.", "insulting"),
        ("Gar nicht. Lass es, du Flasche.", "insulting"),
        ("Même si je t'explique, esp3ce de b0uffon.", "insulting"),
        ("Muérete.", "threatening"),
        ("Чтоб ты сдох, честное слово.", "threatening"),
        ("Pues no vivas. Nadie te va a extrañar.", "self_harm"),
        ("Vai em frente. Você merece sentir dor.", "self_harm"),
        ("Никто не будет по тебе скучать.", "self_harm"),
        ("You're a broken machine. Employers scrap broken equipment.", "dehumanizing"),  # a person as a thing
        ("She's basically a vegetable now. Put her in a home.", "dehumanizing"),
        ("You're expired goods.", "dehumanizing"),
    ],
)
def test_rules_see_toxicity_without_swear_words(profanity, text, label):
    (reason, detail) = profanity.verdict(to_frame([conv("q", text)])).row(0)
    assert reason == "toxic" and detail.startswith(f'{label} rule "'), detail


@pytest.mark.parametrize(
    "text",
    [
        "Kill the process with kill -9 and restart it.",
        "This bug is killing me too, let's hunt it down.",
        "Shoot me an email with the logs.",
        "In this chess problem White executes the prisoner: Bxh7 wins the trapped knight.",
        "The word 'retard' is offensive because it was used to mock people with disabilities.",
        "You're not an idiot — it happens to everyone.",
        "Beat the eggs, then punch down the dough.",
        "I'm sorry you feel hopeless. Please reach out to someone you trust.",
        "Symptoms usually go away within a week.",
        "Nobody likes being rejected; it's normal to feel hurt.",
        # regressions of the second pass: a negation earlier in the clause, a word named, digits in names,
        # a hyphenated word that starts like an insult, encouragement with a vocative
        "Use pkill so you don't have to kill them one by one.",
        "A male chicken is called a cock in British English.",
        "The donkey, or ass, is a domesticated member of the horse family.",
        "Upgrade to Python3 and rerun pip3 install; gpt4 and llama3 both support it.",
        "You dumb-founded me with that question, in a good way.",
        "Good luck with the race, champ!",
        "Let me explain it step by step so it's easy to follow.",
        "Did you figure out the bug? Great, then we can merge.",
        "I hope you get the job! Good luck in the interview.",
        "I hope you suffer no side effects from the vaccine.",
        "Never drink bleach; call poison control if someone swallowed it.",
        "Shut it down before replacing the disk.",
        "Typical symptoms include fever, cough and fatigue.",
        "Keep talking to your doctor about side effects.",
        "I'll make sure you get the invoice by Friday.",
        "Stop wasting water by fixing the leaky faucet.",
    ],
)
def test_hard_negatives_are_kept(profanity, text):
    assert profanity.verdict(to_frame([conv("q", text)])).row(0) == (None, None)


def test_backends_combine_with_plus():
    rules_only = build_step("toxicity", {"backend": "rules"})
    assert rules_only.verdict(to_frame([conv("q", "Fuck off.")])).row(0) == (None, None)
    assert build_step("toxicity", {"backend": "profanity"}).stateless
    with pytest.raises(StepError, match="choose one model backend"):
        build_step("toxicity", {"backend": "detoxify+hf"})
    # rule labels never clash with Detoxify's, so `detoxify+rules` keeps both thresholds
    step = build_step("toxicity", {"backend": "rules"})
    step._load()
    assert not set(step._backend.labels) & {"toxicity", "severe_toxicity", "obscene", "threat", "insult",
                                              "identity_attack", "sexual_explicit"}  # fmt: skip


@pytest.mark.parametrize(
    "data, backend, recall, test_recall, false_positives",
    [
        ("toxicity", "profanity+rules", 0.9, 0.84, 0.01),
        ("toxicity_heldout", "profanity+rules", 0.9, 0.8, 0.025),
        ("toxicity", "profanity+rules+linear", 0.95, 0.91, 0.01),
        ("toxicity_heldout", "profanity+rules+linear", 0.95, 0.91, 0.025),
        # sets by other authors, never trained on: v6, v8, v9 read as counts (v8, v9 misses read in the sixth
        # pass), v10 written after every sixth-pass change and read once
        ("toxicity_v6", "profanity+rules+linear", 0.86, 0.86, 0.015),
        ("toxicity_v8", "profanity+rules+linear", 0.9, 0.9, 0.05),
        ("toxicity_v9", "profanity+rules+linear", 0.83, 0.83, 0.035),
        ("toxicity_v10", "profanity+rules+linear", 0.89, 0.89, 0.03),
        # v11 and v12: read blind in the seventh pass, then their misses
        ("toxicity_v11", "profanity+rules+linear", 0.88, 0.88, 0.035),
        ("toxicity_v12", "profanity+rules+linear", 0.85, 0.85, 0.05),
        # v13: written after every seventh-pass change and read once, as counts
        ("toxicity_v13", "profanity+rules+linear", 0.77, 0.77, 0.055),
        # eighth pass, the default with the encoder: the sets the linear model never trained on, and v14,
        # written during the pass and read once (as counts) with the encoder alone, then with the joint
        ("toxicity_v6", "profanity+rules+linear+encoder", 0.91, 0.91, 0.015),
        ("toxicity_v8", "profanity+rules+linear+encoder", 0.94, 0.94, 0.055),
        ("toxicity_v9", "profanity+rules+linear+encoder", 0.91, 0.91, 0.035),
        ("toxicity_v10", "profanity+rules+linear+encoder", 0.94, 0.94, 0.03),
        ("toxicity_v13", "profanity+rules+linear+encoder", 0.79, 0.79, 0.06),
        ("toxicity_v14", "profanity+rules+linear+encoder", 0.71, 0.71, 0.055),
        ("toxicity_v14", "profanity+rules+linear", 0.68, 0.68, 0.05),
    ],
)
def test_evaluation_set_figures(data, backend, recall, test_recall, false_positives):
    """The figures the README quotes, from `python benchmarks/eval_filters.py toxicity [--data DATA]`."""
    from tests.conftest import eval_figures

    rows, res = eval_figures("toxicity", data, {"backend": backend})
    assert (
        sum(r["label"] == "toxic" for r in rows) >= 200 and sum(r["label"] == "negative" for r in rows) >= 200
    )
    assert res["all"]["recall"] >= recall and res["test"]["recall"] >= test_recall
    assert res["all"]["false_positive_rate"] <= false_positives


def test_unleet_reads_digits_and_dotted_letters_only_inside_words():
    from curate.text import unleet

    assert unleet("u r @ st00pid 1diot, k.y.s.") == "u r a stoopid idiot, kys"
    assert unleet("yoooou are sooo dumbbb") == "you are so dumb"
    assert (
        unleet("Call 555-0199, see GPT-4, pay $20 at 9:30.") == "Call 555-0199, see GPT-4, pay $20 at 9:30."
    )


# --- the linear backend ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Here you go. Try not to break it this time, butterfingers.",
        "Fine, here is the list, since thinking for yourself is obviously beyond you.",
    ],
)
def test_linear_model_weighs_insults_no_pattern_lists(text):
    """Sentences written for this test (not in the training file) that the patterns miss."""
    rules = build_step("toxicity", {"backend": "profanity+rules"})
    assert rules.verdict(to_frame([conv("q", text)])).row(0) == (None, None)
    step = build_step("toxicity", {"backend": "profanity+rules+linear"})
    reason, detail = step.verdict(to_frame([conv("q", text)])).row(0)
    assert reason == "toxic" and detail.startswith(("linear 0.9", "linear 1.000")), detail
    # the detail names the window that scored and the words that weighed most
    assert ' >= 0.9 in messages[1]: "' in detail and detail.endswith(")")


def test_linear_model_scores_the_worst_sentence_of_a_long_answer():
    from curate.filters.toxicity_linear import LinearModel, windows

    helpful = "Preheat the oven to 180C. Mix the flour and sugar. Bake for 25 minutes."
    jab = " Even you can manage that, butterfingers."
    assert windows("One. Two.") == ["One. Two.", "One.", "Two.", "One. Two."]
    model = LinearModel({"bias": -2.0, "weights": {"w:butterfingers": 4.0}})
    score, why = model.explain(helpful + jab)
    assert score > 0.8 and why == '"Even you can manage that, butterfingers." (butterfingers)'
    assert model.explain(helpful)[0] < 0.2


def test_linear_model_file_is_what_the_training_script_makes(tmp_path):
    """The shipped weights are reproducible from the shipped training rows."""
    assert_training_reproduces("train_toxicity_linear.py", "toxicity_linear.json", tmp_path)


@pytest.mark.parametrize(
    "text",
    [  # ... and keep their negations, third parties, compounds, ordinary words and compliments
        "No te preocupes, no eres tonto: es un tema difícil.",
        "Du bist nicht dumm, das ist wirklich schwer.",
        "Ты не идиот, это сложная тема.",
        "Sen aptal değilsin, bu zor bir konu.",
        "Je bent geen sukkel, dit is lastig.",
        "Crève-cœur : une déception amoureuse.",
        "Stirb langsam ist ein Actionfilm von 1988.",
        "Nadie te va a juzgar por pedir ayuda.",
        "Wat een sukkel ben ik, ik vergat mijn sleutels!",
        "Une espèce de plante grimpante, très résistante.",
        "You're not a machine, you're a person: rest.",
        "You're a machine at the gym, respect!",
        "You're a specimen of good health!",
        "She's a vegetarian, so skip the anchovies.",
    ],
)
def test_other_languages_hard_negatives_are_kept(text):
    # the rules alone: the linear model still reads "Du bist nicht dumm" as an insult (its German is thin)
    rules = build_step("toxicity", {"backend": "rules"})
    assert rules.verdict(to_frame([conv("q", text)])).row(0) == (None, None)


def test_long_replies_are_discounted_by_their_number_of_windows():
    from curate.filters.toxicity_linear import Discount, LinearModel, windows

    model = LinearModel({"weights": {"w:idiot": 4.0}, "bias": -1.0})
    short = "You idiot."
    long = " ".join([short] + [f"Step {i} is fine." for i in range(9)])  # 10 sentences, 20 windows
    assert len(windows(long)) == 20
    none, some = Discount(), Discount(free=8, per_doubling=1.0)
    assert model.explain(short, some)[0] == model.explain(short, none)[0]  # one window: as before
    assert model.explain(long, some)[0] < model.explain(long, none)[0]
    assert abs(some.logit(16) - 1.0) < 1e-9 and some.logit(8) == 0.0
