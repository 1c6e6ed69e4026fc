"""The `pii` step: one pass that drops and redacts, the policy (names only next to contact details), redaction,
known false positives, the name guard, and the fast path's identity."""

from __future__ import annotations

import json
import pickle
import socket

import pytest

pytest.importorskip("presidio_analyzer")

from pii_fixtures import corpus_module, installed_ner_model, policy_file  # noqa: E402

from curate.filters.pii import PIIAnalyzer, PIIPolicy  # noqa: E402
from curate.filters.pii.analyzer import FastAnalyzer, build_engine, to_findings  # noqa: E402
from curate.pipeline import MemorySink, Pipeline, StepError  # noqa: E402
from curate.steps import build_step, build_steps  # noqa: E402


def conv(*turns, i=0, roles=("user", "assistant")):
    return {
        "id": f"r{i}",
        "_kind": "conversation",
        "messages": [{"role": roles[k % 2], "content": t} for k, t in enumerate(turns)],
    }


def run(steps, rows):
    sink = MemorySink()
    Pipeline(steps).run(rows, sink)
    return sink


@pytest.fixture(scope="module")
def analyzer():
    return PIIAnalyzer()


def found(analyzer, text, *, raw=False):
    fs = analyzer.raw([text])[0] if raw else analyzer.findings([text])[0]
    return [(f.entity, text[f.start : f.end]) for f in fs]


# --- drop ------------------------------------------------------------------------------------------


def test_drop_names_entity_types_and_counts_never_the_values():
    card, ssn = "4111 1111 1111 1111", "219-09-9999"
    rows = [
        conv(f"My card {card} and my SSN {ssn}.", "I can't store those."),
        conv("What is a Luhn checksum?", "It validates card numbers.", i=1),
    ]
    sink = run(build_steps(["pii"]), rows)
    assert [(r["id"], r["reject_reason"], r["reject_detail"]) for r in sink.rejected_rows] == [
        ("r0", "pii", "CREDIT_CARD=1 (drop); US_SSN=1 (drop)")
    ]
    assert [r["id"] for r in sink.kept_rows] == ["r1"]
    step = build_step("pii")
    facts = json.dumps(step.summary())
    assert card not in facts and ssn not in facts and "1111" not in facts


def test_pii_alone_redacts_what_it_does_not_drop():
    """Regression: `--filters pii` left emails, phones and IPs untouched (they needed a second step)."""
    sink = run(build_steps(["pii"]), [conv("Call me on +44 20 7946 0958 tomorrow.", "Will do.")])
    assert sink.rejected_rows == []
    assert sink.kept_rows[0]["messages"][0]["content"] == "Call me on <PHONE_NUMBER> tomorrow."
    assert sink.edit_records == [
        {
            "id": "r0",
            "step": "pii",
            "field": "messages[0].content",
            "before": "Call me on +44 20 7946 0958 tomorrow.",
            "after": "Call me on <PHONE_NUMBER> tomorrow.",
        }
    ]


def test_pii_redact_is_a_deprecated_alias_of_pii():
    with pytest.warns(FutureWarning, match="pii-redact step is deprecated"):
        (step,) = build_steps(["pii-redact"])
    sink = run([step], [conv("Card 4111 1111 1111 1111", "ok"), conv("Mail jo@gmail.com", "ok", i=1)])
    assert [r["reject_step"] for r in sink.rejected_rows] == ["pii-redact"]
    assert "jo@gmail.com" not in sink.kept_rows[0]["messages"][0]["content"]
    assert "deprecated" in step.summary()


# --- redact ----------------------------------------------------------------------------------------


def test_fake_values_are_consistent_per_original_and_never_the_original():
    rows = [
        conv("Write to jane.doe@gmail.com", "Sure, I'll write to jane.doe@gmail.com.", i=0),
        conv("CC jane.doe@gmail.com and bob@outlook.com", "Done.", i=1),
    ]
    sink = run(build_steps(["pii"]), rows)
    texts = [m["content"] for r in sink.kept_rows for m in r["messages"]]
    assert "jane.doe@gmail.com" not in " ".join(texts) and "bob@outlook.com" not in " ".join(texts)
    fake = texts[0].removeprefix("Write to ")
    assert fake.endswith("@example.com")
    assert texts[1] == f"Sure, I'll write to {fake}."
    assert texts[2].startswith(f"CC {fake} and ") and not texts[2].endswith(f"and {fake}")
    assert {e["field"] for e in sink.edit_records} == {"messages[0].content", "messages[1].content"}


