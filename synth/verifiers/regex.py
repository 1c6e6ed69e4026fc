"""`regex`: a completion is correct when it matches a pattern: the row's (`pattern_field`) or the one given.

A format reward (an answer line, a JSON object, no apologies) and the smallest example of a verifier: this
file and one line in `synth.verifiers.REGISTRY` are all it takes.

>>> from synth.verifiers import Task, build
>>> [v.verdict for v in build("regex", regex=r"(?m)^Answer: \\d+$").verify([Task({}, [], ["Answer: 4", "4"])])[0]]
['correct', 'incorrect']
"""

from __future__ import annotations

import re

from synth.config import setting, settings
from synth.verifiers import Task, Verdict, Verifier, correct, incorrect


@settings
class RegexSettings:
    regex: str | None = setting(
        None, "regex: the pattern a completion must match (re.search) [default: the row's]."
    )
    pattern_field: str = setting("pattern", "regex: column with the row's own pattern.")


class RegexVerifier(Verifier):
    name = "regex"
    missing_reason = "no_pattern"
    Settings = RegexSettings

    def _pattern(self, row: dict) -> str | None:
        return self.settings.regex or row.get(self.settings.pattern_field)

    def problem(self, row: dict) -> str | None:
        pattern = self._pattern(row)
        if not isinstance(pattern, str) or not pattern:
            return f"no pattern (--regex, or a string in field '{self.settings.pattern_field}')"
        try:
            re.compile(pattern)
        except re.error as e:
            return f"pattern {pattern!r} does not compile: {e}"
        return None

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        out = []
        for task in tasks:
            why = self.problem(task.row)
            if why is not None:
                out.append([Verdict(None, "unscored", why) for _ in task.completions])
                continue
            pattern = self._pattern(task.row)
            rx = re.compile(pattern)
            out.append(
                [
                    correct(f"matches {pattern}")
                    if rx.search(text or "")
                    else incorrect(f"does not match {pattern}")
                    for text in task.completions
                ]
            )
        return out

    def info(self) -> dict:
        return {"name": self.name, "regex": self.settings.regex, "pattern_field": self.settings.pattern_field}
