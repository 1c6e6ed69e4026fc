"""`toxicity`: drop rows whose scored turns (assistant turns by default) a classifier finds toxic.

Backends, chosen by ``backend`` (several joined by ``+`` score together; the default is
``profanity+rules``):

- ``profanity``: alt-profanity-check, which ships its model; one label, ``profanity``. It sees swear words,
  and misses insults, contempt, threats and identity attacks worded without them.
- ``rules``: patterns in `rules/toxicity.yaml` for exactly those (labels ``insulting``, ``contempt``,
  ``threatening``, ``incitement``, ``self_harm``, ``hateful``, ``sexual_harassment``), read sentence by
  sentence with quotes and code masked, so explaining why a quoted slur is offensive is not using it.
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

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from curate.pipeline import Filter, StepError, verdicts
from curate.text import unquoted
from rules import load_rules

BACKENDS = ("profanity", "rules", "detoxify", "hf")
CPU_BACKENDS = frozenset({"profanity", "rules"})  # small and fast: they may run in worker processes
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


def _by_length(texts: list[str], batch_size: int):
    """Batches of indices, longest texts together so padding is small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for k in range(0, len(order), batch_size):
        yield order[k : k + batch_size]


class ProfanityBackend:
    labels = ["profanity"]

    def __init__(self, unsaid: str | None = None):
        from profanity_check import predict_prob

        self._predict = predict_prob
        self._unsaid = re.compile(unsaid, re.I) if unsaid else None

    def scores(self, texts: list[str]) -> dict[str, list[float]]:
        # a quoted slur explained is not a slur used, nor is "you're not an idiot" an insult
        texts = [unquoted(t) for t in texts]
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
    of the text (quotes and code masked), and `evidence` keeps the words that matched."""

    def __init__(self, patterns: dict):
        parts = patterns.get("parts", {})

        expand = _expander(parts)
        skip = {"parts", "negations", "negated_labels", "unsaid", "needs"}
        self.labels = [label for label in patterns if label not in skip]
        self._patterns = {
            label: [re.compile(expand(p), re.I) for p in patterns[label]] for label in self.labels
        }
        self._negation = re.compile(patterns.get("negations", "(?!)"), re.I)
        self._negated = set(patterns.get("negated_labels", []))
        self._needs = {label: re.compile(expand(p), re.I) for label, p in patterns.get("needs", {}).items()}
        self.evidence: dict[tuple[str, int], str] = {}

    def _match(self, text: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for sentence in _SENTENCES.split(unquoted(text)):
            for label, patterns in self._patterns.items():
                if label in found or (label in self._needs and not self._needs[label].search(sentence)):
                    continue
                for rx in patterns:
                    m = next(
                        (
                            m
                            for m in rx.finditer(sentence)
                            if label not in self._negated or not self._negation.search(m.group(0))
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

    def evidence(self, label: str, i: int) -> str | None:
        return next((b.evidence.get((label, i)) for b in self.backends if hasattr(b, "evidence")), None)

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
        for idx in _by_length(texts, self.batch_size):
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
            for idx in _by_length(texts, self.batch_size):
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
        default="profanity+rules",
        metadata={"help": "profanity, rules (both built in), detoxify or hf; join several with +"},
    )
    model: str | None = field(
        default=None,
        metadata={"help": "detoxify: original, unbiased or multilingual; hf: a local model directory"},
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
    batch_size: int = field(default=32, metadata={"help": "texts per model call (detoxify, hf)"})
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
        self._patterns = rules.get("patterns", {})
        self._backend = None
        # A torch model runs in the main process: one copy in memory, one CUDA context, whole batches per
        # call. alt-profanity-check and the rules are small and fast, so their rows may go to the runner's
        # worker processes.
        self.stateless = set(self._backends) <= CPU_BACKENDS

    def _check_backend(self, name: str, rules: dict) -> dict:
        """Validate one backend's settings; return its thresholds from the rules file."""
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
        return {**self.__dict__, "_backend": None}

    def _one(self, name: str):
        if name == "profanity":
            unsaid = self._patterns.get("unsaid")
            return ProfanityBackend(_expander(self._patterns.get("parts", {}))(unsaid) if unsaid else None)
        if name == "rules":
            return RulesBackend(self._patterns)
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
        for row, j, text in turns:
            k = at[text]
            for label in self._checked:
                score, threshold = scores[label][k], self._thresholds[label]
                if score >= threshold:
                    margin = score - threshold
                    if row not in worst or margin > worst[row][0]:
                        worst[row] = (margin, label, score, threshold, f"messages[{j}]", k)
        reasons, details = [None] * frame.height, [None] * frame.height
        for row, (_, label, score, threshold, where, k) in worst.items():
            reasons[row] = "toxic"
            words = backend.evidence(label, k)
            details[row] = (
                f'{label} rule "{words}" in {where}'
                if words is not None
                else f"{label} {score:.3f} >= {threshold:g} in {where}"
            )
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
