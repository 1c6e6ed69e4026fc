"""Final answers of math responses: find them, normalize them, and compare them with a gold answer.

The final answer is taken from the last ``#### ...`` line (GSM8K), else the last ``\\boxed{...}`` (MATH), else
the last "the answer is ...", else the last number in the text. Answers are normalized (LaTeX wrappers,
thousands separators, currency and percent signs, units, trailing ``.0``, ``\\frac{a}{b}`` and ``a/b``,
negative numbers) and compared as exact rationals. Integers must be equal; otherwise an answer may differ from the gold by
``tolerance`` x max(1, |gold|), and a gold written with decimals (``33.3``) is taken as rounded, so a more
precise answer that rounds to it (``33.33``) is right. Answers that are not numbers compare as normalized text and,
when sympy is installed and ``symbolic`` is on, by symbolic equivalence.

>>> v = verify("She pays 3 x $400 = $1,200.00 in total.\\n#### 1200", "#### 1,200")
>>> v.correct, v.extracted, v.method
(True, '1200', '####')
>>> verify("So the probability is \\\\boxed{\\\\frac{3}{4}}.", "0.75").why
'\\\\boxed{}: 0.75 equals the gold answer 0.75'
>>> verify("I think it is 12 apples.", "13").correct
False
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

DEFAULT_TOLERANCE = 1e-4

# A decimal number as people write it: 1,234,567.89 or 1234.5 or .5 (no sign; signs are handled around it).
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
# A number inside running text: not glued to a preceding word or decimal point ("H2O", "v1.2"); a minus sign
# counts only where it cannot be subtraction ("x = -3", not "5-3"); "3/4" is one number.
_NUMBER_IN_TEXT = re.compile(rf"(?:(?<![\w.)\]}}])-|(?<![\w.]))(?:{_NUM})(?:\s*/\s*(?:{_NUM}))?")
_UNIT_WORD = r"(?:[A-Za-z]+|°[CF]?)(?:\^\{?[23]\}?|\^?[²³])?"
_UNIT = re.compile(rf"{_UNIT_WORD}(?:\s*(?:/|\s|\bper\b)\s*{_UNIT_WORD})*")
# Single letters that are units (metres, grams, seconds, hours, litres, kelvin, newtons, volts, watts, joules);
# any other single letter after a number ("3x") makes the answer an expression, not a number with a unit.
_SINGLE_LETTER_UNITS = set("mgshlLKNVWJ")
# Words that look like units but change the value: "2 pi" is not 2.
_NOT_UNITS = {"pi", "sqrt", "log", "ln", "sin", "cos", "tan", "exp", "e", "i"}
_CURRENCY = r"(?:[$€£¥₹]|usd|eur|gbp|rs\.?)"
_NUMBER_ANSWER = re.compile(
    rf"(?P<sign>[-+])?\s*{_CURRENCY}?\s*(?P<sign2>[-+])?\s*(?P<num>{_NUM})(?:\s*/\s*(?P<den>{_NUM}))?"
    rf"\s*(?P<pct>%|percent\b|per\s*cent\b)?\s*(?P<rest>.*)",
    re.I | re.S,
)
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=|would\s+be|will\s+be)\s*:?\s*", re.I
)
_HASHES = re.compile(r"####\s*(.*)")
_LATEX_WRAPPERS = ("\\text", "\\textbf", "\\textit", "\\mathrm", "\\mathbf", "\\mbox", "\\operatorname")


class NoGoldAnswer(ValueError):
    """The row's gold answer is missing or empty."""


@dataclass(frozen=True, slots=True)
class MathVerdict:
    correct: bool
    extracted: str | None  # the normalized final answer of the response (None: none found)
    method: str | None  # where it came from: "####", "\\boxed{}", "the answer is", "last number"
    gold: str  # the normalized gold answer
    why: str


# --- finding the answer -------------------------------------------------------------------------------------


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at `start` (nested braces allowed) and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None  # unbalanced: cut off


