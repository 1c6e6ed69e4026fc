"""What a training run keeps across a kill: `.OUT.state/`, a hidden directory beside the output directory.

The output directory is built by `curate.io.RunDir` in a hidden `.OUT.PID.*.partial` sibling, which the next run
removes once its process is gone, so nothing meant to survive a kill can live there. Checkpoints (`sft`, `dpo`,
`reward`, `rl`) and finished episodes (`online-dpo`) live in `.OUT.state/` instead, under a name that no cleanup
matches. When the run commits, its checkpoints move into the output and the state directory is removed. A later
run to the same output that finds it refuses to start over silently: `--resume` continues from it, `--force`
discards it.

>>> import tempfile
>>> state = StateDir(tempfile.mkdtemp() + "/run")
>>> state.path.name, state.last_checkpoint()
('.run.state', None)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson

from curate.io import RunDir
from train.common import TrainError

STATE_FILE = "state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_MEMBER = re.compile(r"^member-(\d+)$")


class StateDir:
    """The state directory of the run that writes `output`."""

    def __init__(self, output: str | Path):
        out = Path(output).absolute()
        self.output = out
        self.path = out.parent / f".{out.name}.state"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint: transformers writes `trainer_state.json` last, and a kill while it
        is being written leaves it empty or cut short, so it must also parse."""
        if not self.checkpoints.is_dir():
            return None
        done = [
            (int(m.group(1)), p)
            for p in self.checkpoints.iterdir()
            if (m := _CHECKPOINT.match(p.name)) and _complete(p / "trainer_state.json")
        ]
        return max(done)[1] if done else None

    def episodes(self) -> list[Path]:
        """Finished episodes (`episode-NNN`, committed by rename), in order."""
        if not self.path.is_dir():
            return []
        return sorted(
            p for p in self.path.iterdir() if re.fullmatch(r"episode-\d{3,}", p.name) and p.is_dir()
        )

    def members(self) -> list[Path]:
        """Finished ensemble members (`member-N`, committed run directories of `train reward --ensemble`)."""
        if not self.path.is_dir():
            return []
        done = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := _MEMBER.match(p.name))]
        return [p for _, p in sorted(done) if (p / "manifest.json").is_file()]

    def progress(self) -> str | None:
        """What a resumed run would continue from, in words; None when there is nothing worth keeping."""
        episodes = self.episodes()
        if episodes:
            return f"{len(episodes)} finished episode(s), the last in {episodes[-1]}"
        members = self.members()
        inner = (
            [
                p
                for sub in sorted(self.path.glob(".member-*.state"))
                if (p := StateDir(sub.parent / sub.name[1:-6]).progress())
            ]
            if self.path.is_dir()
            else []
        )
        if members or inner:
            return ", ".join(
                [f"{len(members)} finished ensemble member(s)", *(f"a member's {p}" for p in inner)]
            )
        ckpt = self.last_checkpoint()
        return f"checkpoint {ckpt}" if ckpt is not None else None

    def recorded(self) -> dict:
        f = self.path / STATE_FILE
        return orjson.loads(f.read_bytes()) if f.is_file() else {}

    def open(self, *, resume: bool, force: bool, fingerprint: dict) -> bool:
        """Make the directory ready for a run; returns whether the run resumes.

        `fingerprint` says what the state is valid for (command, model, data hash): resuming with another one is
        refused. Without `resume`, state with progress in it is an error naming it, unless `force` discards it.
        """
        progress = self.progress() if self.path.is_dir() else None
        if resume and force:
            raise TrainError("--resume and --force contradict each other: resume the run, or start over")
        if resume:
            if progress is None:
                raise TrainError(
                    f"--resume: nothing to resume for {self.output} (no checkpoint or finished episode in "
                    f"{self.path}); run without --resume"
                )
            before = self.recorded()
            changed = [k for k, v in fingerprint.items() if k in before and before[k] != v]
            if changed:
                what = ", ".join(f"{k} {before[k]!r} -> {fingerprint[k]!r}" for k in changed)
                raise TrainError(
                    f"--resume: the stopped run in {self.path} had another {what}; resume with the same "
                    "settings, or pass --force instead of --resume to start over"
                )
            return True
        if progress is not None and not force:
            raise TrainError(
                f"{self.output}: an earlier run stopped before finishing and left {progress}; pass --resume "
                f"to continue from it, or --force to start over (which deletes {self.path})"
            )
        self.clear()
        self.path.mkdir(parents=True)
        (self.path / STATE_FILE).write_bytes(orjson.dumps(fingerprint, option=orjson.OPT_INDENT_2))
        return False

    def keep_or_clear(self) -> str | None:
        """After a failure: keep the directory when it holds progress (and say so), else remove it."""
        progress = self.progress()
        if progress is None:
            self.clear()
        return progress

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class TrainingRun:
    """A training command's output directory (built hidden, committed when complete) and its state directory.

    On an exception the partial output is removed; the state directory is kept when it holds progress, and the
    message says where it is and how to go on.
    """

    def __init__(self, cfg, *, fingerprint: dict, echo: Callable[[str], None] = print):
        self.echo = echo
        self.state = StateDir(cfg.output_dir)
        self.resumed = self.state.open(resume=cfg.resume, force=cfg.force, fingerprint=fingerprint)
        try:
            # Resuming finishes the run that was started, which may have been told to replace the output.
            self.run = RunDir(cfg.output_dir, overwrite=cfg.force or self.resumed, inputs=[cfg.data.path])
        except BaseException:
            self.state.keep_or_clear()
            raise

    @property
    def path(self) -> Path:
        return self.run.path

    def __truediv__(self, name: str) -> Path:
        return self.run.path / name

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.run.abort()
            progress = self.state.keep_or_clear()
            if progress is not None:
                self.echo(
                    f"training stopped ({exc_type.__name__}); {progress} kept: rerun the same command with "
                    "--resume to continue, or with --force to start over"
                )
        return False

    def commit(self) -> Path:
        """Move the checkpoints into the output, put the output in place, remove the state directory."""
        ckpts = self.state.checkpoints
        if ckpts.is_dir() and any(ckpts.iterdir()):
            os.replace(ckpts, self.run.path / "checkpoints")
        out = self.run.commit()
        self.state.clear()
        return out


def _complete(state_file: Path) -> bool:
    try:
        return isinstance(orjson.loads(state_file.read_bytes()), dict)
    except (OSError, ValueError):
        return False
