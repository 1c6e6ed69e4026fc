"""Every bad input named in the issue: one clear line with file and line number, non-zero exit, no traceback;
with --on-error skip, the line in invalid.jsonl and the counts adding up."""

from __future__ import annotations

import orjson
import pytest

from curate.cli import main
from tests.conftest import conv, read_jsonl

GOOD = orjson.dumps(conv("What is the boiling point of water?", "100 degrees Celsius at sea level.")).decode()

CASES = {
    "non_utf8": (
        GOOD + "\n" + '{"messages": [{"role": "user", "content": "caf\xe9"}]}',
        2,
        "not valid UTF-8",
    ),
    "truncated_last_line": (GOOD + "\n" + GOOD[:40], 2, "truncated JSON line"),
    "json_array": ("[\n" + GOOD + ",\n" + GOOD + "\n]", 1, "looks like a JSON array"),
    "json_array_one_line": ("[" + GOOD + "]", 1, "expected a JSON object, got array"),
    "no_messages": (GOOD + "\n" + '{"body": "hello"}', 2, "no conversation found"),
    "wrong_type": (GOOD + "\n" + '{"messages": "hello"}', 2, "field 'messages'"),
    "null_content": (
        GOOD + "\n" + '{"messages": [{"role": "user", "content": null}]}',
        2,
        "field 'messages[0].content'",
    ),
    "unknown_role": (
        GOOD + "\n" + '{"messages": [{"role": "wizard", "content": "hi"}]}',
        2,
        "unknown role 'wizard'",
    ),
    "huge_row": (GOOD + "\n" + orjson.dumps(conv("q", "x" * (10 * 2**20))).decode(), 2, "over the limit"),
}


def _write(tmp_path, name, text):
    p = tmp_path / f"{name}.jsonl"
    p.write_bytes(text.encode("latin-1") if name == "non_utf8" else text.encode())
    return p


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_fails_with_one_clear_line(tmp_path, cli, name):
    text, line, message = CASES[name]
    path = _write(tmp_path, name, text)
    res = cli(main, "filter", path, "-o", tmp_path / "out", "-q")
    assert res.exit_code != 0
    assert f"{path}:{line}:" in res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists(), "a failed run leaves no output directory"
    assert path.read_bytes() == (text.encode("latin-1") if name == "non_utf8" else text.encode()), (
        "input untouched"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_skipped_goes_to_invalid_and_counts_add_up(tmp_path, cli, name):
    text, line, message = CASES[name]
    path = _write(tmp_path, name, text)
    out = tmp_path / "out"
    res = cli(main, "filter", path, "-o", out, "--on-error", "skip", "--filters", "quality", "-q")
    assert res.exit_code == 0, res.output
    invalid = read_jsonl(out / "invalid.jsonl")
    assert [i["line"] for i in invalid][0] == line
    assert message in invalid[0]["error"] or message in f"field '{invalid[0]['field']}'"
    m = orjson.loads((out / "manifest.json").read_bytes())
    c = m["counts"]
    assert c["input"] == c["kept"] + c["rejected"] + c["invalid"] and c["balanced"]
    assert c["invalid"] >= 1


def test_empty_file_is_an_error_even_when_skipping(tmp_path, cli):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    for extra in ([], ["--on-error", "skip"]):
        res = cli(main, "filter", p, "-o", tmp_path / "out", "-q", *extra)
        assert res.exit_code != 0
        assert f"{p}: empty input" in res.output


def test_missing_file_and_unknown_filter_and_bad_option(tmp_path, cli):
    res = cli(main, "filter", tmp_path / "nope.jsonl", "-o", tmp_path / "o")
    assert res.exit_code != 0 and "no such file" in res.output
    good = tmp_path / "g.jsonl"
    good.write_text(GOOD + "\n")
    res = cli(main, "filter", good, "--filters", "quality,sparkle", "-o", tmp_path / "o")
    assert res.exit_code != 0 and "unknown step 'sparkle'" in res.output
    res = cli(main, "filter", good, "--set", "near-dedup.treshold=0.5", "-o", tmp_path / "o")
    assert res.exit_code != 0 and "has no option 'treshold'" in res.output and "threshold" in res.output
    res = cli(main, "filter", good, "--set", "near-dedup.threshold=2", "-o", tmp_path / "o")
    assert res.exit_code != 0 and "threshold must be in" in res.output
    assert "Traceback" not in res.output


def test_recipe_errors_name_the_file(tmp_path, cli):
    good = tmp_path / "g.jsonl"
    good.write_text(GOOD + "\n")
    bad = tmp_path / "recipe.yaml"
    bad.write_text("filters: [quality\n")
    res = cli(main, "filter", good, "--config", bad, "-o", tmp_path / "o")
    assert res.exit_code != 0 and f"{bad}: not valid YAML" in res.output
    bad.write_text("filters: [5]\n")
    res = cli(main, "filter", good, "--config", bad, "-o", tmp_path / "o")
    assert res.exit_code != 0 and "a recipe step must be a name" in res.output
    bad.write_text("steps: [quality]\n")
    res = cli(main, "filter", good, "--config", bad, "-o", tmp_path / "o")
    assert res.exit_code != 0 and "top-level 'filters:'" in res.output


def test_output_over_input_is_refused(tmp_path, cli):
    run = tmp_path / "run"
    run.mkdir()
    (run / "kept.jsonl").write_text(GOOD + "\n")
    res = cli(main, "filter", run / "kept.jsonl", "-o", run, "--force")
    assert res.exit_code != 0 and "inside the output directory" in res.output
    assert (run / "kept.jsonl").read_text() == GOOD + "\n"
