"""posttrain's verifiers as training rewards, and the rollouts that explain every reward given.

The on-policy commands (`train online-dpo`, `train rl`) score completions with a reward spec of `synth.verifiers`:
a verifier (`math`, `code`, `autoif`, `reward-model`, `judge`, `regex`), a weighted sum (`0.7*math+0.3*reward-model`)
or a chain (`math,judge`). Before any model is loaded the spec is resolved and every prompt row is checked for what
its verifiers read (`check_rewardable`). During training each scored completion becomes a line of `rollouts.jsonl`
(`rollout`): where it was (episode or step), the prompt id, the completion, the reward, the verdict and its detail,
and each verifier's own verdict (`components`).

>>> from synth.verifiers import build
>>> v = build("0.5*math+0.5*regex", regex=r"^####")
>>> [d] = v.verify([Task({"answer": "4"}, [], ["#### 4"])])[0]
>>> r = rollout(d, prompt_id="q1", completion="#### 4", verifier=v.name, step=1)
>>> r["reward"], sorted(r["components"]), r["components"]["math"]["verdict"]
(1.0, ['math', 'regex'], 'correct')
"""

from __future__ import annotations

import statistics
from functools import cache
from pathlib import Path

import orjson

from curate.io import InputError
from synth.verifiers import Task, Verdict, Verifier
from train.launch import gather_to_main

REWARD_HELP = (
    "What a completion earns: a verifier (math: the final answer against the row's `answer`; code: the code "
    "against the row's `tests`, in the sandbox; autoif: the row's verification functions; reward-model: a "
    "local reward model; judge: an LLM against a rubric; regex: a format rule), a weighted sum such as "
    "0.7*math+0.3*reward-model, or a chain such as math,judge."
)
# Verifier settings a training command does not offer: the policy must not write the tests it is scored by.
NOT_FOR_TRAINING = ("generate_tests", "n_tests")


@cache
def reward_settings_class():
    """Every verifier's settings (`synth.verifiers.VerifierSettings`) plus the reward spec, as one bundle."""
    from synth.config import setting, settings
    from synth.verifiers import VerifierSettings

    @settings
    class RewardSettings(VerifierSettings):
        reward: str | None = setting(None, REWARD_HELP, metavar="SPEC")

    return RewardSettings


def require_spec(settings) -> str:
    if not settings.reward or not settings.reward.strip():
        raise InputError("missing --reward SPEC (a verifier such as math, or 0.7*math+0.3*reward-model)")
    if getattr(settings, "generate_tests", False):
        raise InputError("generated tests are not a training reward: give the rows their `tests`")
    return settings.reward


class _Unchecked(Verifier):
    """Stands in for a verifier that reads no column of the row (a reward model, a judge) during the check."""

    def __init__(self, cls):
        self.name, self.graded = cls.name, cls.graded


def check_rewardable(settings, rows: list[dict]) -> None:
    """Resolve the reward spec and check that every row has what its verifiers read (a gold answer, tests,
    verification functions, a pattern); the first row that does not is an `InputError` naming its file, line and
    field. Nothing is loaded: verifiers backed by a model (reward-model, judge) read no column and are not built."""
    from synth.verifiers import VerifierContext, verifier_classes
    from synth.verifiers.compose import parse_spec

    spec = require_spec(settings)
    classes = verifier_classes()

    def make(name: str) -> Verifier:
        cls = classes[name]
        return (
            _Unchecked(cls) if cls.problem is Verifier.problem else cls(settings, VerifierContext(settings))
        )

    checker = parse_spec(spec, make)
    for n, row in enumerate(rows, start=1):
        why = checker.problem(row)
        if why is not None:
            where = row.get("_where") or f"row {n}"
            raise InputError(f"{where}: {why} (id {row.get('id')}; --reward {spec} needs it on every row)")


def build_reward(settings, *, ctx=None) -> Verifier:
    """The verifier of the spec, with its models loaded; the caller closes it."""
    from synth.verifiers import build

    return build(require_spec(settings), settings, ctx)


def public(row: dict) -> dict:
    """A row without the reader's bookkeeping (`_kind`, `_where`)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def rollout(
    verdict: Verdict | dict, *, prompt_id: str, completion: str | None, verifier: str, **where
) -> dict:
    """One rewarded completion as `rollouts.jsonl` holds it; `where` says when (`episode=` or `step=`, `sample=`).
    `components` names each verifier's own verdict, also when the spec is a single `verifier`."""
    d = verdict.as_dict() if isinstance(verdict, Verdict) else dict(verdict)
    score = d.pop("score", None)
    components = d.pop("components", None) or {verifier: {"score": score, **d}}
    return {
        **where,
        "prompt_id": prompt_id,
        "completion": completion,
        "reward": score,
        **d,
        "components": components,
    }