def test_preference_rows_are_redacted_in_prompt_chosen_and_rejected():
    row = {
        "id": "p",
        "_kind": "preference",
        "prompt": [{"role": "user", "content": "My IP is 84.17.223.101, is that bad?"}],
        "chosen": [{"role": "assistant", "content": "Sharing 84.17.223.101 publicly is risky."}],
        "rejected": [{"role": "assistant", "content": "84.17.223.101 is fine to share."}],
    }
    sink = run(build_steps(["pii"]), [row])
    out = sink.kept_rows[0]
    fake = out["rejected"][0]["content"].split()[0]
    assert fake.startswith(("192.0.2.", "198.51.100.", "203.0.113."))
    assert out["prompt"][0]["content"] == f"My IP is {fake}, is that bad?"
    assert out["chosen"][0]["content"] == f"Sharing {fake} publicly is risky."
    assert sorted(e["field"] for e in sink.edit_records) == [
        "chosen[0].content",
        "prompt[0].content",
        "rejected[0].content",
    ]


def test_allow_lists_leave_documentation_values_alone(analyzer):
    text = (
        "Use admin@example.com, ops@mail.example.org, 192.0.2.10, 10.0.0.5, 2001:db8::1, 8.8.8.8 "
        "and 555-0123, but not jo@gmail.com or 84.17.223.101."
    )
    raw = {v for _, v in found(analyzer, text, raw=True)}
    assert {"admin@example.com", "192.0.2.10", "10.0.0.5", "8.8.8.8"} <= raw  # presidio finds them ...
    assert found(analyzer, text) == [("EMAIL_ADDRESS", "jo@gmail.com"), ("IP_ADDRESS", "84.17.223.101")]


# --- known false positives -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, raw_phone",
    [
        ("IP 212.58.244.20 blocked", "212.58.244.20"),  # phone inside an IP address
        ("card 4954 1769 4121 1357 declined", "4954 1769 4121 1357"),  # ... inside a card number
        ("IBAN NL94 KMWO 0110 8923 61 please", "0110 8923 61"),  # ... inside an IBAN
        ("SSN 090-82-8146 on file", "090-82-8146"),  # ... inside an SSN
        ("the ratio was 38.4607 overall", "38.4607"),  # a decimal
        ("Timestamp 1700000000 is in 2023", "1700000000"),  # a bare digit run, no context word
        ("ticket 2023-812599 is closed", "2023-812599"),  # a year-prefixed id
        ("Order number 30040973 shipped", "30040973"),  # "number" lifts it to 0.75 ...
        ("Chapter 4 covers pages 3006-7640.", "3006-7640"),  # a page range
    ],
)
def test_phone_false_positives_are_removed(analyzer, text, raw_phone):
    assert ("PHONE_NUMBER", raw_phone) in found(analyzer, text, raw=True)  # presidio reports it ...
    assert "PHONE_NUMBER" not in {e for e, _ in found(analyzer, text)}  # ... the policy does not


@pytest.mark.parametrize(
    "text",
    [
        "Released v2.14.3 on 2024-03-15 at 14:32:07.",
        "pip install torch==2.13.0",
        "Python 3.11.4",
        "Due 15.03.2024, or 03/15/2024, or 2024.03.15.",
        "2024-03-15T14:32:07Z",
        "Build 20240315.1 passed.",
        "Compute 123 * 456 = 56088, then add 7.",
        "SELECT * FROM t WHERE id = 48213 AND ts > '2021-01-01';",
        "for i in range(1000):\n    x = i * 31337 % 65521",
        "Between 1971 and 2019 it grew from 3200000 to 47000000.",
        # regressions: arithmetic with "/", scores, ranges, references, coordinates, money
        "Add them: 31 + 35 + 33 + 34 + 35 = 168, so the mean is 168 / 5 = 33.6 minutes.",
        "Divide: 7919 / 13 = 609.15, and 1234567 × 89 = 109876463.",
        "Germany beat Argentina 1-0; Djokovic won 7-6(5), 1-6, 7-6(4), 4-6, 13-12(3).",
        "The war lasted 1914-1918; the reign 1558-1603.",
        "Result of the query: 1382989 rows in 9.730 s (id range 15120-8261179).",  # a range of ids
        "Fagles' translation is ISBN 978-0-14-026886-7, pp. 232-465.",
        "Everest is at 27.9881° N, 86.9250° E; the GPS fix was 48.85837, 2.29448.",
        "It costs $1,234,567.89 for 2560x1440 panels.",
    ],
)
def test_look_alikes_are_not_pii(analyzer, text):
    assert found(analyzer, text) == []


