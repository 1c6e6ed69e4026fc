"""`train online-dpo`: Qwen2's online DPO, and Llama 3's DPO in rounds, over TRL's `DPOTrainer`.

Each episode
1. samples `n` responses per prompt from the current policy with synth's backends (`hf` in this process, `vllm`
   where installed) through `synth reject-sample`'s method, so sampling, the response cache, verdicts, pairing and
   the ledger of skipped prompts are that command's. The cache lives in the state directory and its keys hold the
   policy directory's identity (files, sizes, times) and the episode's seed: an earlier policy's samples are never
   served, and a killed episode samples again only what it had not;
2. scores every response with the reward spec (`train.rewards`);
3. pairs the best response of each prompt against its worst, when their scores differ by more than `min_margin`
   (ranking by score, whatever the verifier); prompts whose samples all tie, or that have fewer than two scored
   samples, are skipped and counted (`rejected.jsonl`);
4. trains DPO on the pairs against the reference: the SFT model, or the policy at the start of the episode;
5. commits the episode (samples, pairs, skipped prompts, metrics and the new policy) by renaming
   `.OUT.state/episode-NNN.partial` to `episode-NNN`. A rerun with `--resume` starts after the last one.

The output holds the last policy, `rollouts.jsonl` (every sample of every episode with its reward, verdict, detail
and each verifier's verdict, and which were paired), `preference.jsonl` (the pairs trained on), `rejected.jsonl`
(the prompts skipped, with the reason), `log_history.jsonl` and `manifest.json` (per episode: mean and median
reward, pairs formed and skipped, the KL of the sampling policy to the SFT model, tokens/s generating and training).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
from collections import Counter
from functools import cache
from pathlib import Path

import orjson

from curate.io import InputError, JsonlWriter, write_json, write_jsonl
from train import launch
from train.common import (
    Method,
    Prepared,
    build_peft_config,
    build_trl_args,
    check_data,
    describe_run,
    fingerprint,
    fit,
    generate_samples,
    prompts_for,
    save_causal_lm,
)
from train.config import OnlineDPORunConfig
from train.dpo import DPO_METRICS
from train.rewards import NOT_FOR_TRAINING, public, reward_settings_class, reward_stats, rollout

REFERENCES = ("sft", "episode")
# The policy's backend options a training command does not offer (the policy is always the one being trained).
NOT_FOR_POLICY = ("model", "engine", "ray_address", "ray_actors")
EPISODE = "episode-{:03d}"


@cache
def settings_class():
    """`online-dpo`'s settings: the reward, sampling from the policy, and the episodes."""
    from synth.config import AnswerSettings, BackendSettings, SamplingSettings, default, setting, settings
    from train import online_merging

    @settings
    class OnlineDPOSettings(
        reward_settings_class(),
        online_merging.settings_class(),
        AnswerSettings,
        SamplingSettings,
        BackendSettings,
    ):
        episodes: int = setting(3, "Episodes of sample, score, pair and train.", min=1)
        prompts_per_episode: int | None = setting(
            None,
            "Prompts sampled per episode, taken in turn from a seeded shuffle of the training prompts "
            "[default: all of them].",
            min=1,
        )
        min_margin: float = setting(
            0.0,
            "The score gap a best-vs-worst pair needs; prompts whose best and worst samples are closer (all tied "
            "included) are skipped and counted.",
            min=0,
        )
        reference: str = setting(
            "sft",
            "DPO's reference model: sft (the starting model, every episode) or episode (the policy at the start "
            "of each episode, as Llama 3's rounds).",
            choices=REFERENCES,
        )
        backend: str = setting(
            "hf",
            "How the policy samples: hf (transformers, in this process) or vllm (in-process vLLM, where installed).",
            choices=("hf", "vllm"),
        )
        keep_truncated: bool = setting(
            True,
            "Do not score answers cut off at --max-tokens (by default they are scored like any other, so a policy "
            "that rambles is ranked by what it said).",
            negate="--skip-truncated",
        )
        n: int = default(8)
        temperature: float = default(1.0)
        top_p: float = default(1.0)
        max_tokens: int = default(512)

    return OnlineDPOSettings


