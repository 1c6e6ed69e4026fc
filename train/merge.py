"""`train merge`: model merging (Gemma 2's averaging of runs, WARM for reward models, WARP's SLERP of task
vectors, TIES and DARE) and interpolation towards an initial model (the last step of WARP).

    linear:  merged = sum_i w_i * theta_i / sum_i w_i                                 (accumulated in fp32)
    slerp:   merged = base + slerp(tau_0, tau_1, t),  tau_i = theta_i - base  (no base: slerp of the weights)
    ties:    merged = base + disjoint mean of the top-`density` tau_i entries agreeing with the elected sign
    dare:    merged = base + sum_i w_i * drop(tau_i, 1 - density) / density       (seeded, per tensor)
    out    = base + alpha * (merged - base)    with --alpha  (alpha=1: the merge, alpha=0: the base)

Every checkpoint is inspected first, from `config.json`, the tokenizer's vocabulary and the safetensors headers
alone: architectures, tensor names, shapes and vocabularies must match, or nothing is read and nothing is written.
Then the tensors are streamed one at a time, so memory holds one output shard, not N models.

>>> merge_checkpoints(["run-a", "run-b"], "merged", weights=[0.5, 0.5])          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from curate.io import InputError, RunDir, write_json
from curate.provenance import versions

# Config keys that do not change what the weights mean.
_CONFIG_IGNORED = {
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "use_cache",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "architectures",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "id2label",
    "label2id",
    "problem_type",
}
# Files of a training run that are not part of the model.
_NOT_COPIED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
_NOT_COPIED = {
    "manifest.json",
    "samples.jsonl",
    "log_history.jsonl",
    "check.json",
    "trainer_state.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "adapter_config.json",
    "README.md",
}
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}
_BYTES = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
}
OUT_DTYPES = ("auto", "float32", "bfloat16", "float16")
METHODS = ("linear", "slerp", "ties", "dare")


class MergeError(InputError):
    """Checkpoints that cannot be merged; raised before any tensor is read or any file written."""


@dataclass
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    file: Path


@dataclass
class Checkpoint:
    path: Path
    config: dict
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    vocab_hash: str | None = None

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or ["?"]
        return f"{archs[0]} ({self.config.get('model_type', '?')})"

    def header_hash(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.tensors):
            t = self.tensors[name]
            h.update(f"{name}:{t.dtype}:{t.shape}\n".encode())
        return h.hexdigest()


def read_safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file: names, dtypes, shapes and offsets. No tensor data is read."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise MergeError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > 100 * 2**20:
            raise MergeError(f"{path}: not a safetensors file (header of {n} bytes)")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise MergeError(f"{path}: not a safetensors file (unreadable header)") from None
    header.pop("__metadata__", None)
    return header


def _weight_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return sorted({path / f for f in weight_map.values()})
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    if (path / "adapter_config.json").is_file():
        raise MergeError(
            f"{path}: a LoRA adapter, not a model; merge the full models (train writes them at the "
            "top of its output directory)"
        )
    if list(path.glob("*.bin")):
        raise MergeError(
            f"{path}: only PyTorch .bin weights; merge reads safetensors (re-save the model with "
            "save_pretrained(safe_serialization=True))"
        )
    raise MergeError(f"{path}: no model.safetensors (or sharded index) found")


def _vocab_hash(path: Path) -> str | None:
    tj = path / "tokenizer.json"
    if not tj.is_file():
        return None
    data = json.loads(tj.read_text(encoding="utf-8"))
    vocab = (data.get("model") or {}).get("vocab")
    added = sorted((t["id"], t["content"]) for t in data.get("added_tokens") or [])
    payload = json.dumps(
        [sorted(vocab.items()) if isinstance(vocab, dict) else vocab, added], ensure_ascii=False
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def inspect_checkpoint(path: str | Path) -> Checkpoint:
    p = Path(path)
    if not p.is_dir():
        raise MergeError(f"{p}: not a model directory")
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise MergeError(f"{p}: no config.json")
    ck = Checkpoint(p, json.loads(cfg_path.read_text()), vocab_hash=_vocab_hash(p))
    for f in _weight_files(p):
        for name, meta in read_safetensors_header(f).items():
            ck.tensors[name] = TensorInfo(_DTYPES.get(meta["dtype"], meta["dtype"]), tuple(meta["shape"]), f)
    return ck


def check_compatible(first: Checkpoint, other: Checkpoint) -> None:
    """Same architecture, same configuration, same tensors and shapes, same vocabulary; else `MergeError`."""
    what = f"{other.path} vs {first.path}"
    if first.architecture != other.architecture:
        raise MergeError(f"architectures differ: {other.architecture} vs {first.architecture} ({what})")
    a = {k: v for k, v in first.config.items() if k not in _CONFIG_IGNORED}
    b = {k: v for k, v in other.config.items() if k not in _CONFIG_IGNORED}
    diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if diff:
        k = diff[0]
        raise MergeError(
            f"configs differ in {', '.join(diff[:5])} ({k}: {b.get(k)!r} vs {a.get(k)!r}; {what})"
        )
    missing = sorted(first.tensors.keys() - other.tensors.keys())
    extra = sorted(other.tensors.keys() - first.tensors.keys())
    if missing or extra:
        raise MergeError(f"tensor names differ ({what}): missing {missing[:3]}, extra {extra[:3]}")
    for name, t in first.tensors.items():
        o = other.tensors[name]
        if o.shape != t.shape:
            raise MergeError(f"shapes differ for {name}: {list(o.shape)} vs {list(t.shape)} ({what})")
    if first.vocab_hash and other.vocab_hash and first.vocab_hash != other.vocab_hash:
        raise MergeError(f"tokenizer vocabularies differ ({what}): token ids would not mean the same thing")


def _normalized(weights: list[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise MergeError(f"{len(weights)} weights for {n} models")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise MergeError(f"weights must be non-negative with a positive sum, got {weights}")
    total = float(sum(weights))
    return [w / total for w in weights]


def _plan_shards(names: list[str], sizes: dict[str, int], max_bytes: int) -> list[list[str]]:
    shards, cur, size = [], [], 0
    for name in names:
        if cur and size + sizes[name] > max_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append(name)
        size += sizes[name]
    if cur:
        shards.append(cur)
    return shards


class MergeMethod:
    """How the float tensors of several models become one (all in float32)."""

    name = ""
    needs_base = False

    def merge(self, thetas: list, weights: list[float], base, name: str):
        raise NotImplementedError

    def settings(self) -> dict:
        return {}


class Linear(MergeMethod):
    name = "linear"

    def merge(self, thetas, weights, base, name):
        acc = thetas[0] * weights[0]
        for t, w in zip(thetas[1:], weights[1:], strict=True):
            acc.add_(t, alpha=w)
        return acc


def slerp(v0, v1, t: float, eps: float = 1e-8):
    """Spherical interpolation between two tensors (by the angle of their directions; their norms scale the
    result as in mergekit); nearly parallel tensors fall back to linear interpolation."""
    import torch

    a, b = v0.flatten().double(), v1.flatten().double()
    na, nb = a.norm(), b.norm()
    if na < eps or nb < eps:
        return (1 - t) * v0 + t * v1
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    if cos.abs() > 0.9995:
        return (1 - t) * v0 + t * v1
    omega = torch.arccos(cos)
    s0, s1 = torch.sin((1 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)
    return (s0 * v0.double() + s1 * v1.double()).to(v0.dtype)


class Slerp(MergeMethod):
    """Two models (WARP merges two RL policies' task vectors relative to the initialisation); `t` is the
    second's weight."""

    name = "slerp"

    def __init__(self, t: float):
        self.t = t

    def merge(self, thetas, weights, base, name):
        if base is None:
            return slerp(thetas[0], thetas[1], self.t)
        return base + slerp(thetas[0] - base, thetas[1] - base, self.t)

    def settings(self):
        return {"t": self.t}


def trim(tau, density: float):
    """`tau` with all but its top-`density` entries by magnitude set to zero."""
    import torch

    k = int(round(density * tau.numel()))
    if k >= tau.numel():
        return tau.clone()
    if k <= 0:
        return torch.zeros_like(tau)
    threshold = tau.abs().flatten().kthvalue(tau.numel() - k + 1).values
    return torch.where(tau.abs() >= threshold, tau, torch.zeros_like(tau))


def ties_combine(taus: list, weights: list[float]):
    """TIES' sign election and disjoint mean: the weighted mean of the entries whose sign agrees with the sign of
    their weighted sum (zeros take no part)."""
    import torch

    stacked = torch.stack([t * w for t, w in zip(taus, weights, strict=True)])
    sign = torch.sign(stacked.sum(0))
    agree = (torch.sign(torch.stack(taus)) == sign) & (torch.stack(taus) != 0)
    w = torch.tensor(weights, dtype=stacked.dtype, device=stacked.device).view(-1, *([1] * taus[0].dim()))
    num = (stacked * agree).sum(0)
    den = (w * agree).sum(0)
    return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))