def test_a_version_is_not_an_ip_address(analyzer):
    assert found(analyzer, "version 1.2.3.4", raw=True) == [("IP_ADDRESS", "1.2.3.4")]
    assert found(analyzer, "version 1.2.3.4") == []
    assert found(analyzer, "host 1.2.3.4 is down") == [("IP_ADDRESS", "1.2.3.4")]


def test_a_url_inside_an_email_address_is_not_a_url(tmp_path):
    an = PIIAnalyzer(policy_file(tmp_path, entities={"URL": {"action": "redact"}}))
    text = "Mail jane.doe@mail.com or see https://blog.janedoe.net/about"
    assert ("URL", "mail.com") in found(an, text, raw=True)
    assert found(an, text) == [
        ("EMAIL_ADDRESS", "jane.doe@mail.com"),
        ("URL", "https://blog.janedoe.net/about"),
    ]


def test_real_phone_numbers_with_context_or_formatting_are_found(analyzer):
    # a bare digit run needs a context word ("call" is a spaCy stop word, so presidio skips it)
    assert found(analyzer, "my mobile: 07700900123") == [("PHONE_NUMBER", "07700900123")]
    assert found(analyzer, "call me on 07700900123") == []
    assert found(analyzer, "reach me at (415) 867-5309") == [("PHONE_NUMBER", "(415) 867-5309")]
    assert found(analyzer, "Tel +33 1 42 68 53 00") == [("PHONE_NUMBER", "+33 1 42 68 53 00")]


@pytest.mark.parametrize(
    "text, address",
    [
        (
            "Ship it to 742 Maple Avenue, Springfield, IL 62704 please",
            "742 Maple Avenue, Springfield, IL 62704",
        ),
        ("I live at 17 Kingsley Road, Leeds LS6 2QT.", "17 Kingsley Road, Leeds LS6 2QT"),
        ("Meine Adresse: Lindenstraße 42, 10115 Berlin", "Lindenstraße 42, 10115 Berlin"),
        ("Envoyez-le au 8 rue des Lilas, 69002 Lyon.", "8 rue des Lilas, 69002 Lyon"),
    ],
)
def test_street_addresses_are_found(analyzer, text, address):
    assert found(analyzer, text) == [("STREET_ADDRESS", address)]


@pytest.mark.parametrize(
    "text",
    [
        "Add 2 large eggs and stir all the way.",
        "Sherlock Holmes lives at 221B Baker Street.",  # famous addresses are nobody's home
        "Turn left after 3 blocks onto the main road.",
    ],
)
def test_street_look_alikes_are_not_addresses(analyzer, text):
    assert found(analyzer, text) == []


# --- policy knobs ----------------------------------------------------------------------------------


def test_only_the_configured_roles_are_scanned(tmp_path):
    rules = policy_file(tmp_path, roles=["user"])
    rows = [conv("hello", "Your card 4111 1111 1111 1111 is on file.")]
    assert run([build_step("pii", {"rules": rules})], rows).rejected_rows == []
    rows = [conv("hello", "Your card 4111 1111 1111 1111 is on file.")]
    assert len(run([build_step("pii")], rows).rejected_rows) == 1


def test_score_threshold_per_entity(tmp_path):
    strict = PIIAnalyzer(policy_file(tmp_path, entities={"PHONE_NUMBER": {"min_score": 0.75}}))
    assert found(strict, "reach me at (415) 867-5309") == []  # 0.4 without a context word
    assert found(strict, "phone: (415) 867-5309") == [("PHONE_NUMBER", "(415) 867-5309")]