CLI_EXCLUDED = (*NOT_FOR_POLICY, *NOT_FOR_TRAINING)


def _trl_defaults(cfg) -> dict:
    # Resuming is per episode: a checkpoint inside an episode would never be used.
    return {"save_strategy": "no"}


ONLINE_DPO = Method(
    name="online-dpo",
    kind="prompt",
    build_trainer=None,  # type: ignore[arg-type] - episodes build their own trainers
    final_metrics=lambda trainer, p: {},
    save_model=save_causal_lm,
    sanity=lambda model, p: generate_samples(model, p, prompts_for(p.eval_rows + p.train_rows)),
    trl_defaults=_trl_defaults,
)


class _Borrowed:
    """The run's verifier lent to one episode's sampling run, which closes what it is given."""

    def __init__(self, verifier):
        self._v = verifier
        self.name, self.graded = verifier.name, verifier.graded

    def __getattr__(self, name):
        return getattr(self._v, name)

    def close(self) -> None:
        pass


def _ranked_config_class():
    from synth.config import settings
    from synth.methods.reject_sample import RejectConfig

    @settings
    class RankedRejectConfig(RejectConfig):
        """Pairs are the best against the worst by score, whatever the verifier (graded ones too)."""

        @property
        def graded(self) -> bool:
            return False

    return RankedRejectConfig


def episode_prompts(rows: list[dict], episode: int, per_episode: int | None, seed: int) -> list[dict]:
    """The prompts of `episode` (1-based): consecutive slices of one seeded shuffle, wrapping around.

    >>> rows = [{"id": str(i)} for i in range(5)]
    >>> [[r["id"] for r in episode_prompts(rows, episode, 2, seed=0)] for episode in (1, 2, 3)]
    [['2', '1'], ['0', '4'], ['3', '2']]
    """
    order = list(rows)
    random.Random(seed).shuffle(order)
    per = per_episode or len(order)
    start = (episode - 1) * per
    return [order[(start + k) % len(order)] for k in range(min(per, len(order)))]


