"""Training beyond one process: every `train` command runs data-parallel or sharded through accelerate.

`--num-processes N` (N > 1) or `--accelerate-config FILE` makes the command a launcher. It does once what must be
done once, then starts the workers and waits for them:

1. it refuses what cannot start, before reading anything: a strategy whose package is missing (DeepSpeed), more
   processes than the machine has GPUs, a sharded strategy on CPU, a configuration for several machines;
2. it opens the run directory and runs `train check` (and the command's own preflight) once;
3. it runs `accelerate launch` with the strategy's preset (`rules/accelerate_<strategy>.yaml`) or the user's config,
   `--num_processes N`, the run's own mixed precision, one share of the CPU cores per process, and the same `train`
   command line as the script (`-m train.cli ...`); the workers find the run directory in `POSTTRAIN_RUN`;
4. when every worker succeeded it commits the run directory; otherwise it removes the partial output and keeps the
   checkpoints for `--resume`, as a single process does.

In a worker every process trains; only the main process writes the run directory (model, samples, rollouts, log
history, manifest). A command started by `accelerate launch` itself (several machines: see the README) has no
launcher: its main process opens the directory and runs the check while the others wait (`on_main`).

>>> plan = LaunchPlan.build(LaunchSettings(num_processes=2, command=["sft"]), gpus=0, precision="no")
>>> plan.strategy, plan.config_file.name, plan.threads_per_process >= 1
('ddp', 'accelerate_ddp.yaml', True)
>>> LaunchPlan.build(LaunchSettings(num_processes=2, strategy="fsdp", command=["sft"]), gpus=0, precision="no").strategy
'fsdp'
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from synth.config import setting, settings

RUN_ENV = "POSTTRAIN_RUN"  # set by the launcher for its workers: the run directory it owns
STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")


@settings
class LaunchSettings:
    """How many processes train and how they share the model (`--num-processes`, `--strategy`, ...)."""

    num_processes: int | None = setting(
        None,
        "Processes to train with, one per GPU (on CPU: per core, over gloo); above 1 the command relaunches itself "
        "through `accelerate launch` after checking the data once [default: 1, or the --accelerate-config's].",
        min=1,
    )
    strategy: str | None = setting(
        None,
        "How the processes share the model: ddp (a full replica each), fsdp (FSDP2: parameters, gradients and "
        "optimizer state sharded, one unit per decoder layer), zero2 / zero3 (DeepSpeed ZeRO; pip install "
        "'posttrain[deepspeed]'; GPUs only). ddp and fsdp also run on CPU, over gloo [default: ddp].",
        choices=STRATEGIES,
    )
    accelerate_config: str | None = setting(
        None,
        "Your own accelerate config file (`accelerate config` writes one) instead of the strategy's preset.",
        path={"exists": True, "dir_okay": False},
        metavar="FILE",
    )
    command: list = setting([], "The train command line the workers run (the CLI sets it).", cli=False)


class StoppedByMain(SystemExit):
    """Raised in the other processes of a distributed run when the main process failed: the main process reports
    why, these exit with status 1 and say nothing more (a `SystemExit`, so no CLI prints a traceback for it)."""

    def __init__(self, why: str):
        super().__init__(1)
        self.why = why


# --- where this process stands ---------------------------------------------------------------------------------


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_distributed_run() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """The process that writes (global rank 0); every process of a single-process run."""
    return os.environ.get("RANK", "0") == "0"


def is_launched() -> bool:
    """A worker of posttrain's launcher (which owns the run directory and ran the check)."""
    return RUN_ENV in os.environ


def main_only(echo):
    """`echo` on the main process, silence on the others."""
    return echo if is_main_process() else (lambda text: None)