class Ties(MergeMethod):
    """TIES-merging (Yadav et al., 2023): trim each task vector to its top-`density` entries, elect a sign per
    entry, average the agreeing entries."""

    name = "ties"
    needs_base = True

    def __init__(self, density: float):
        self.density = density

    def merge(self, thetas, weights, base, name):
        return base + ties_combine([trim(t - base, self.density) for t in thetas], weights)

    def settings(self):
        return {"density": self.density}


class Dare(MergeMethod):
    """DARE (Yu et al., 2024): drop each task-vector entry with probability 1 - `density`, rescale the rest by
    1 / `density`, then add the weighted task vectors (`sign_election`: combine them as TIES does). The drop
    mask is seeded by `seed` and the tensor's name, so a merge is reproducible."""

    name = "dare"
    needs_base = True

    def __init__(self, density: float, seed: int = 0, sign_election: bool = False):
        self.density, self.seed, self.sign_election = density, seed, sign_election

    def mask(self, shape, name: str, index: int):
        import torch
        import xxhash

        g = torch.Generator().manual_seed(
            xxhash.xxh3_64_intdigest(f"{self.seed}\0{name}\0{index}".encode()) & (2**63 - 1)
        )
        return torch.rand(shape, generator=g) < self.density

    def merge(self, thetas, weights, base, name):
        taus = [
            (t - base) * self.mask(t.shape, name, i).to(t.device) / self.density for i, t in enumerate(thetas)
        ]
        if self.sign_election:
            return base + ties_combine(taus, weights)
        return base + Linear().merge(taus, weights, None, name)

    def settings(self):
        return {"density": self.density, "seed": self.seed, "sign_election": self.sign_election}