def sequence_logprobs(model, tokenizer, convs: list[tuple[list[dict], str]], *, batch_size: int = 4):
    """log p(completion | prompt) under `model` for each (prompt messages, completion text), tokenized as DPO
    tokenizes them."""
    import torch

    from train.template import split_preference

    seqs = []
    for prompt, text in convs:
        _, full, comp = split_preference(tokenizer, prompt, [{"role": "assistant", "content": text}])
        seqs.append((full, len(full) - len(comp)))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[float] = []
    try:
        for i in range(0, len(seqs), batch_size):
            batch = seqs[i : i + batch_size]
            width = max(len(f) for f, _ in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, (full, _) in enumerate(batch):
                ids[row, : len(full)] = torch.tensor(full)
                mask[row, : len(full)] = 1
            ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            for row, (full, start) in enumerate(batch):
                out.append(float(logp[row, max(start - 1, 0) : len(full) - 1].sum()))
    finally:
        model.train(was_training)
    return out


def kl_estimate(policy, reference, tokenizer, convs) -> float | None:
    """KL(policy || reference) per sequence, in nats, estimated on samples drawn from `policy`."""
    if not convs:
        return None
    lp = sequence_logprobs(policy, tokenizer, convs)
    lr = sequence_logprobs(reference, tokenizer, convs)
    return round(sum(a - b for a, b in zip(lp, lr, strict=True)) / len(convs), 6)


def _read(path: Path) -> list[dict]:
    return (
        [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        if path.is_file()
        else []
    )


class OnlineDPO:
    """One `train online-dpo` run: the episodes, then the output. `train bond` replaces how an episode trains
    (`make_trainer`, `after_training`, `METHOD`, `LOSS`, `LOGGED`)."""

    METHOD = ONLINE_DPO  # whose TRL defaults an episode's trainer gets
    LOSS = "DPO"
    LOGGED = DPO_METRICS  # what TRL logs that the episode's metrics keep
    COMMAND = "train online-dpo"

    def __init__(self, cfg: OnlineDPORunConfig, *, echo=print, after_episode=None):
        self.cfg, self.s, self.echo = cfg, cfg.settings, echo
        # called with each finished episode's number (tests stop a run here)
        self.after_episode = after_episode

    # --- one episode -------------------------------------------------------------------------------------------

    def sample(self, episode: int, prompts: list[dict], policy: Path, work: Path, verifier) -> dict:
        """Sample, score and pair with `synth reject-sample`'s method into `work/samples`; its manifest."""
        from synth.methods.reject_sample import RejectConfig, run_reject_sample

        s = self.s
        write_jsonl(work / "prompts.jsonl", [public(r) for r in prompts])
        shared = {f.name: getattr(s, f.name) for f in dataclasses.fields(RejectConfig) if hasattr(s, f.name)}
        shared.update(
            inputs=[str(work / "prompts.jsonl")],
            output=str(work / "samples"),
            model=str(policy),
            verifier=s.reward,
            cache=str(self.state.path / "samples.sqlite"),
            use_cache=True,
            overwrite=True,
            keep_per_prompt=0,
            pairs_per_prompt=1,
            seed=(s.seed or 0) + episode,  # each episode samples afresh, reproducibly
        )
        cfg = _ranked_config_class()(**shared)
        return run_reject_sample(cfg, verifier=_Borrowed(verifier))

    def make_trainer(self, episode: int, policy: Path, pairs: list[dict], tokenizer, trl_args, sft):
        """TRL's DPOTrainer on the episode's pairs, starting from `policy`."""
        from trl import DPOTrainer

        from train.data import preference_dataset

        return DPOTrainer(
            model=str(policy),
            ref_model=sft if self.s.reference == "sft" else None,
            args=trl_args,
            train_dataset=preference_dataset(pairs),
            processing_class=tokenizer,
            peft_config=build_peft_config(self.cfg, self.METHOD),
        )

    def after_training(self, trainer, episode: int, work: Path) -> dict:
        """What an episode keeps besides the policy (BOND: its anchor); returns metrics."""
        return {}

    def after_commit(self, episode: int) -> None:
        """Once the episode is committed: remove what only earlier episodes needed."""

    def train(self, episode: int, policy: Path, pairs: list[dict], work: Path, tokenizer):
        """Train on the episode's pairs; returns the trainer, its result and throughput, and the KL to the SFT model
        of the policy that sampled them."""
        from transformers import AutoModelForCausalLM

        from train.online_merging import attach_to
        from train.rewards import progress_callback

        cfg = self.cfg
        trl_args = build_trl_args(cfg, self.METHOD, work / "checkpoints")
        # the reference of --reference sft; the KL of the sampling policy is measured to it in both modes
        sft = AutoModelForCausalLM.from_pretrained(cfg.model)
        trainer = self.make_trainer(episode, policy, pairs, tokenizer, trl_args, sft)
        label = f"episode {episode}/{self.s.episodes} {self.LOSS.lower()}"
        trainer.add_callback(progress_callback(trainer, label))
        trainer.online_merging = attach_to(trainer, self.s, cfg.model)
        device = next(trainer.model.parameters()).device
        kl = kl_estimate(
            trainer.model, sft.to(device), tokenizer, self.samples_for_kl(work, self.s.system_prompt)
        )
        del sft
        result, throughput = fit(trainer)
        return trainer, trl_args, result, throughput, kl

    @staticmethod
    def samples_for_kl(work: Path, system_prompt: str | None) -> list[tuple[list[dict], str]]:
        """(the messages the policy saw, its sample) for every sample with text."""
        from synth.prompts import prompt_of

        prompts = {r["id"]: prompt_of(r, system_prompt)[0] for r in _read(work / "prompts.jsonl")}
        return [
            (prompts[smp["parent_id"]], smp["text"])
            for smp in _read(work / "samples" / "samples.jsonl")
            if smp["parent_id"] in prompts and smp.get("text")
        ]

    def run_episode(
        self, episode: int, prompts: list[dict], policy: Path, tokenizer, verifier
    ) -> tuple[Path, dict | None]:
        """One episode, committed into `episode-NNN`; returns the policy after it and its metrics. In a distributed
        run the main process samples, keeps what the method keeps besides the policy (`after_training`: BOND's
        anchor) and commits while the others wait; every process trains and saves (their metrics: None)."""
        final = self.state.path / EPISODE.format(episode)
        work = final.with_name(final.name + ".partial")
        metrics = launch.on_main(lambda: self.sample_episode(episode, prompts, policy, work, verifier))
        pairs = _read(work / "samples" / "preference.jsonl")
        trained = self.train(episode, policy, pairs, work, tokenizer) if pairs else None
        if trained is not None:
            prepared = Prepared(self.cfg, tokenizer, pairs, [], trained[1], None, work / "model")
            save_causal_lm(trained[0], prepared)  # every process: a sharded model is gathered to save it
        new_policy = final / "model" if pairs else policy

        def keep_and_commit() -> dict:
            own = self.after_training(trained[0], episode, work) if trained is not None else {}
            return self.commit_episode(metrics, trained, own, policy, new_policy, work, final)

        return new_policy, launch.on_main(keep_and_commit)

    def sample_episode(self, episode: int, prompts: list[dict], policy: Path, work: Path, verifier) -> dict:
        """Sample, score and pair into `work`; the episode's metrics so far."""
        s = self.s
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        self.echo(f"episode {episode}/{s.episodes}: sampling {len(prompts)} prompts x {s.n} from {policy}")
        sampled = self.sample(episode, prompts, policy, work, verifier)
        samples = _read(work / "samples" / "samples.jsonl")
        pairs = _read(work / "samples" / "preference.jsonl")
        skipped = dict(Counter(r["reject_reason"] for r in _read(work / "samples" / "rejected.jsonl")))
        stats = reward_stats([x["score"] for x in samples])
        llm = sampled.get("llm", {})
        self.echo(
            f"episode {episode}/{s.episodes}: reward mean {_fmt(stats['reward_mean'])} median "
            f"{_fmt(stats['reward_median'])} over {stats['completions']} samples; {len(pairs)} pairs, "
            f"{sum(skipped.values())} prompts skipped"
            + (f" ({', '.join(f'{k} {v}' for k, v in skipped.items())})" if skipped else "")
        )
        return {
            "episode": episode,
            "policy": str(policy),
            "policy_identity": sampled["backend"]["model_identity"],
            "reference": s.reference,
            "prompts": len(prompts),
            "samples": len(samples),
            **stats,
            "pairs": len(pairs),
            "skipped": sum(skipped.values()),
            "skipped_reasons": skipped,
            "pair_margin_mean": sampled["metrics"].get("pair_margin_mean"),
            "generation": {
                "fresh_samples": llm.get("fresh_samples"),
                "completion_tokens": llm.get("fresh_completion_tokens"),
                "seconds": llm.get("backend_seconds"),
                "tokens_per_s": llm.get("fresh_tokens_per_s"),
            },
        }

    def commit_episode(
        self, metrics: dict, trained, own: dict, policy: Path, new_policy: Path, work: Path, final: Path
    ) -> dict:
        """The training metrics (with `own`, what `after_training` returned) and log, then `work` renamed to
        `final`; the policy before it is removed, and `after_commit` removes what only earlier episodes needed."""
        from train.dpo import last_logged

        e, total = metrics["episode"], self.s.episodes
        if trained is not None:
            trainer, _, result, throughput, kl = trained
            history = trainer.state.log_history
            write_jsonl(work / "log_history.jsonl", orjson.loads(orjson.dumps(history, default=str)))
            metrics["kl_to_sft"] = kl
            metrics["training"] = {
                "train_loss": result.metrics.get("train_loss"),
                "global_step": trainer.state.global_step,
                **last_logged(history, self.LOGGED),
                **own,
                **throughput,
            }
            if trainer.online_merging is not None:
                metrics["training"]["online_merging"] = trainer.online_merging.info()
            self.echo(
                f"episode {e}/{total}: KL(policy || SFT) {_fmt(kl)} nats; {self.LOSS} loss "
                f"{_fmt(result.metrics.get('train_loss'))}, {throughput['tokens_per_s']} tokens/s"
            )
        else:
            metrics["kl_to_sft"] = None
            metrics["training"] = None
            self.echo(f"episode {e}/{total}: no pairs to train on; the policy is unchanged")
        metrics["policy_after"] = str(new_policy)
        write_json(work / "episode.json", metrics)
        os.replace(work, final)
        if policy != new_policy and policy.parent.parent == self.state.path:
            shutil.rmtree(policy, ignore_errors=True)  # only the newest policy is ever needed again
        self.after_commit(e)
        return metrics

    # --- the run -----------------------------------------------------------------------------------------------

    def run(self) -> Path | None:
        from train import online_merging
        from train.data import read_rows, split_rows
        from train.rewards import build_reward, check_rewardable

        cfg, s = self.cfg, self.s
        if s.n < 2:
            raise InputError(f"--n {s.n}: a pair needs at least 2 samples per prompt")
        relaunch = launch.plan(cfg)
        self.echo = launch.main_only(self.echo)
        rows, invalid = read_rows(
            cfg.data.path, input_format=cfg.data.input_format, max_rows=cfg.data.max_rows, kind="prompt"
        )
        with launch.open_run(cfg, fingerprint=fingerprint(cfg, rows), echo=self.echo) as run:
            self.state = run.state
            tokenizer, report = check_data(cfg, "prompt", rows, invalid, run.path, echo=self.echo)
            check_rewardable(s, rows)
            online_merging.check(cfg)
            if relaunch is not None:
                return relaunch.run(run, echo=self.echo)
            train_rows, eval_rows = split_rows(rows, cfg.data.eval_fraction)
            trl_args = build_trl_args(cfg, self.METHOD, run.state.path / "checkpoints")
            done = [orjson.loads((d / "episode.json").read_bytes()) for d in run.state.episodes()]
            policy = Path(done[-1]["policy_after"]) if done else Path(cfg.model)
            if done:
                self.echo(f"resuming after episode {len(done)}/{s.episodes} (policy {policy})")
            verifier = launch.on_main(lambda: build_reward(s))  # the main process samples and scores
            try:
                for episode in range(len(done) + 1, s.episodes + 1):
                    prompts = episode_prompts(train_rows, episode, s.prompts_per_episode, trl_args.seed)
                    policy, metrics = self.run_episode(episode, prompts, policy, tokenizer, verifier)
                    done.append(metrics)
                    if self.after_episode is not None:
                        self.after_episode(episode)
                verifier_info = verifier.info() if verifier is not None else None
            finally:
                if verifier is not None:
                    verifier.close()
            if not launch.is_main_process():
                return None
            prepared = Prepared(cfg, tokenizer, train_rows, eval_rows, trl_args, None, run.path)
            self.write_outputs(run, policy, done, prepared)
            manifest = describe_run(
                cfg,
                command=self.COMMAND,
                trl_args=trl_args,
                tokenizer=tokenizer,
                rows=rows,
                train_rows=train_rows,
                eval_rows=eval_rows,
                report=report,
            )
            manifest.update(self.summary(done, verifier_info))
            write_json(run / "manifest.json", manifest)
            return run.commit()

    def write_outputs(self, run, policy: Path, episodes: list[dict], prepared: Prepared) -> None:
        """The last policy, and every episode's samples, pairs and skipped prompts, into the output."""
        from transformers import AutoModelForCausalLM

        if policy.parent.parent == self.state.path:
            for f in policy.iterdir():
                os.replace(f, run.path / f.name)
        else:  # no episode trained: the output is the starting model
            shutil.copytree(policy, run.path, dirs_exist_ok=True)
        with (
            JsonlWriter(run / "rollouts.jsonl") as roll,
            JsonlWriter(run / "preference.jsonl") as prefs,
            JsonlWriter(run / "rejected.jsonl") as rejected,
            JsonlWriter(run / "log_history.jsonl") as history,
        ):
            for m in episodes:
                e, d = m["episode"], self.state.path / EPISODE.format(m["episode"])
                pairs = _read(d / "samples" / "preference.jsonl")
                role = {(p["parent_id"], p["chosen_sample_index"]): "chosen" for p in pairs}
                role.update({(p["parent_id"], p["rejected_sample_index"]): "rejected" for p in pairs})
                roll.write_many(_sample_rollout(x, e, role) for x in _read(d / "samples" / "samples.jsonl"))
                prefs.write_many({**p, "episode": e} for p in pairs)
                rejected.write_many({**r, "episode": e} for r in _read(d / "samples" / "rejected.jsonl"))
                history.write_many({**h, "episode": e} for h in _read(d / "log_history.jsonl"))
        model = AutoModelForCausalLM.from_pretrained(run.path)
        with JsonlWriter(run / "samples.jsonl") as w:
            w.write_many(ONLINE_DPO.sanity(model, prepared))

    def summary(self, episodes: list[dict], verifier_info: dict) -> dict:
        trained = [m["training"] for m in episodes if m["training"]]
        gen = [m["generation"] for m in episodes]
        gen_tokens = sum(g["completion_tokens"] or 0 for g in gen)
        gen_seconds = sum(g["seconds"] or 0 for g in gen)
        train_tokens = sum(t["tokens"] for t in trained)
        train_seconds = sum(t["train_runtime_s"] for t in trained)
        return {
            "settings": orjson.loads(orjson.dumps(dataclasses.asdict(self.s), default=str)),
            "reward": {"spec": self.s.reward, "verifier": verifier_info},
            "episodes": episodes,
            "counts": {
                "episodes": len(episodes),
                "samples": sum(m["samples"] for m in episodes),
                "pairs": sum(m["pairs"] for m in episodes),
                "skipped": sum(m["skipped"] for m in episodes),
            },
            "metrics": {
                "first_reward_mean": episodes[0]["reward_mean"] if episodes else None,
                "last_reward_mean": episodes[-1]["reward_mean"] if episodes else None,
                "last_kl_to_sft": next(
                    (m["kl_to_sft"] for m in reversed(episodes) if m["kl_to_sft"] is not None), None
                ),
            },
            "throughput": {
                "generation_tokens": gen_tokens,
                "generation_seconds": round(gen_seconds, 3),
                "generation_tokens_per_s": round(gen_tokens / gen_seconds, 1) if gen_seconds else None,
                "training_tokens": train_tokens,
                "training_seconds": round(train_seconds, 3),
                "training_tokens_per_s": round(train_tokens / train_seconds, 1) if train_seconds else None,
            },
        }


def _sample_rollout(x: dict, episode: int, role: dict) -> dict:
    verdict = {"score": x["score"], "verdict": x["verdict"], "detail": x["why"]}
    if x.get("extracted") is not None:
        verdict["extracted"] = x["extracted"]
    if x.get("components"):
        verdict["components"] = x["components"]
    return {
        **rollout(
            verdict,
            prompt_id=x["parent_id"],
            completion=x["text"],
            verifier=x["verifier"],
            episode=episode,
            sample=x["sample_index"],
        ),
        "pair": role.get((x["parent_id"], x["sample_index"])),
        "finish_reason": x["finish_reason"],
        "completion_tokens": x["completion_tokens"],
    }


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def run_online_dpo(cfg: OnlineDPORunConfig, *, echo=print, after_episode=None) -> Path | None:
    return OnlineDPO(cfg, echo=echo, after_episode=after_episode).run()


__all__ = ["OnlineDPO", "episode_prompts", "kl_estimate", "run_online_dpo", "settings_class"]
