"""The Online Merging Optimizer (Lu et al., 2024, used in Qwen2's preference training against the alignment tax):
each optimizer step's update is merged with the SFT task vector before it is applied.

    tau      = theta_sft - theta_base              the SFT task vector (the model trained, minus --online-merging-base)
    u        = theta_after_step - theta_before     what the trainer's own optimizer (AdamW, ...) would apply
    d        = tau * ||u|| / ||tau||               per tensor: the SFT direction at the update's scale
    applied  = ties: base-free TIES of (u, d): each trimmed to its top-`density` entries by magnitude, a sign
                     elected per entry from (1 - w) * u' + w * d', the agreeing entries averaged with weights
                     (1 - w, w)                                     (`train.merge.Ties` with a zero base)
               dare: (1 - w) * drop(u) / density + w * drop(d) / density, entries kept at random with
                     probability `density`, masks seeded by the parameter's name and the step
                                                                    (`train.merge.Dare` with a zero base)
    theta    = theta_before + applied

`w` is `--online-merging-weight`. Rescaling the task vector to the update's norm is posttrain's choice: tau is a
whole fine-tuning's displacement, u one step's, so merging their raw values would add a share of the whole SFT
displacement at every step; rescaled, `w` is the share of the SFT direction in the step and the step keeps the size
the optimizer gave it. TIES and DARE are `train.merge`'s own (`Ties`, `Dare`), run on the step instead of on two
checkpoints.

The merge wraps the trainer's own optimizer (the one `args.optim` names, with the Trainer's weight-decay groups):
`attach` creates it before training and registers a pre-step hook (remember the parameters) and a post-step hook
(replace the update by the merged one). TRL's trainers take it as their optimizer unchanged. Full-weight training
only: LoRA's adapter weights have no SFT task vector, and sharded parameters (DeepSpeed, FSDP) are refused.
"""

from __future__ import annotations

from functools import cache

from train.config import ConfigError

METHODS = ("ties", "dare")
CLI_EXCLUDED: tuple[str, ...] = ()


@cache
def settings_class():
    """The opt-in settings, a bundle that `train dpo`, `online-dpo`, `rl` and `bond` include."""
    from synth.config import setting, settings

    @settings
    class OnlineMergingSettings:
        online_merging: str | None = setting(
            None,
            "Online Merging Optimizer (Qwen2): merge every optimizer update with the SFT task vector (--model minus "
            "--online-merging-base), TIES- or DARE-style [default: off].",
            choices=METHODS,
        )
        online_merging_base: str | None = setting(
            None,
            "The pre-trained model --model was fine-tuned from (same architecture and vocabulary); needed by "
            "--online-merging.",
            metavar="DIR",
        )
        online_merging_density: float = setting(
            0.5,
            "Share of the entries of the update and of the task vector kept (ties: the largest; dare: at random).",
            min=0,
            max=1,
            min_open=True,
        )
        online_merging_weight: float = setting(
            0.5,
            "Share of the SFT direction in each merged update (the task vector is rescaled to the update's norm "
            "per tensor, so this is not a step size).",
            min=0,
            max=1,
        )

    return OnlineMergingSettings