def merge_method(
    name: str, *, t: float | None = None, density: float = 0.5, seed: int = 0, n_models: int = 2
):
    """The merge method `name` with its settings, checked."""
    if name not in METHODS:
        raise MergeError(f"unknown merge method {name!r} (choose from {', '.join(METHODS)})")
    if name in ("ties", "dare") and not 0 < density <= 1:
        raise MergeError(f"--density must be in (0, 1], got {density}")
    if name == "slerp":
        if n_models != 2:
            raise MergeError(f"slerp merges two models, got {n_models}")
        if t is not None and not 0 <= t <= 1:
            raise MergeError(f"--t must be in [0, 1], got {t}")
        return Slerp(0.5 if t is None else t)
    if name == "ties":
        return Ties(density)
    if name == "dare":
        return Dare(density, seed)
    return Linear()


def merge_checkpoints(
    models: list[str | Path],
    output: str | Path,
    *,
    weights: list[float] | None = None,
    base: str | Path | None = None,
    alpha: float | None = None,
    method: str | MergeMethod = "linear",
    dtype: str = "auto",
    force: bool = False,
    max_shard_bytes: int = 5 * 2**30,
    echo=print,
) -> Path:
    """Merge `models` (weighted; `method` linear, slerp, ties or dare) and optionally interpolate from `base`;
    write safetensors + config + tokenizer."""
    plan = MergePlan.of(models, weights=weights, base=base, alpha=alpha, method=method, dtype=dtype)
    run = RunDir(output, overwrite=force, inputs=[*models, *([base] if base else [])])
    try:
        write_json(run.path / "manifest.json", plan.write(run.path, max_shard_bytes=max_shard_bytes))
        return run.commit()
    except BaseException:
        run.abort()
        raise