def _state():
    """accelerate's process state (the process group), initialised for CPU when there is no GPU."""
    import torch
    from accelerate import PartialState

    if not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")
    return PartialState(cpu=os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"))


def on_main(fn, *, share=None):
    """`fn()` on the main process while the others wait; the main process returns its result, the others
    `share(result)` (picklable; None without `share`). A failure on the main process stops the others with
    `StoppedByMain` instead of leaving them waiting. Without a distributed run, just `fn()`."""
    if not in_distributed_run():
        return fn()
    from accelerate.utils import broadcast_object_list

    _state()
    box: list = [None]
    if is_main_process():
        try:
            value = fn()
        except BaseException as e:
            box[0] = ("failed", f"{type(e).__name__}: {e}")
            broadcast_object_list(box)
            raise
        box[0] = ("ok", share(value) if share else None)
        broadcast_object_list(box)
        return value
    broadcast_object_list(box)
    status, payload = box[0]
    if status == "failed":
        raise StoppedByMain(payload)
    return payload


def gather_to_main(records: list) -> list:
    """Every process's records, in rank order (each process calls it with its own); the main one writes them."""
    if not in_distributed_run():
        return records
    from accelerate.utils import gather_object

    _state()
    return gather_object(records)


# --- the run directory in a worker ----------------------------------------------------------------------------


class AttachedRun:
    """The run directory as a process that does not own it sees it: the main process writes into `path` (the
    partial output), the owner (the launcher, or the main process of an `accelerate launch` run) commits it."""

    def __init__(self, output: str | Path, path: str | Path, *, resumed: bool):
        from train.resume import StateDir

        self.state = StateDir(output)
        self.path = Path(path)
        self.resumed = resumed

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __enter__(self) -> AttachedRun:
        return self

    def __exit__(self, exc_type, exc, tb):
        return False

    def commit(self) -> None:
        """Nothing to do: the owner commits. None says so to the caller (which reports nothing)."""
        return None


def open_run(cfg, *, fingerprint: dict, echo):
    """The run directory of this process: `train.resume.TrainingRun` where it is owned here (a single process, the
    launcher, the main process of an `accelerate launch` run), an `AttachedRun` elsewhere."""
    from train.common import TrainError
    from train.resume import StateDir, TrainingRun

    quiet_followers()
    given = os.environ.get(RUN_ENV)
    if given:
        run = json.loads(given)
        if run["output"] != str(StateDir(cfg.output_dir).output):
            raise TrainError(f"{RUN_ENV} names the run {run['output']}, not {cfg.output_dir}: unset it")
        return AttachedRun(run["output"], run["path"], resumed=run["resumed"])
    if not in_distributed_run():
        return TrainingRun(cfg, fingerprint=fingerprint, echo=echo)
    opened = on_main(
        lambda: TrainingRun(cfg, fingerprint=fingerprint, echo=echo), share=lambda r: (str(r.path), r.resumed)
    )
    if is_main_process():
        return opened
    return AttachedRun(cfg.output_dir, opened[0], resumed=opened[1])


def quiet_followers() -> None:
    """No progress bars and no warnings from the processes other than the main one: they repeat its own."""
    if is_main_process():
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def launcher_check(out: Path) -> dict | None:
    """In a launched worker: the launcher's `train check` report (None when it was skipped)."""
    f = Path(out) / "check.json"
    return json.loads(f.read_text()) if f.is_file() else None


# --- what a worker's training needs to know --------------------------------------------------------------------


def strategy_in_use() -> str | None:
    """The strategy accelerate set this process up for, from what `accelerate launch` told it; None: one process."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return f"zero{os.environ.get('ACCELERATE_DEEPSPEED_ZERO_STAGE', '')}"
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    return "ddp" if in_distributed_run() else None


def is_sharded() -> bool:
    """Parameters split across processes (FSDP, ZeRO-3): the whole model exists only when gathered."""
    return strategy_in_use() in ("fsdp", "zero3")


def trl_defaults() -> dict:
    """TRL settings a strategy needs: FSDP checkpoints activations itself, and transformers refuses both at once."""
    if os.environ.get("FSDP_ACTIVATION_CHECKPOINTING", "").lower() == "true" and strategy_in_use() == "fsdp":
        return {"gradient_checkpointing": False}
    return {}


def describe(trl_args) -> dict:
    """The manifest's `distributed` section: who trained, and the global batch that follows."""
    world = int(trl_args.world_size)
    per_device = int(trl_args.per_device_train_batch_size)
    accumulation = int(trl_args.gradient_accumulation_steps)
    return {
        "world_size": world,
        "strategy": strategy_in_use(),
        "launcher": "posttrain" if is_launched() else "accelerate" if in_distributed_run() else None,
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
        "global_batch_size": per_device * accumulation * world,
    }


# --- the launcher ------------------------------------------------------------------------------------------------


def preset(strategy: str) -> Path:
    from rules import rules_path

    return rules_path(f"accelerate_{strategy}.yaml")


def read_accelerate_config(path: str | Path) -> dict:
    from train.config import ConfigError, load_yaml

    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the accelerate config ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an accelerate config is a mapping (as `accelerate config` writes it)")
    return data


def strategy_of(config: dict) -> str:
    """The strategy an accelerate config sets up (zero1 for ZeRO stage 1, which has no preset)."""
    kind = str(config.get("distributed_type", "NO")).upper()
    if kind == "DEEPSPEED":
        return f"zero{(config.get('deepspeed_config') or {}).get('zero_stage', '')}"
    return "fsdp" if kind == "FSDP" else "ddp"


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def decoder_layer_classes(model: str) -> list[str]:
    """The classes FSDP wraps one by one: the model's `_no_split_modules` (its decoder layer)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(model)
    names = []
    for arch in config.architectures or []:
        names += [n for n in getattr(getattr(transformers, arch, None), "_no_split_modules", None) or []]
    return sorted(set(names))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LaunchPlan:
    """What the launcher will run, decided and checked before anything is read."""

    num_processes: int
    strategy: str
    config_file: Path
    gpus: int
    precision: str  # the run's: bf16, fp16 or no (accelerate's names)
    command: list[str]  # the train command line the workers run
    port: int | None = None  # None: the user's config names it
    wrap: list[str] | None = None  # FSDP's units, when posttrain's preset is used

    @property
    def threads_per_process(self) -> int:
        from curate.threads import usable_cpus

        return max(1, usable_cpus() // self.num_processes)

    @classmethod
    def build(cls, s: LaunchSettings, *, gpus: int, precision: str, model: str | None = None) -> LaunchPlan:
        """Check the settings against this machine (`gpus` visible) and decide the launch; raises what stops it."""
        from train.common import TrainError
        from train.config import ConfigError

        user = read_accelerate_config(s.accelerate_config) if s.accelerate_config else None
        if user is not None and s.strategy is not None:
            raise ConfigError(
                "--strategy picks a preset and --accelerate-config is your own: give one of them "
                f"(your config sets up {strategy_of(user)})"
            )
        if not s.command:
            raise ConfigError(
                "--num-processes relaunches the `train` command line: run it from the shell, or start your own "
                "script with `accelerate launch`"
            )
        n = s.num_processes or int((user or {}).get("num_processes") or 1)
        machines = int((user or {}).get("num_machines") or 1)
        if machines > 1:
            raise ConfigError(
                f"{s.accelerate_config}: num_machines {machines}: on several machines, run `accelerate launch` on "
                "each machine yourself (README: training beyond one device); posttrain's launcher starts one"
            )
        strategy = strategy_of(user) if user is not None else s.strategy or "ddp"
        flag = f"--strategy {strategy}" if user is None else f"{s.accelerate_config} ({strategy})"
        package = "deepspeed" if strategy.startswith("zero") else None  # also the name of posttrain's extra
        if package and importlib.util.find_spec(package) is None:
            raise TrainError(
                f"{flag} needs {package}, which is not installed: pip install 'posttrain[{package}]'"
            )
        if gpus == 0 and package:
            raise TrainError(
                f"{flag} needs GPUs: DeepSpeed runs on GPUs only (on CPU, over gloo: --strategy ddp or fsdp)"
            )
        if gpus and n > gpus:
            raise TrainError(
                f"--num-processes {n}: this machine has {gpus} GPU(s) visible (CUDA_VISIBLE_DEVICES), one per "
                f"process; ask for at most {gpus}"
            )
        wrap = decoder_layer_classes(model) if strategy == "fsdp" and user is None and model else None
        return cls(
            num_processes=n,
            strategy=strategy,
            config_file=Path(s.accelerate_config) if user is not None else preset(strategy),
            gpus=gpus,
            precision=precision,
            command=list(s.command),
            port=None if (user or {}).get("main_process_port") else _free_port(),
            wrap=wrap or None,
        )

    def accelerate_command(self) -> list[str]:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(self.config_file)]
        cmd += ["--num_processes", str(self.num_processes), "--num_machines", "1"]
        cmd += ["--mixed_precision", self.precision]
        if self.port is not None:
            cmd += ["--main_process_port", str(self.port)]
        if self.wrap:
            cmd += ["--fsdp_transformer_layer_cls_to_wrap", ",".join(self.wrap)]
        if not self.gpus:
            cmd += ["--num_cpu_threads_per_process", str(self.threads_per_process)]
        return [*cmd, "-m", "train.cli", *self.command]

    def environment(self, run) -> dict:
        env = dict(os.environ)
        env[RUN_ENV] = json.dumps(
            {"output": str(run.state.output), "path": str(run.path), "resumed": bool(run.resumed)}
        )
        if not self.gpus:
            env["ACCELERATE_USE_CPU"] = "true"  # accelerate's CPU mode: gloo, one process per core share
        return env

    def run(self, run, *, echo) -> Path:
        """Start the workers on `run` (a `TrainingRun`), wait, and commit it; raises `TrainError` if any failed."""
        from train.common import TrainError

        cmd = self.accelerate_command()
        where = f"{self.gpus} GPU(s)" if self.gpus else f"CPU, {self.threads_per_process} thread(s) each"
        echo(f"launching {self.num_processes} processes ({self.strategy}, {where}): {shlex.join(cmd)}")
        code = subprocess.run(cmd, env=self.environment(run), check=False).returncode
        if code != 0:
            raise TrainError(
                f"training failed in the worker processes (accelerate launch exited with {code}; their messages "
                "are above)"
            )
        if not (run.path / "manifest.json").is_file():
            raise TrainError("the worker processes exited without writing the run (no manifest.json)")
        return run.commit()


def plan(cfg) -> LaunchPlan | None:
    """The launch this command asks for, checked against the machine; None: train in this process (one process
    asked for, or this process is already one of a distributed run)."""
    s = cfg.launch
    if is_launched() or in_distributed_run():
        return None
    if (s.num_processes or 1) <= 1 and s.accelerate_config is None:
        if s.strategy not in (None, "ddp"):
            from train.config import ConfigError

            raise ConfigError(
                f"--strategy {s.strategy} shards the model across processes: add --num-processes N"
            )
        return None
    from train.common import device_defaults

    trl = {**device_defaults(cfg.trl), **cfg.trl}  # the workers' precision, as build_trl_args will decide it
    precision = "bf16" if trl.get("bf16") else "fp16" if trl.get("fp16") else "no"
    return LaunchPlan.build(s, gpus=visible_gpus(), precision=precision, model=cfg.model)