class OnlineMerging:
    """Merges each step's update with the SFT task vector (`taus`: parameter name -> tensor)."""

    def __init__(self, method: str, *, density: float, weight: float, taus: dict, seed: int = 0):
        from train.merge import Dare, Ties

        if method not in METHODS:
            raise ConfigError(f"--online-merging {method!r}: choose from {', '.join(METHODS)}")
        self.name, self.density, self.weight, self.seed = method, density, weight, seed
        self.merger = Ties(density) if method == "ties" else Dare(density, seed)
        self.taus = taus
        self.steps = 0

    def merged_update(self, name: str, update, tau, step: int):
        """The update applied instead of `update`, for the parameter `name` at `step`."""
        import torch

        norm = tau.norm()
        direction = tau * (update.norm() / norm) if norm > 0 else torch.zeros_like(update)
        return self.merger.merge(
            [update, direction], [1.0 - self.weight, self.weight], torch.zeros_like(update), f"{name}@{step}"
        )

    def attach(self, optimizer, named_parameters, *, step=None) -> None:
        """Merge every update `optimizer` makes to the trainable parameters in `named_parameters`; `step()` gives
        the step number that seeds DARE's masks (default: this object's own count)."""
        import torch

        names = {p: n for n, p in named_parameters if p.requires_grad}
        missing = sorted(n for n in names.values() if n not in self.taus)
        if missing:
            raise ConfigError(
                f"--online-merging: no SFT task vector for {len(missing)} trained parameter(s) ({', '.join(missing[:3])}); "
                "the model and --online-merging-base must have the same tensors"
            )
        for p, n in names.items():
            self.taus[n] = self.taus[n].to(device=p.device, dtype=torch.float32)
        before: dict = {}

        def remember(opt, args, kwargs):
            before.clear()
            for group in opt.param_groups:
                for p in group["params"]:
                    if p in names:
                        before[p] = p.detach().clone()

        def merge(opt, args, kwargs):
            k = step() if step is not None else self.steps
            with torch.no_grad():
                for p, old in before.items():
                    n = names[p]
                    update = (p - old).float()
                    p.copy_((old.float() + self.merged_update(n, update, self.taus[n], k)).to(p.dtype))
            before.clear()
            self.steps += 1

        optimizer.register_step_pre_hook(remember)
        optimizer.register_step_post_hook(merge)

    def info(self) -> dict:
        return {
            "method": self.name,
            "density": self.density,
            "weight": self.weight,
            "seed": self.seed,
            "merged_steps": self.steps,
            "task_vector_tensors": len(self.taus),
        }


def task_vector(model: str, base: str) -> dict:
    """theta_model - theta_base for every float tensor, in float32 (checked like `train merge` first: same
    architecture, config, tensor names, shapes and vocabulary, or a `MergeError` before anything is read)."""
    import torch

    from train.merge import TensorReader, check_compatible, inspect_checkpoint

    sft, pre = inspect_checkpoint(model), inspect_checkpoint(base)
    check_compatible(sft, pre)
    out = {}
    with TensorReader() as reader:
        for name in sft.tensors:
            x = reader.get(sft, name)
            if x.is_floating_point():
                out[name] = x.to(torch.float32) - reader.get(pre, name).to(torch.float32)
    return out


def check(cfg, rows=None) -> None:
    """Refuse settings the merge cannot use, before any model loads (a `Method.preflight`)."""
    s = getattr(cfg, "settings", None)
    if s is None or not getattr(s, "online_merging", None):
        return
    if not s.online_merging_base:
        raise ConfigError(
            "--online-merging needs --online-merging-base DIR (the pre-trained model --model came from)"
        )
    if cfg.lora is not None:
        raise ConfigError("--online-merging merges full-weight updates with the SFT task vector: drop --lora")
    strategy = getattr(getattr(cfg, "launch", None), "strategy", None)
    if strategy in ("fsdp", "zero2", "zero3"):
        raise ConfigError(
            f"--online-merging needs whole parameters on each process: not with --strategy {strategy} (use ddp)"
        )


def attach_to(trainer, settings, model: str) -> OnlineMerging | None:
    """With `--online-merging`, create `trainer`'s optimizer now and merge its updates with the task vector of
    `model` (the SFT model) relative to `--online-merging-base`; None when the option is off."""
    if settings is None or not getattr(settings, "online_merging", None):
        return None
    from accelerate.utils import is_peft_model

    s = settings
    if is_peft_model(trainer.model):
        raise ConfigError("--online-merging merges full-weight updates with the SFT task vector: drop --lora")
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        raise ConfigError(
            "--online-merging needs whole parameters on each process: not with DeepSpeed or FSDP"
        )
    merging = OnlineMerging(
        s.online_merging,
        density=s.online_merging_density,
        weight=s.online_merging_weight,
        taus=task_vector(model, s.online_merging_base),
        seed=trainer.args.seed,
    )
    merging.attach(
        trainer.create_optimizer(), trainer.model.named_parameters(), step=lambda: trainer.state.global_step
    )
    return merging


__all__ = ["OnlineMerging", "attach_to", "check", "settings_class", "task_vector"]