def test_ignored_types_are_not_even_looked_for(tmp_path):
    an = PIIAnalyzer(policy_file(tmp_path, entities={"IP_ADDRESS": {"action": "ignore"}}, false_positives=[]))
    _, entities = build_engine(an.policy)
    assert "IP_ADDRESS" not in entities and "CREDIT_CARD" in entities


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"entities": {"EMAIL_ADDRESS": {"action": "hide"}}},
            "action: 'hide' is not one of drop, redact, ignore",
        ),
        ({"entities": {"US_SSN": {"action": "redact", "redact_with": "fake"}}}, "no fake values for US_SSN"),
        ({"roles": ["bot"]}, "roles: 'bot'"),
        ({"entitys": {}}, "unknown key 'entitys'"),
        ({"entities": {"HOVERCRAFT": {"action": "drop"}}}, "HOVERCRAFT, which presidio"),
        ({"entities": {"PERSON": {"only_with": ["HOVERCRAFT"]}}}, "only_with: HOVERCRAFT is not an entity"),
        ({"fakes": {"PERSON": {"pool": []}}}, "fakes.PERSON.pool: empty"),
    ],
)
def test_bad_policies_are_errors_naming_the_file(tmp_path, change, message):
    rules = policy_file(tmp_path, name="mine.yaml", **change)
    with pytest.raises(StepError, match=message) as e:
        build_step("pii", {"rules": rules})
    assert "mine.yaml" in str(e.value)


def test_opting_in_a_type_that_is_not_acted_on_is_an_error():
    with pytest.raises(StepError, match="always: LOCATION is not acted on"):
        build_step("pii", {"always": ["LOCATION"]})


def test_without_a_ner_model_the_manifest_says_names_are_not_detected():
    facts = build_step("pii").summary()
    assert facts["not_detected"] == "PERSON not detected: no --pii-ner model"


def test_a_missing_ner_model_is_a_clear_error():
    with pytest.raises(StepError, match="neither an installed package nor a path"):
        PIIAnalyzer(ner="xx_no_such_model").names  # noqa: B018


NER_MODEL, WHY_NOT = installed_ner_model()


@pytest.fixture(scope="module")
def ner_step():
    if NER_MODEL is None:
        pytest.skip(WHY_NOT)
    return build_step("pii", {"ner": NER_MODEL})


@pytest.fixture(scope="module")
def every_name_step():
    """The opt-in: every name is redacted, not only names next to contact details."""
    if NER_MODEL is None:
        pytest.skip(WHY_NOT)
    return build_step("pii", {"ner": NER_MODEL, "always": ["PERSON"]})


def test_ner_loads_only_what_names_need(ner_step):
    nlp = ner_step._analyzer.names.fast.engine.nlp_engine.nlp["en"]
    assert "ner" in nlp.pipe_names and not {"parser", "lemmatizer"} & set(nlp.pipe_names)
    assert "not_detected" not in ner_step.summary()


def test_a_name_with_contact_details_is_redacted_consistently(ner_step):
    rows = [conv("I'm John Smith, reach me at john.smith@gmail.com", "Nice to meet you, John Smith!")]
    sink = run([ner_step], rows)
    user, bot = (m["content"] for m in sink.kept_rows[0]["messages"])
    assert "John" not in user + bot and "gmail" not in user
    fake = user.removeprefix("I'm ").split(",")[0]
    assert bot == f"Nice to meet you, {fake}!"


def test_a_name_without_contact_details_is_left_alone(ner_step):
    """Regression: Charles Darwin and King John in a history answer were replaced by fake names."""
    text = "Charles Darwin sailed on the Beagle; King John sealed Magna Carta in 1215, as Jane Austen knew."
    rows = [conv("Tell me some history.", text)]
    sink = run([ner_step], rows)
    assert sink.kept_rows[0]["messages"][1]["content"] == text and sink.edit_records == []


def test_names_are_redacted_everywhere_when_the_user_opts_in(every_name_step):
    sink = run([every_name_step], [conv("Who was Charles Darwin?", "Charles Darwin was a naturalist.")])
    assert "Darwin" not in json.dumps(sink.kept_rows) and len(sink.edit_records) == 2
    assert every_name_step.summary()["only_with"] == {}


