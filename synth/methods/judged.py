"""The judge a method's candidate rows must pass (`repurpose`, `roleplay`): scored at least
`--min-judge-score` they are kept, otherwise they go to the ledger with the judge's reason."""

from __future__ import annotations

from synth.verifiers import Task, VerifierContext, build


class JudgeGate:
    """`build("judge")` from the method's settings when `--judge` is on and a run context exists (a dry run
    has none); `low_reason` names a score below the bar in the ledger."""

    def __init__(self, cfg, ctx, *, low_reason: str = "judge_rejected"):
        self.min_score, self.low_reason = cfg.min_judge_score, low_reason
        self.judge = (
            build("judge", cfg, VerifierContext(cfg, llm_for=ctx.llm_for)) if cfg.judge and ctx else None
        )

    def sort(self, out, rows: list[dict], tasks: list[Task]) -> None:
        """Each row to `out.kept` or, with the judge's verdict and detail, to `out`'s ledger."""
        if self.judge is None or not rows:
            out.kept.extend(rows)
            return
        for row, [v] in zip(rows, self.judge.verify(tasks), strict=True):
            row["judge"] = v.as_dict()
            if v.score is None:
                out.reject(row, "judge_unscored", v.detail)
            elif v.score < self.min_score:
                out.reject(row, self.low_reason, f"{v.detail}; below --min-judge-score {self.min_score:g}")
            else:
                out.kept.append(row)

    def info(self) -> dict:
        return {"judge": self.judge.info()} if self.judge else {}

    def close(self) -> None:
        if self.judge is not None:
            self.judge.close()
