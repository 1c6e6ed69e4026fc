"""The math verifier: final-answer extraction, normalization and comparison, case by case."""

from __future__ import annotations

import pytest

from synth.verifiers.math import (
    NoGoldAnswer,
    answers_match,
    canonical,
    extract_answer,
    gold_answer,
    parse_number,
    verify,
)

# (response, where the answer is found, the answer as recorded)
EXTRACTION = [
    # GSM8K's "####"
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "####", "72"),
    ("#### 1,234", "####", "1234"),
    ("Step 1: 5 * 3 = 15\n#### 15\nThat is all.", "####", "15"),
    ("First #### 3\nthen revised\n#### 4", "####", "4"),
    ("#### $18.00", "####", "18"),
    ("#### -7", "####", "-7"),
    ("#### 4 The answer is: 4", "####", "4"),
    ("#### 12 apples in all", "####", "12"),
    # MATH's \boxed{}
    ("The result is $\\boxed{42}$.", "\\boxed{}", "42"),
    ("So $x = \\boxed{\\frac{3}{4}}$", "\\boxed{}", "0.75"),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\boxed{}", "(\\sqrt{2})/2"),
    ("Both \\boxed{1} and finally \\boxed{2}", "\\boxed{}", "2"),
    ("\\boxed{\\text{(B)}}", "\\boxed{}", "(B)"),
    ("\\boxed{x^{2}+1}", "\\boxed{}", "x^{2}+1"),
    ("\\fbox{9}", "\\boxed{}", "9"),
    ("\\boxed 5", "\\boxed{}", "5"),
    ("\\boxed{-\\dfrac{1}{2}}", "\\boxed{}", "-0.5"),
    ("\\boxed{100\\%}", "\\boxed{}", "100"),
    ("\\boxed{12\\text{ cm}}", "\\boxed{}", "12"),
    ("\\boxed{90^\\circ}", "\\boxed{}", "90"),
    # "the answer is"
    ("Adding them up, the answer is 18.", "the answer is", "18"),
    ("The final answer is $3.5$.", "the answer is", "3.5"),
    ("Final Answer: 2,500 dollars", "the answer is", "2500"),
    ("So the answer is: Janet makes $18 every day.", "the answer is", "18"),
    ("The answer is -12 degrees.", "the answer is", "-12"),
    ("The answer is \\frac{5}{8}.\nCheck: 5/8 < 1.", "the answer is", "0.625"),
    ("Answer: 7/3", "the answer is", "7/3"),
    ("The answer is x + 1.", "the answer is", "x + 1"),
    # the last number
    ("She has 3 apples, then buys 4 more, so 7 apples.", "last number", "7"),
    ("It costs $1,250.75 in total", "last number", "1250.75"),
    ("10 - 3 = 7", "last number", "7"),
    ("The temperature drops to -4 at night", "last number", "-4"),
    ("so it is 3/4 of the tank", "last number", "0.75"),
    ("We get 2 * 6 = 12.", "last number", "12"),
    ("Water is H2O and the count is 9", "last number", "9"),
    ("That leaves \\frac{1}{3} of the pie", "last number", "1/3"),
    ("The growth is 12.5% per year", "last number", "12.5"),
]


@pytest.mark.parametrize(("text", "method", "recorded"), EXTRACTION)
def test_extraction(text, method, recorded):
    raw, how = extract_answer(text)
    assert how == method
    assert canonical(raw) == recorded


def test_no_answer_at_all():
    assert extract_answer("I am not sure how to solve this.") == (None, None)
    assert extract_answer("") == (None, None)
    v = verify("I am not sure.", "5")
    assert not v.correct and v.extracted is None and "no final answer found" in v.why