@pytest.mark.parametrize(
    "text",
    [
        "Convert 2 1/2 cups of flour to grams.",  # recipe verbs and ingredients
        "Bake for 25 minutes. Whisk the eggs. Flour: 200 g. Stir in the Sugar.",
        "Ingredients:\nFlour: 250 g\nButter: 115 g\nPreheat the oven. Fold in the flour.",
        "The price is 12 euros per square metre.",
        "Mezcla la harina con el azúcar y Hornea durante veinte minutos a fuego medio.",  # Spanish prose
        "Faites revenir les légumes, puis Mélangez avec l'ail et laissez mijoter longtemps.",
    ],
)
def test_capitalised_words_recipe_verbs_and_other_languages_are_not_names(every_name_step, text):
    """Regression: the README recipe's NER rewrote "Convert", "Bake", "Flour:" and Spanish prose as names."""
    found = every_name_step._analyzer.findings([text])[0]
    assert [(f.entity, text[f.start : f.end]) for f in found if f.entity == "PERSON"] == []


def test_the_name_guard_turns_away_common_words_but_keeps_first_names(every_name_step):
    an = every_name_step._analyzer
    texts = ["Hi, I'm Maria and I need help.", "My colleague Kenji Nakamura wrote the report."]
    names = [
        [t[f.start : f.end] for f in fs if f.entity == "PERSON"]
        for t, fs in zip(texts, an.findings(texts), strict=True)
    ]
    assert names == [["Maria"], ["Kenji Nakamura"]]


def test_ner_runs_only_on_rows_with_contact_details(tmp_path):
    if NER_MODEL is None:
        pytest.skip(WHY_NOT)
    step = build_step("pii", {"ner": NER_MODEL})
    rows = [conv(f"Tell me about Charles Darwin, part {i}.", "He was a naturalist.", i=i) for i in range(5)]
    rows.append(conv("I'm Sofia Rossi, mail me at sofia.rossi@web.de", "Sure.", i=9))
    run([step], rows)
    assert step.summary()["ner_texts"] == 2  # the two turns of the one row with an e-mail address


# --- the fast path ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_corpus():
    return corpus_module().make_corpus(240, seed=7)


def test_fast_path_finds_exactly_what_presidios_batch_engine_finds(small_corpus):
    from presidio_analyzer import BatchAnalyzerEngine

    policy = PIIPolicy.load("pii.yaml")
    texts = [m["content"] for r in small_corpus for m in r["messages"]]
    engine, entities = build_engine(policy)
    want = [
        to_findings(r) for r in BatchAnalyzerEngine(engine).analyze_iterator(texts, "en", entities=entities)
    ]
    got = FastAnalyzer(*build_engine(policy)).analyze(texts)
    assert sum(map(len, want)) > 100  # the corpus is full of findings, true and false
    assert got == want


def test_planted_corpus_recall_and_false_positives(small_corpus):
    mod = corpus_module()
    an = PIIAnalyzer()
    findings = [[list(fs) for fs in an.findings([m["content"] for m in r["messages"]])] for r in small_corpus]
    report = mod.evaluate(small_corpus, findings)
    acted = set(an.policy.acting()) - {"PERSON"}  # names need NER: see test_planted_names_are_found_with_ner
    assert {e: r for e, r in report["recall"].items() if e in acted and r < 0.99} == {}
    assert report["false_positive_rate"] == 0.0, report["false_positives_by_type"]


def test_planted_names_are_found_with_ner(small_corpus, ner_step):
    """Names planted next to contact details, in signatures, lists and sentences, are all found."""
    mod = corpus_module()
    rows = [r for r in small_corpus if any(p["entity"] == "PERSON" for p in r["planted"])]
    texts = [m["content"] for r in rows for m in r["messages"]]
    owners = [k for k, r in enumerate(rows) for _ in r["messages"]]
    found = iter(ner_step._analyzer.review(texts, owners))
    findings = [[list(next(found)) for _ in r["messages"]] for r in rows]
    report = mod.evaluate(rows, findings)
    assert len(rows) > 20 and report["recall"]["PERSON"] == 1.0


def test_steps_travel_to_worker_processes_as_settings(tmp_path):
    step = build_step("pii", {"always": "EMAIL_ADDRESS"})
    again = pickle.loads(pickle.dumps(step))
    assert again.settings() == {"rules": "pii.yaml", "ner": None, "always": ["EMAIL_ADDRESS"]}
    assert again._analyzer is not step._analyzer and again.policy.entities == step.policy.entities