@dataclass
class MergePlan:
    """A merge checked from the checkpoints' headers (nothing read yet), ready to write into a directory."""

    cks: list[Checkpoint]
    weights: list[float]  # normalised
    given_weights: list[float] | None
    base: Checkpoint | None
    alpha: float | None
    merger: MergeMethod
    dtype: str

    @classmethod
    def of(
        cls,
        models: list[str | Path],
        *,
        weights: list[float] | None = None,
        base: str | Path | None = None,
        alpha: float | None = None,
        method: str | MergeMethod = "linear",
        dtype: str = "auto",
    ) -> MergePlan:
        if not models:
            raise MergeError("no models to merge")
        merger = merge_method(method, n_models=len(models)) if isinstance(method, str) else method
        if merger.needs_base and base is None:
            raise MergeError(
                f"--method {merger.name} merges task vectors: give the initial model with --base"
            )
        if alpha is not None and base is None:
            raise MergeError("--base and --alpha go together (WARP: out = base + alpha * (merge - base))")
        if base is not None and alpha is None and merger.name == "linear":
            raise MergeError("--base and --alpha go together (WARP: out = base + alpha * (merge - base))")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise MergeError(f"--alpha must be in [0, 1], got {alpha}")
        if dtype not in OUT_DTYPES:
            raise MergeError(f"--dtype must be one of {', '.join(OUT_DTYPES)}")
        if len(models) == 1 and base is None:
            raise MergeError("one model and no --base: nothing to merge")
        w = _normalized(weights, len(models))
        cks = [inspect_checkpoint(m) for m in models]
        base_ck = inspect_checkpoint(base) if base is not None else None
        for ck in cks[1:] + ([base_ck] if base_ck else []):
            check_compatible(cks[0], ck)
        return cls(cks, w, weights, base_ck, alpha, merger, dtype)

    def write(self, out: Path, *, max_shard_bytes: int = 5 * 2**30) -> dict:
        """Write the merged model into `out` (an existing directory); returns the manifest."""
        _write_merge(
            self.cks, self.weights, self.base, self.alpha, self.dtype, out, max_shard_bytes, self.merger
        )
        merger, base_ck = self.merger, self.base
        return {
            "command": "train merge",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "method": (
                "interpolation towards base (WARP)"
                if base_ck and merger.name == "linear"
                else "weighted average"
                if merger.name == "linear"
                else merger.name
            ),
            "merge": {"name": merger.name, **merger.settings()},
            "models": [
                {
                    "path": str(ck.path),
                    "weight": wi,
                    "given_weight": (self.given_weights[i] if self.given_weights else None),
                    "header_sha256": ck.header_hash(),
                }
                for i, (ck, wi) in enumerate(zip(self.cks, self.weights, strict=True))
            ],
            "base": {"path": str(base_ck.path), "header_sha256": base_ck.header_hash()} if base_ck else None,
            "alpha": self.alpha,
            "dtype": self.dtype,
            "accumulation": "float32",
            "tensors": len(self.cks[0].tensors),
            "architecture": self.cks[0].architecture,
            "versions": versions(),
        }


class TensorReader(contextlib.ExitStack):
    """Reads checkpoints' tensors one at a time, each safetensors file opened once."""

    def __init__(self):
        super().__init__()
        self._files: dict[Path, object] = {}

    def get(self, ck: Checkpoint, name: str):
        from safetensors import safe_open

        f = ck.tensors[name].file
        if f not in self._files:
            self._files[f] = self.enter_context(safe_open(str(f), framework="pt"))
        return self._files[f].get_tensor(name)


def _write_merge(cks, w, base_ck, alpha, dtype, out: Path, max_shard_bytes: int, merger: MergeMethod) -> None:
    import torch
    from safetensors.torch import save_file

    first = cks[0]
    names = sorted(first.tensors)

    def out_dtype(name: str) -> str:
        src = first.tensors[name].dtype
        if dtype == "auto" or not src.startswith(("float", "bfloat")):
            return src
        return dtype

    sizes = {}
    for name in names:
        n = 1
        for d in first.tensors[name].shape:
            n *= d
        sizes[name] = n * _BYTES.get(out_dtype(name), 4)
    shards = _plan_shards(names, sizes, max_shard_bytes)
    files = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )

    with TensorReader() as reader:
        tensor = reader.get
        weight_map = {}
        for fname, shard in zip(files, shards, strict=True):
            result = {}
            for name in shard:
                first_t = tensor(first, name)
                if not (first_t.is_floating_point()):
                    for ck in cks[1:] + ([base_ck] if base_ck else []):
                        if not torch.equal(first_t, tensor(ck, name)):
                            raise MergeError(
                                f"non-float tensor {name} differs between {first.path} and {ck.path}"
                            )
                    result[name] = first_t
                    continue
                thetas = [first_t.to(torch.float32)] + [tensor(ck, name).to(torch.float32) for ck in cks[1:]]
                b = tensor(base_ck, name).to(torch.float32) if base_ck is not None else None
                acc = merger.merge(thetas, w, b, name)
                if b is not None and alpha is not None:
                    acc = b.add_(acc - b, alpha=alpha)
                result[name] = acc.to(getattr(torch, out_dtype(name))).contiguous()
                weight_map[name] = fname
            save_file(result, str(out / fname), metadata={"format": "pt"})
            weight_map.update({name: fname for name in shard})
        if len(files) > 1:
            total = sum(sizes.values())
            write_json(
                out / "model.safetensors.index.json",
                {"metadata": {"total_size": total}, "weight_map": weight_map},
            )
    _copy_model_files(first.path, out, dtype)


def _copy_model_files(src: Path, out: Path, dtype: str) -> None:
    for f in sorted(src.iterdir()):
        if not f.is_file() or f.name in _NOT_COPIED or f.name.endswith(_NOT_COPIED_SUFFIXES):
            continue
        shutil.copy2(f, out / f.name)
    if dtype != "auto":
        cfg = json.loads((out / "config.json").read_text())
        cfg["dtype"] = dtype
        cfg.pop("torch_dtype", None)
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise MergeError(f"--weights {text!r}: expected comma-separated numbers, e.g. 0.5,0.3,0.2") from None
