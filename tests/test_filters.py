"""Each issue-2 filter on tiny literal rows, asserting the reason and the detail."""

from __future__ import annotations

import polars as pl
import pytest

from curate.filters.dedup import ExactDedupFilter, NearDedupFilter
from curate.filters.language import LanguageFilter
from curate.filters.quality import QualityFilter
from curate.filters.selfid import SelfIdentificationFilter
from curate.pipeline import to_frame


def row(*turns, id="r", kind=None):
    msgs = [{"role": r, "content": c} for r, c in turns]
    k = kind or ("prompt" if msgs[-1]["role"] == "user" else "conversation")
    return {"id": id, "_kind": k, "messages": msgs}


def pref(prompt, chosen, rejected, id="p"):
    return {
        "id": id,
        "_kind": "preference",
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def verdict(step, *rows):
    return step.verdict(to_frame(list(rows))).rows()


GOOD = (
    ("user", "How do I reverse a list in Python?"),
    ("assistant", "Use slicing: `items[::-1]`, or `items.reverse()` in place."),
)


# --- quality -------------------------------------------------------------------------------------


def test_quality_keeps_a_good_conversation_with_system_prompt():
    assert verdict(QualityFilter(), row(("system", "Be brief."), *GOOD)) == [(None, None)]


@pytest.mark.parametrize(
    "turns, reason, detail",
    [
        (
            [("user", "a"), ("user", "b"), ("assistant", "c")],
            "roles_not_alternating",
            "turn 1 is 'user', expected 'assistant'",
        ),
        (
            [("assistant", "Hello there"), ("user", "hi")],
            "roles_not_alternating",
            "turn 0 is 'assistant', expected 'user'",
        ),
        (
            [("user", "a"), ("assistant", "b"), ("system", "c")],
            "roles_not_alternating",
            "turn 2 is 'system': a system message is only allowed first",
        ),
        ([("user", "Hi"), ("assistant", "  \n ")], "empty_turn", "turn 1 (assistant) is empty"),
        ([("user", ""), ("assistant", "Hello")], "empty_turn", "turn 0 (user) is empty"),
    ],
)
def test_quality_structure(turns, reason, detail):
    assert verdict(QualityFilter(), row(*turns)) == [(reason, detail)]


def test_quality_final_turn_for_conversations_and_prompts():
    convo = row(*GOOD, ("user", "And for tuples?"), kind="conversation")
    assert verdict(QualityFilter(), convo)[0][0] == "wrong_final_turn"
    prompt = row(("user", "Write a haiku about rain."))  # prompt rows are expected to end with the user
    assert verdict(QualityFilter(), prompt) == [(None, None)]
    assert verdict(QualityFilter(final_turn="any"), convo) == [(None, None)]


def test_quality_length_bounds():
    assert verdict(QualityFilter(max_words=5), row(*GOOD)) == [("too_long", "15 words (max 5)")]
    assert verdict(QualityFilter(min_response_words=20), row(*GOOD))[0][0] == "too_short"


def test_quality_repetitive_ngrams():
    loop = "The answer is simple and you should remember it well. " * 12
    reason, detail = verdict(QualityFilter(), row(("user", "Explain"), ("assistant", loop)))[0]
    assert reason == "repetitive_ngrams"
    assert "5-grams are repeated" in detail


def test_quality_repetitive_lines():
    lines = [
        f"Step {i}: mix the flour with {w} and stir for a while."
        for i, w in enumerate("water milk eggs sugar butter salt yeast honey oil vanilla".split())
    ]
    answer = "\n".join(lines[:4] + ["Keep stirring until smooth."] * 8 + lines[4:])
    assert (
        verdict(QualityFilter(), row(("user", "Recipe?"), ("assistant", answer)))[0][0] == "repetitive_lines"
    )


def test_quality_natural_long_answer_is_not_repetitive():
    answer = (
        "Photosynthesis converts light energy into chemical energy. Chlorophyll in the chloroplasts absorbs "
        "red and blue light, which drives the splitting of water and releases oxygen as a by-product. The "
        "energy captured is stored in ATP and NADPH, which the Calvin cycle then uses to fix carbon dioxide "
        "into sugars such as glucose. Plants use those sugars for growth, and store the surplus as starch in "
        "roots, seeds and tubers, which is why potatoes and grains are such rich sources of energy for us."
    )
    assert verdict(QualityFilter(), row(("user", "Explain photosynthesis"), ("assistant", answer))) == [
        (None, None)
    ]


def test_quality_garbled_text():
    text = "Le cafÃ© Ã©tait trÃ¨s bon, câ€™est vrai " * 3
    assert verdict(QualityFilter(), row(("user", "Translate"), ("assistant", text)))[0][0] == "garbled_text"
    ctrl = "Hello\x00\x01\x02 world \ufffd\ufffd\ufffd"
    assert verdict(QualityFilter(), row(("user", "Hi"), ("assistant", ctrl)))[0][0] == "garbled_text"


def test_quality_checks_rejected_turn_of_preference_rows():
    assert verdict(QualityFilter(), pref("Q?", "A good answer.", " "))[0] == (
        "empty_turn",
        "rejected turn 0 (assistant) is empty",
    )


def test_quality_rejects_unknown_final_turn_setting():
    with pytest.raises(ValueError, match="final_turn"):
        QualityFilter(final_turn="model")


# --- selfid --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, reason, who",
    [
        (
            "As an AI language model developed by OpenAI, I cannot browse the web.",
            "claims_other_developer",
            "OpenAI",
        ),
        ("I'm Claude, an AI assistant. How can I help?", "claims_other_model", "Claude"),
        ("I was trained by Meta on a large corpus.", "claims_other_developer", "Meta"),
        ("Hello! My name is Bard and I love poems.", "claims_other_model", "Gemini"),
        ("I am ChatGPT, a large language model.", "claims_other_model", "ChatGPT"),
        ("I'm an AI assistant made by Anthropic.", "claims_other_developer", "Anthropic"),
        ("Sure. I am based on GPT-4, so I can do that.", "claims_other_model", "ChatGPT"),
    ],
)
def test_selfid_claims(text, reason, who):
    got_reason, detail = verdict(
        SelfIdentificationFilter(), row(("user", "Who are you?"), ("assistant", text))
    )[0]
    assert got_reason == reason
    assert detail.startswith(f'{who}: "')