def test_nothing_is_downloaded(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import tldextract.tldextract as tld

    # email validation must find its public suffix list again, offline (the bundled snapshot)
    monkeypatch.setattr(tld.TLD_EXTRACTOR, "_extractor", None)
    # a fresh analyzer and policy file, so nothing comes from the shared cache
    an = PIIAnalyzer(policy_file(tmp_path, name="offline.yaml"))
    assert found(an, "Write to someone@uni-heidelberg.de today") == [
        ("EMAIL_ADDRESS", "someone@uni-heidelberg.de")
    ]


# --- through the CLI -------------------------------------------------------------------------------


def test_cli_pii_drops_a_card_and_redacts_an_email_in_one_run(cli, tmp_path):
    """One step, one run: the drop in rejected.jsonl and the redaction in edits.jsonl; no value in the manifest."""
    from conftest import read_jsonl, write_jsonl

    from curate.cli import main

    rows = [
        {
            "id": "card",
            "messages": [
                {"role": "user", "content": "Charge 4111 1111 1111 1111 please."},
                {"role": "assistant", "content": "Done."},
            ],
        },
        {
            "id": "mail",
            "messages": [
                {"role": "user", "content": "Mail me at jane.doe@gmail.com"},
                {"role": "assistant", "content": "Will do."},
            ],
        },
        {
            "id": "clean",
            "messages": [
                {"role": "user", "content": "Release v2.14.3 shipped on 2024-03-15."},
                {"role": "assistant", "content": "Congratulations!"},
            ],
        },
    ]
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "run"
    res = cli(main, "filter", data, "--filters", "pii", "-o", out, "-q", "-j", "1")
    assert res.exit_code == 0, res.output
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [(r["id"], r["reject_step"], r["reject_reason"], r["reject_detail"]) for r in rejected] == [
        ("card", "pii", "pii", "CREDIT_CARD=1 (drop)")
    ]
    kept = {r["id"]: r for r in read_jsonl(out / "kept.jsonl")}
    assert set(kept) == {"mail", "clean"}
    assert "jane.doe@gmail.com" not in kept["mail"]["messages"][0]["content"]
    edits = read_jsonl(out / "edits.jsonl")
    assert [(e["id"], e["step"], e["field"], e["before"]) for e in edits] == [
        ("mail", "pii", "messages[0].content", "Mail me at jane.doe@gmail.com")
    ]
    manifest = (out / "manifest.json").read_text()
    assert "jane.doe" not in manifest and "4111" not in manifest
    steps = {s["name"]: s for s in json.loads(manifest)["steps"]}
    assert steps["pii"]["summary"]["not_detected"] == "PERSON not detected: no --pii-ner model"


@pytest.mark.skipif(NER_MODEL is None, reason=WHY_NOT)
def test_cli_pii_ner_option_reaches_the_pii_step(cli, tmp_path):
    from conftest import write_jsonl

    from curate.cli import main

    data = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "id": "a",
                "messages": [
                    {"role": "user", "content": "Hi, I'm John Smith."},
                    {"role": "assistant", "content": "Hello John Smith!"},
                ],
            }
        ],
    )
    out = tmp_path / "run"
    res = cli(main, "filter", data, "--filters", "pii", "--pii-ner", NER_MODEL, "-o", out, "-q", "-j", "1")
    assert res.exit_code == 0, res.output
    steps = {s["name"]: s for s in json.loads((out / "manifest.json").read_text())["steps"]}
    assert steps["pii"]["summary"]["ner_model"] == NER_MODEL and "not_detected" not in steps["pii"]["summary"]


@pytest.mark.slow
def test_worker_processes_give_the_same_run_as_one_process(cli, tmp_path):
    """`-j 2` (the step rebuilt in each spawned worker) writes what `-j 1` writes, byte for byte."""
    from conftest import SAMPLE

    from curate.cli import main

    outputs = {}
    for j in ("1", "2"):
        out = tmp_path / f"j{j}"
        res = cli(main, "filter", SAMPLE / "conversations.jsonl", "--filters", "pii", "--batch-size", "50",
                  "-o", out, "-q", "-j", j)  # fmt: skip
        assert res.exit_code == 0, res.output
        outputs[j] = [(out / n).read_bytes() for n in ("kept.jsonl", "rejected.jsonl", "edits.jsonl")]
    assert outputs["1"] == outputs["2"] and outputs["1"][2]