# (response, gold answer as the row gives it, correct?)
COMPARISON = [
    ("#### 72", "#### 72", True),
    ("#### 1,200", "1200", True),
    ("#### 1200", "#### 1,200", True),
    ("The answer is $45.", "45", True),
    ("The answer is 45 dollars.", "$45", True),
    ("\\boxed{45.0}", "45", True),
    ("\\boxed{45.00}", "#### 45", True),
    ("\\boxed{25\\%}", "25", True),
    ("The answer is 25 percent", "25%", True),
    ("#### 12 km/h", "12", True),
    ("#### 3 m^2", "3", True),
    ("\\boxed{\\frac{3}{4}}", "0.75", True),
    ("\\boxed{3/4}", "\\frac{3}{4}", True),
    ("\\boxed{\\dfrac34}", "3/4", True),
    ("\\boxed{0.3333}", "\\frac{1}{3}", True),  # rounding, within tolerance
    ("\\boxed{0.33}", "\\frac{1}{3}", False),  # off by more than the tolerance
    ("#### -5", "-5", True),
    ("#### -5", "5", False),
    ("\\boxed{-\\frac{1}{2}}", "-0.5", True),
    ("\\boxed{\\frac{-1}{2}}", "-1/2", True),
    ("#### 1000001", "1000000", False),  # integers are compared exactly, never within tolerance
    ("#### 17", "18", False),
    ("So 12 apples.", "#### 13", False),
    ("\\boxed{(B)}", "\\text{(B)}", True),
    ("\\boxed{\\text{Paris}}", "paris", True),
    ("\\boxed{3x}", "3", False),  # an expression, not 3 with a unit
    ("\\boxed{2\\pi}", "2", False),
    ("The answer is 18.", 18, True),  # a numeric gold in the JSON
    ("The answer is 2.5.", 2.5, True),
    ("\\boxed{33.33}", "33.3", True),  # the gold is rounded to one decimal
    ("#### 17.14%", "#### 17.1", True),
    ("#### 17.2", "17.1", False),
    ("#### 72.4", "72", False),  # an integer gold is not a rounded value
    ("#### 0", "0", True),
    ("#### .5", "0.5", True),
]


@pytest.mark.parametrize(("response", "gold", "correct"), COMPARISON)
def test_comparison(response, gold, correct):
    v = verify(response, gold, symbolic=False)
    assert v.correct is correct, v.why


def test_tolerance_is_relative_to_the_gold_and_configurable():
    assert answers_match("1234.6", "1234.5", tolerance=1e-4)[0]  # 0.1 <= 1e-4 * 1234.5
    assert not answers_match("1234.6", "1234.5", tolerance=1e-5)[0]
    assert not answers_match("0.34", "0.333", tolerance=1e-4)[0]
    assert answers_match("0.34", "0.333", tolerance=1e-2)[0]
    ok, why = answers_match("0.3333", "1/3")
    assert ok and "within tolerance" in why


SYMBOLIC = [
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", True),
    ("\\boxed{(x+1)^2}", "x^2+2x+1", True),
    ("\\boxed{2\\pi}", "\\pi + \\pi", True),
    ("\\boxed{\\sqrt{2}}", "1.41421", True),
    ("\\boxed{x^2+1}", "x^2-1", False),
]


@pytest.mark.parametrize(("response", "gold", "correct"), SYMBOLIC)
def test_symbolic_equivalence_with_sympy(response, gold, correct):
    pytest.importorskip("sympy")
    v = verify(response, gold, symbolic=True)
    assert v.correct is correct, v.why
    if correct:
        assert "sympy" in v.why or "equals" in v.why


def test_symbolic_comparison_is_off_when_asked():
    v = verify("\\boxed{(x+1)^2}", "x^2+2x+1", symbolic=False)
    assert not v.correct and "sympy" not in v.why


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('touch pwned')",
        "9^(9^9)",
        "x.__class__",
        "exec(chr(112))",
        "\\boxed{" * 50 + "1",
    ],
)
def test_hostile_answers_are_never_evaluated(hostile, tmp_path, monkeypatch):
    pytest.importorskip("sympy")
    monkeypatch.chdir(tmp_path)
    v = verify(f"The answer is {hostile}", "x + 2", symbolic=True)
    assert not v.correct
    assert list(tmp_path.iterdir()) == []


def test_gold_answer_forms():
    assert gold_answer("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18") == "18"
    assert gold_answer("The area is $\\boxed{\\frac{1}{2}}$") == "\\frac{1}{2}"
    assert gold_answer(" 42 ") == "42"
    assert gold_answer(7) == "7"
    for bad in (None, "", "   ", "####  ", True, ["4"]):
        with pytest.raises(NoGoldAnswer):
            gold_answer(bad)


def test_parse_number_units_currency_percent():
    assert parse_number("€1,000") == 1000
    assert parse_number("-$3.25") == parse_number("$-3.25") == -3.25
    assert parse_number("18 eggs") == 18
    assert parse_number("60 miles per hour") == 60
    assert parse_number("5 dollars and 50 cents") is None
    assert parse_number("1/0") is None
    assert parse_number("2 pi") is None
    assert parse_number("1,5") is None  # not a thousands separator


def test_the_verdict_says_why():
    v = verify("... #### 41", "#### 42")
    assert (v.correct, v.extracted, v.method, v.gold) == (False, "41", "####", "42")
    assert v.why == "####: 41 is not the gold answer 42"
    v = verify("The answer is \\frac{6}{8}", "3/4")
    assert v.correct and v.why == "the answer is: 0.75 equals the gold answer 0.75"


def test_at_least_fifty_extraction_cases():
    assert len(EXTRACTION) + len(COMPARISON) >= 50