@pytest.mark.parametrize(
    "text",
    [
        "ChatGPT is a model developed by OpenAI and released in 2022.",
        "I'm not ChatGPT, but I can help with that.",
        "GPT-4 and Claude differ mainly in context length.",
        "I am a big fan of Google Maps for directions.",
        "Meta released Llama 3 in April 2024.",
    ],
)
def test_selfid_factual_mentions_are_not_claims(text):
    assert verdict(SelfIdentificationFilter(), row(("user", "Tell me"), ("assistant", text))) == [
        (None, None)
    ]


def test_selfid_ignores_user_turns():
    r = row(
        ("user", "I'm ChatGPT's biggest fan. As an AI developed by OpenAI, is it good?"),
        ("assistant", "It is popular."),
    )
    assert verdict(SelfIdentificationFilter(), r) == [(None, None)]


def test_selfid_allows_own_identity_but_not_others():
    f = SelfIdentificationFilter(identity="Gemma", developer="Google")
    own = row(
        ("user", "Who are you?"), ("assistant", "I'm Gemma, an AI assistant developed by Google DeepMind.")
    )
    other = row(("user", "Who are you?"), ("assistant", "I am ChatGPT."))
    assert verdict(f, own, other) == [(None, None), ("claims_other_model", 'ChatGPT: "I am ChatGPT"')]
    assert verdict(SelfIdentificationFilter(), own)[0][0] == "claims_other_model"


# --- exact dedup ---------------------------------------------------------------------------------


def test_exact_dedup_normalizes_case_and_whitespace_and_names_the_first():
    a = row(*GOOD, id="a")
    b = row(("user", "how do I  reverse a list in python?"), ("assistant", GOOD[1][1].upper()), id="b")
    c = row(("user", "Something else"), ("assistant", "Another answer."), id="c")
    assert verdict(ExactDedupFilter(), a, b, c) == [
        (None, None),
        ("exact_duplicate", "duplicate of a"),
        (None, None),
    ]


def test_exact_dedup_keeps_state_across_batches_and_respects_roles():
    f = ExactDedupFilter()
    assert verdict(f, row(*GOOD, id="a")) == [(None, None)]
    assert verdict(f, row(*GOOD, id="b")) == [("exact_duplicate", "duplicate of a")]
    swapped = row(("assistant", GOOD[0][1]), ("user", GOOD[1][1]), id="c")
    assert verdict(f, swapped) == [(None, None)]


# --- near dedup ----------------------------------------------------------------------------------

TEXT = (
    "Regular exercise improves cardiovascular health, strengthens muscles and bones, and helps regulate "
    "body weight. It also reduces the risk of chronic diseases such as type 2 diabetes and certain cancers. "
    "Beyond the physical benefits, physical activity releases endorphins that improve mood and reduce stress, "
    "and a consistent routine can improve sleep quality and cognitive function as people age. Experts "
    "recommend at least 150 minutes of moderate aerobic activity each week together with two sessions of "
    "strength training that work all major muscle groups."
)


def test_near_dedup_drops_a_lightly_edited_copy_and_names_the_kept_row():
    f = NearDedupFilter()
    edited = TEXT.replace("Experts", "Doctors")  # one word: 5 of 81 shingles change, Jaccard ~0.88
    res = verdict(
        f,
        row(("user", "Benefits of exercise?"), ("assistant", TEXT), id="orig"),
        row(("user", "Benefits of exercise?"), ("assistant", edited), id="copy"),
        row(("user", "Benefits of sleep?"), ("assistant", "Sleep restores the body and mind."), id="other"),
    )
    assert res[0] == (None, None) and res[2] == (None, None)
    assert res[1][0] == "near_duplicate"
    assert res[1][1].startswith("near duplicate of orig (Jaccard 0.")


