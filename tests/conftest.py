"""Shared test set-up: offline, single-threaded, and helpers to drive the real CLI."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from pathlib import Path  # noqa: E402

import orjson  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


def conv(user: str, assistant: str, **extra) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        **extra,
    }


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]


def load_module(path: Path, name: str):
    """A script of the project (`scripts/`, `benchmarks/`) imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def eval_figures(step: str, data: str, options: dict | None = None) -> tuple[list[dict], dict]:
    """(rows, figures) of `python benchmarks/eval_filters.py STEP --data DATA`, the step built with options."""
    ev = load_module(ROOT / "benchmarks" / "eval_filters.py", "eval_filters")
    rows = ev.load(data)
    return rows, ev.score(step, rows, ev.decide(step, rows, options or {}))


def assert_training_reproduces(script: str, model: str, tmp_path: Path) -> None:
    """Running `scripts/SCRIPT` on its shipped training rows makes the shipped `rules/MODEL` weights."""
    pytest.importorskip("sklearn")
    train = load_module(ROOT / "scripts" / script, "train")
    out = tmp_path / "model.json"
    train.main(["--out", str(out)])
    made, shipped = json.loads(out.read_text()), json.loads((ROOT / "rules" / model).read_text())
    assert made["bias"] == pytest.approx(shipped["bias"], abs=1e-3)
    assert made["weights"].keys() == shipped["weights"].keys()
    assert max(abs(made["weights"][k] - shipped["weights"][k]) for k in made["weights"]) < 1e-3


@pytest.fixture
def cli():
    """Run a console command in-process with click's CliRunner; returns the Result."""
    from click.testing import CliRunner

    def run(group, *args, input=None):
        return CliRunner().invoke(group, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance for the whole session (starting Ray costs tens of seconds on 2 cores).

    It declares one GPU (Ray needs no CUDA to count it) so GPU steps can be placed; the runtime
    environment keeps Polars single-threaded in the workers. Yields the GCS address for tests that join.
    """
    import logging

    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        logging_level=logging.ERROR,
        object_store_memory=200 * 2**20,
        runtime_env={"env_vars": {"POLARS_MAX_THREADS": "1"}},
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


# The longest test files start first: `make test` gives each of two workers one file at a time, and a long
# file that starts last would run alone at the end. Order only; every test still runs.
LONGEST_FIRST = (
    "test_ray_engine.py",
    "test_recipes.py",
    "test_train_online.py",
    "test_ray_llm.py",
    "test_train_launch.py",
    "test_report.py",
    "test_annotate_browser.py",
    "test_synth_generate.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