def reward_stats(rewards: list[float | None]) -> dict:
    """Mean, median and spread of the rewards given (unscored completions counted apart)."""
    scored = [float(r) for r in rewards if r is not None]
    return {
        "completions": len(rewards),
        "unscored": len(rewards) - len(scored),
        "reward_mean": round(statistics.fmean(scored), 6) if scored else None,
        "reward_median": round(statistics.median(scored), 6) if scored else None,
        "reward_min": min(scored) if scored else None,
        "reward_max": max(scored) if scored else None,
    }


class RolloutLog:
    """`rollouts.jsonl` written as rewards are given (in the state directory, so a killed run keeps them); each
    batch is flushed. Resuming from a checkpoint at step `keep_through` drops what later steps wrote."""

    def __init__(self, path: Path, *, keep_through: int | None = None):
        self.path = Path(path)
        if keep_through is not None and self.path.is_file():
            kept = [
                line
                for line in self.path.read_bytes().splitlines()
                if line.strip() and (orjson.loads(line).get("step") or 0) <= keep_through
            ]
            self.path.write_bytes(b"".join(line + b"\n" for line in kept))
        elif keep_through is None:
            self.path.unlink(missing_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed by close()

    def write(self, records: list[dict]) -> None:
        self._fh.write(b"".join(orjson.dumps(r, default=str) + b"\n" for r in records))
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def read(self) -> list[dict]:
        self._fh.flush()
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]


class RewardFunction:
    """The reward spec as a TRL reward function (`GRPOTrainer`, `RLOOTrainer`).

    TRL passes the batch's prompts and completions, and each dataset column as a list; the dataset carries the
    whole prompt row as JSON in `row_json` (Arrow cannot hold a column whose type differs between rows, as
    `tests` may), so each row is rebuilt for the verifier's `Task`. Completions of one prompt are verified as one
    task, and the batch as one call, so code runs in the sandbox's workers together. Every reward is logged: in a
    distributed run each process scores its own completions and the main process writes everyone's.
    """

    __name__ = "reward"  # TRL names the logged metric after it

    def __init__(self, verifier: Verifier, log: RolloutLog | None):
        self.verifier, self.log = verifier, log
        self.trainer = None  # set after the trainer is built: tells training batches from evaluation ones
        self.seconds = 0.0

    def __call__(self, prompts, completions, row_json, trainer_state=None, **_):
        import time

        t0 = time.perf_counter()
        rows = [orjson.loads(r) for r in row_json]
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(row["id"], []).append(i)
        texts = [_text(c) for c in completions]
        tasks = [Task(rows[ix[0]], list(prompts[ix[0]]), [texts[i] for i in ix]) for ix in groups.values()]
        verdicts = self.verifier.verify(tasks)
        step = trainer_state.global_step + 1 if trainer_state is not None else None
        training = self.trainer is None or self.trainer.model.training
        rewards: list[float | None] = [None] * len(completions)
        records = []
        for (prompt_id, ix), row_verdicts in zip(groups.items(), verdicts, strict=True):
            for k, (i, v) in enumerate(zip(ix, row_verdicts, strict=True)):
                rewards[i] = v.score
                where = {"step": step, "sample": k} if training else {"step": step, "eval": True, "sample": k}
                records.append(
                    rollout(v, prompt_id=prompt_id, completion=texts[i], verifier=self.verifier.name, **where)
                )
        records = gather_to_main(records)  # every process's, in a distributed run
        if self.log is not None:
            self.log.write(records)
        self.seconds += time.perf_counter() - t0
        return rewards


def _text(completion) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")
    return completion


def progress_callback(trainer, label: str):
    """A `TrainerCallback` that names the training progress bar (`episode 2/3 dpo`, `rl grpo`) and shows the last
    logged mean reward on it."""
    from transformers import TrainerCallback

    class ProgressLabel(TrainerCallback):
        def _bar(self):
            return next(
                (b for cb in trainer.callback_handler.callbacks if (b := getattr(cb, "training_bar", None))),
                None,
            )

        def on_train_begin(self, args, state, control, **kwargs):
            bar = self._bar()
            if bar is not None:
                bar.set_description(label, refresh=False)

        def on_log(self, args, state, control, logs=None, **kwargs):
            bar = self._bar()
            if bar is not None and logs and logs.get("reward") is not None:
                bar.set_postfix(reward=f"{logs['reward']:.3f}", refresh=False)

    return ProgressLabel()