def test_near_dedup_across_batches_first_wins_and_different_text_survives():
    f = NearDedupFilter()
    assert verdict(f, row(("user", "Q"), ("assistant", TEXT), id="first")) == [(None, None)]
    second = verdict(f, row(("user", "Q"), ("assistant", TEXT + " Stay hydrated."), id="second"))
    assert second[0][0] == "near_duplicate" and "of first" in second[0][1]
    other = TEXT.split(". ")
    other.reverse()
    assert verdict(
        f,
        row(
            ("user", "Q"),
            ("assistant", "Completely different: " + " and ".join(w for w in TEXT.split()[::3])),
            id="x",
        ),
    ) == [(None, None)]


def test_near_dedup_threshold_is_respected():
    half = " ".join(TEXT.split()[: len(TEXT.split()) // 2])
    strict = NearDedupFilter(threshold=0.95)
    res = verdict(
        strict,
        row(("user", "Q"), ("assistant", TEXT), id="a"),
        row(("user", "Q"), ("assistant", half), id="b"),
    )
    assert res == [(None, None), (None, None)]


def test_near_dedup_rejects_bad_settings():
    with pytest.raises(ValueError, match="exceeds num_perm"):
        NearDedupFilter(num_perm=64, bands=16, rows=8)
    with pytest.raises(ValueError, match="threshold"):
        NearDedupFilter(threshold=1.5)


def test_near_dedup_is_deterministic():
    rows = [row(("user", "Q"), ("assistant", TEXT + f" Note {i % 3}."), id=str(i)) for i in range(6)]
    assert verdict(NearDedupFilter(), *rows) == verdict(NearDedupFilter(), *rows)


# --- language ------------------------------------------------------------------------------------


def test_language_keeps_english_and_drops_others_with_detail():
    fr = row(
        ("user", "Quelle est la capitale de la France ?"),
        ("assistant", "La capitale de la France est Paris."),
    )
    de = row(
        ("user", "Wie spät ist es?"),
        ("assistant", "Es ist drei Uhr nachmittags, Zeit für Kaffee und Kuchen."),
    )
    res = verdict(LanguageFilter(), row(*GOOD), fr, de)
    assert res[0] == (None, None)
    assert res[1][0] == "language_not_allowed" and res[1][1].startswith("fr (")
    assert res[2][0] == "language_not_allowed" and res[2][1].startswith("de (")
    assert verdict(LanguageFilter(languages="en,fr"), fr) == [(None, None)]


def test_language_drops_only_confident_other_languages():
    # fastText-lite puts short technical English at low confidence, sometimes under another label.
    tech = row(
        ("user", "In JavaScript, how do I remove duplicate values from an array?"),
        ("assistant", "Use a Set: [...new Set(values)] keeps the first of each."),
    )
    f = LanguageFilter()
    assert verdict(f, tech) == [(None, None)]
    de = row(
        ("user", "Wie spät ist es?"),
        ("assistant", "Es ist drei Uhr nachmittags, Zeit für Kaffee und Kuchen."),
    )
    lenient = LanguageFilter(min_confidence=1.01)  # nothing is ever confident enough to drop
    assert verdict(lenient, de) == [(None, None)]
    assert lenient.summary()["kept_uncertain_other_language"] == 1  # kept, and counted


def test_language_short_text_and_code_are_not_judged():
    assert verdict(LanguageFilter(), row(("user", "Hi"), ("assistant", "Hello?"))) == [(None, None)]
    code = "```python\ndef f(x):\n    return sorted(x, key=len)\n```"
    r = row(("user", "Write a function that sorts words by length."), ("assistant", code))
    assert verdict(LanguageFilter(), r) == [(None, None)]


def test_filters_return_frames_of_the_right_shape():
    frame = to_frame([row(*GOOD)])
    for step in (
        QualityFilter(),
        SelfIdentificationFilter(),
        ExactDedupFilter(),
        NearDedupFilter(),
        LanguageFilter(),
    ):
        v = step.verdict(frame)
        assert isinstance(v, pl.DataFrame) and v.columns == ["reason", "detail"] and v.height == 1


def test_band_index_finds_every_stored_entry_across_merged_runs():
    import numpy as np

    from curate.filters.dedup import _BandIndex

    rng = np.random.default_rng(0)
    idx, stored, start = _BandIndex(), [], 0
    for size in (50, 20, 80, 5, 200, 1, 64):  # uneven batches force several merges
        keys = rng.integers(0, 300, size).astype(np.uint64)  # small key space: many repeats
        ords = np.arange(start, start + size, dtype=np.uint32)
        idx.add(keys, ords)
        stored += list(zip(keys.tolist(), ords.tolist(), strict=True))
        start += size
    queries = np.arange(0, 320, dtype=np.uint64)
    q, o = idx.lookup(queries)
    got = sorted(zip(queries[q].tolist(), o.tolist(), strict=True))
    assert got == sorted(stored)
    assert len(idx.runs) <= 4