def all_boxed(text: str) -> list[str]:
    """The contents of every complete ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``), in order."""
    found = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*", text):
        group = _braced(text, m.end())
        if group is not None:
            found.append(group[0])
        else:
            bare = re.match(r"[^\s$]+", text[m.end() :])
            if bare and not text[m.end() :].startswith("{"):
                found.append(bare.group(0))
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``)."""
    found = all_boxed(text)
    return found[-1] if found else None


def marked_answers(text: str) -> list[str]:
    """Every answer the response marks as final (``####`` lines and ``\\boxed{}``), canonical and distinct."""
    marked = [h.strip() for h in _HASHES.findall(text) if h.strip()] + [
        b.strip() for b in all_boxed(text) if b.strip()
    ]
    return list(dict.fromkeys(canonical(_answer_in_phrase(a)) for a in marked))


def _answer_in_phrase(phrase: str) -> str:
    """A number or an expression as it stands ("$18", "x + 1"); the first number of a sentence of prose
    ("Janet makes $18 a day")."""
    number = _NUMBER_IN_TEXT.search(_latex_fractions(phrase))
    prose = re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", phrase))
    if number is None or not prose or parse_number(normalize_answer(phrase)) is not None:
        return phrase
    return number.group(0)


def _after_answer_is(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    boxed = last_boxed(rest)
    if boxed is not None:
        return boxed
    # Up to the end of the sentence: a newline, or a full stop that is not a decimal point.
    phrase = re.split(r"\n|\.(?=\s|$)", rest, maxsplit=1)[0].strip()
    return _answer_in_phrase(phrase) if phrase else None


def extract_answer(text: str) -> tuple[str | None, str | None]:
    """The final answer of a response as written (not yet normalized), and where it was found."""
    if not text:
        return None, None
    hashes = _HASHES.findall(text)
    if hashes and hashes[-1].strip():
        return _answer_in_phrase(hashes[-1].strip()), "####"
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip(), "\\boxed{}"
    phrase = _after_answer_is(text)
    if phrase:
        return phrase, "the answer is"
    numbers = _NUMBER_IN_TEXT.findall(_latex_fractions(text))
    if numbers:
        return numbers[-1], "last number"
    return None, None


def gold_answer(value) -> str:
    """The gold answer of a row: GSM8K's ``... #### 42``, MATH's ``\\boxed{...}``, or a bare value."""
    if isinstance(value, bool) or value is None:
        raise NoGoldAnswer("no gold answer" if value is None else f"gold answer is a boolean ({value})")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise NoGoldAnswer(f"gold answer is {value}")
        return repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise NoGoldAnswer(f"gold answer is a {type(value).__name__}, expected a string or number")
    text = value
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    else:
        boxed = last_boxed(text)
        if boxed is not None:
            text = boxed
    text = text.strip()
    if not text:
        raise NoGoldAnswer("empty gold answer")
    return text


# --- normalizing -------------------------------------------------------------------------------------------


def _unwrap(text: str, command: str) -> str:
    """`\\text{abc}` -> `abc` for one wrapper command, nested braces included."""
    out, i = [], 0
    while (j := text.find(command, i)) >= 0:
        k = j + len(command)
        if k < len(text) and text[k].isalpha():  # \textbf when looking for \text
            out.append(text[i:k])
            i = k
            continue
        group = _braced(text, k)
        if group is None:
            break
        out.append(text[i:j] + group[0])
        i = group[1]
    out.append(text[i:])
    return "".join(out)


def _simple(arg: str) -> bool:
    return re.fullmatch(r"-?\s*(?:\d+(?:\.\d+)?|[A-Za-z])", arg.strip()) is not None


def _latex_fractions(text: str) -> str:
    """`\\frac{a}{b}`, `\\dfrac{a}{b}`, `\\frac34` -> `a/b`, bracketed where a or b is not a plain number."""
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    out, i = [], 0
    while (j := text.find("\\frac", i)) >= 0:
        k = j + len("\\frac")
        while k < len(text) and text[k] == " ":
            k += 1
        args = []
        for _ in range(2):
            group = _braced(text, k)
            if group is not None:
                args.append(group[0])
                k = group[1]
            elif k < len(text) and text[k].isalnum():  # \frac34
                args.append(text[k])
                k += 1
            else:
                break
        if len(args) < 2:
            out.append(text[i:k])
            i = k
            continue
        num, den = (_latex_fractions(a) for a in args)
        num, den = (a.strip() if _simple(a) else f"({a.strip()})" for a in (num, den))
        out.append(text[i:j] + f"{num}/{den}")
        i = k
    out.append(text[i:])
    return "".join(out)


def normalize_answer(text: str) -> str:
    """A canonical written form of an answer: LaTeX wrappers and spacing gone, fractions as a/b.

    >>> normalize_answer("$\\\\text{\\\\$}1{,}200.50$.")
    '$1,200.50'
    """
    s = str(text).strip().rstrip(".,;:! ").strip()
    for a, b in (("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b) and len(s) > len(a) + len(b):
            s = s[len(a) : -len(b)].strip()
    if len(re.findall(r"(?<!\\)\$", s)) == 2 and s.startswith("$") and s.endswith("$") and s[-2:] != "\\$":
        s = s[1:-1].strip()
    boxed = last_boxed(s)
    if boxed is not None:
        s = boxed
    for command in _LATEX_WRAPPERS:
        s = _unwrap(s, command)
    s = _latex_fractions(s)
    for old, new in (
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", " "),
        ("\\:", " "),
        ("\\ ", " "),
        ("~", " "),
        ("{,}", ","),
        ("\\%", "%"),
        ("\\$", "$"),
        ("−", "-"),
        ("–", "-"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\cdot", "*"),
        ("\\times", "*"),
        ("\\dots", ""),
    ):
        s = s.replace(old, new)
    s = s.replace("°", " °") if re.search(r"\d°", s) else s
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip(".,;:! ").strip()
    s = s.strip("$").strip() if s.startswith("$") and s.endswith("$") and s.count("$") == 2 else s
    return s


def parse_number(text: str) -> Fraction | None:
    """The exact value of an answer that is a number (with optional currency, percent sign and unit).

    >>> parse_number("-$1,234.50"), parse_number("75%"), parse_number("3/4 cup"), parse_number("3x")
    (Fraction(-2469, 2), Fraction(75, 1), Fraction(3, 4), None)
    """
    m = _NUMBER_ANSWER.fullmatch(text.strip())
    if m is None:
        return None
    rest = m["rest"].strip().rstrip(".").strip()
    if rest:
        first = re.split(r"[\s/^]", rest, maxsplit=1)[0].lower()
        if not _UNIT.fullmatch(rest) or first in _NOT_UNITS:
            return None
        if len(rest) == 1 and rest not in _SINGLE_LETTER_UNITS:
            return None
    if m["sign"] and m["sign2"]:
        return None
    try:
        value = Fraction(m["num"].replace(",", ""))
        if m["den"] is not None:
            den = Fraction(m["den"].replace(",", ""))
            if den == 0:
                return None
            value /= den
    except (ValueError, ZeroDivisionError):
        return None
    return -value if "-" in ((m["sign"] or "") + (m["sign2"] or "")) else value


def _decimals(text: str) -> int | None:
    """Digits after the decimal point of a number answer (None for a fraction or a non-number)."""
    m = _NUMBER_ANSWER.fullmatch(text.strip())
    if m is None or m["den"] is not None:
        return None
    return len(m["num"].split(".", 1)[1]) if "." in m["num"] else 0


def _show(value: Fraction) -> str:
    """A number as a plain string: integers without `.0`, other values as a short decimal or a/b."""
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"


def canonical(text: str) -> str:
    """What an answer is recorded as: the number when it is one, else the normalized text."""
    norm = normalize_answer(text)
    value = parse_number(norm)
    return _show(value) if value is not None else norm


# --- comparing ---------------------------------------------------------------------------------------------


@cache
def sympy_version() -> str | None:
    """sympy's version when it is installed (symbolic comparison is optional), else None."""
    try:
        import sympy
    except ImportError:
        return None
    return sympy.__version__


_SYMPY_SAFE = re.compile(r"[0-9A-Za-z+\-*/^().\s]*")
# An exponent is a small literal or a single letter, so `9^(9^9)` never reaches sympy and hangs the run.
_EXPONENT = re.compile(
    r"(?:\^|\*\*)\s*(?:-?\d{1,2}|\(\s*-?\d{1,2}\s*(?:/\s*\d{1,2}\s*)?\)|[A-Za-z])(?![\w(^*])"
)


def _to_sympy_text(text: str) -> str | None:
    s = text
    s = re.sub(r"\\sqrt\s*\{", "sqrt{", s)
    s = re.sub(r"\\sqrt\s*(\d+|[A-Za-z])", r"sqrt(\1)", s)
    for old, new in (
        ("\\pi", "pi"),
        ("\\infty", "oo"),
        ("\\ln", "log"),
        ("\\log", "log"),
        ("{", "("),
        ("}", ")"),
    ):
        s = s.replace(old, new)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    if "\\" in s or "_" in s or len(s) > 120 or not _SYMPY_SAFE.fullmatch(s):
        return None
    if re.search(r"\.[A-Za-z_]", s):  # attribute access
        return None
    carets = len(re.findall(r"\^|\*\*", s))
    if carets and len(_EXPONENT.findall(s)) != carets:
        return None
    return s


def _sympy_value(text: str):
    """A sympy expression for a short, harmless-looking answer; None when it cannot be read safely."""
    src = _to_sympy_text(text)
    if src is None:
        return None
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_application,
        implicit_multiplication,
        parse_expr,
        standard_transformations,
    )

    # No builtins and only these names: the text comes from a model and `parse_expr` evaluates it.
    names = {
        "__builtins__": {},
        **{
            n: getattr(sympy, n)
            for n in ("Symbol", "Function", "Integer", "Float", "Rational", "pi", "E", "oo")
        },
        **{n: getattr(sympy, n) for n in ("sqrt", "sin", "cos", "tan", "log", "exp", "Abs")},
    }
    try:
        return parse_expr(
            src,
            global_dict=names,
            local_dict={},
            transformations=(
                *standard_transformations,
                implicit_multiplication,
                implicit_application,
                convert_xor,
            ),
        )
    except Exception:  # any parse failure means "not comparable symbolically"
        return None


def _sympy_equal(a_text: str, b_text: str, tolerance: float) -> bool | None:
    a, b = _sympy_value(a_text), _sympy_value(b_text)
    if a is None or b is None:
        return None
    import sympy

    try:
        diff = sympy.simplify(a - b)
        if diff == 0:
            return True
        if diff.is_number:
            gold = complex(b.evalf())
            return abs(complex(diff.evalf())) <= tolerance * max(1.0, abs(gold))
    except Exception:  # sympy gives up on some expressions: not equal as far as we can tell
        return None
    return False


def answers_match(
    pred: str, gold: str, *, tolerance: float = DEFAULT_TOLERANCE, symbolic: bool = True
) -> tuple[bool, str]:
    """Whether a response's answer equals the gold answer, and in which sense (both already extracted)."""
    p_norm, g_norm = normalize_answer(pred), normalize_answer(gold)
    p_val, g_val = parse_number(p_norm), parse_number(g_norm)
    p_show = _show(p_val) if p_val is not None else p_norm
    g_show = _show(g_val) if g_val is not None else g_norm
    if p_val is not None and g_val is not None:
        if p_val == g_val:
            return True, f"{p_show} equals the gold answer {g_show}"
        if p_val.denominator == 1 and g_val.denominator == 1:
            return False, f"{p_show} is not the gold answer {g_show}"
        # A gold written with decimals is rounded: a more precise answer that rounds to it is right.
        g_dec, p_dec = _decimals(g_norm), _decimals(p_norm)
        if g_dec and (p_dec is None or p_dec > g_dec) and abs(p_val - g_val) <= Fraction(1, 2 * 10**g_dec):
            return True, f"{p_show} rounds to the gold answer {g_show}"
        if abs(p_val - g_val) <= Fraction(tolerance) * max(1, abs(g_val)):
            return True, f"{p_show} equals the gold answer {g_show} within tolerance {tolerance:g}"
        return False, f"{p_show} is not the gold answer {g_show} (off by more than tolerance {tolerance:g})"
    if _squash(p_norm) == _squash(g_norm):
        return True, f"{p_show} is the gold answer {g_show} as written"
    if symbolic and sympy_version() is not None:
        same = _sympy_equal(p_norm, g_norm, tolerance)
        if same:
            return True, f"{p_show} is symbolically equal to the gold answer {g_show} (sympy)"
        if same is False:
            return False, f"{p_show} is not the gold answer {g_show} (sympy)"
    return False, f"{p_show} is not the gold answer {g_show}"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def verify(
    response: str, gold, *, tolerance: float = DEFAULT_TOLERANCE, symbolic: bool = True
) -> MathVerdict:
    """Extract the response's final answer and compare it with `gold` (a row's `answer` value)."""
    gold_text = gold_answer(gold)
    gold_show = canonical(gold_text)
    raw, method = extract_answer(response)
    if raw is None:
        return MathVerdict(
            False,
            None,
            None,
            gold_show,
            "no final answer found (no ####, \\boxed{}, 'the answer is' or number)",
        )
    marked = marked_answers(response)
    if len(marked) > 1:  # hedging: "#### 3 ... \\boxed{4}" must not win whichever is right
        shown = ", ".join(marked[:5]) + (" ..." if len(marked) > 5 else "")
        return MathVerdict(
            False, canonical(raw), method, gold_show, f"several different final answers ({shown})"
        )
    ok, why = answers_match(raw, gold_text, tolerance=tolerance, symbolic=symbolic)
    return MathVerdict(ok, canonical(raw), method, gold_show, f"{method}: {why}")


# --- the verifier -------------------------------------------------------------------------------------------

from synth.config import setting, settings  # noqa: E402
from synth.verifiers import Task, Verdict, Verifier  # noqa: E402


@settings
class MathSettings:
    answer_field: str = setting(
        "answer", "Column with the gold answer: GSM8K's '... #### 42', MATH's \\boxed{...} or a bare value."
    )
    tolerance: float = setting(
        DEFAULT_TOLERANCE, "math: relative tolerance for non-integer answers (integers must be equal).", min=0
    )
    symbolic: str = setting(
        "auto",
        "math: also accept symbolically equal answers with sympy (auto: when sympy is installed).",
        choices=("auto", "on", "off"),
    )


class MathVerifier(Verifier):
    """Correct when the response's final answer equals the row's gold answer; a response that marks several
    different final answers is incorrect whichever of them is right."""

    name = "math"
    missing_reason = "no_gold_answer"
    Settings = MathSettings

    def __init__(self, settings, ctx=None):
        super().__init__(settings, ctx)
        if settings.symbolic == "on" and sympy_version() is None:
            from curate.io import InputError

            raise InputError("--symbolic on needs sympy (pip install sympy), or use --symbolic auto/off")
        self.symbolic = settings.symbolic != "off" and sympy_version() is not None

    def problem(self, row: dict) -> str | None:
        try:
            gold_answer(row.get(self.settings.answer_field))
        except NoGoldAnswer as e:
            return f"{e} in field '{self.settings.answer_field}'"
        return None

    def reference(self, row: dict) -> str | None:
        try:
            return gold_answer(row.get(self.settings.answer_field))
        except NoGoldAnswer:
            return None

    def verify(self, tasks: list[Task]) -> list[list[Verdict]]:
        out = []
        for task in tasks:
            gold = task.row.get(self.settings.answer_field)
            if self.problem(task.row) is not None:
                out.append([Verdict(None, "unscored", self.problem(task.row)) for _ in task.completions])
                continue
            row = []
            for text in task.completions:
                v = verify(text or "", gold, tolerance=self.settings.tolerance, symbolic=self.symbolic)
                row.append(
                    Verdict(
                        1.0 if v.correct else 0.0, "correct" if v.correct else "incorrect", v.why, v.extracted
                    )
                )
            out.append(row)
        return out

    def info(self) -> dict:
        return {
            "name": self.name,
            "answer_field": self.settings.answer_field,
            "tolerance": self.settings.tolerance,
            "symbolic": f"sympy {sympy_version()}" if self.symbolic else "off",
        }


__all__ = [
    "DEFAULT_TOLERANCE",
    "MathVerifier",
    "MathVerdict",
    "NoGoldAnswer",
    "answers_match",
    "canonical",
    "extract_answer",
    "gold_answer",
    "normalize_answer",
    "parse_number",
    "sympy_version",
    "verify",
]
