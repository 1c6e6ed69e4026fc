"""Generate the planted-PII benchmark corpus: chat rows with known PII, and clean rows full of look-alikes.

Every planted value is valid by its own rules: cards pass Luhn, IBANs pass ISO 7064 mod 97 with the
country's length, phone numbers are valid numbers of their region (checked with `phonenumbers`) written in
national and international formats, SSNs avoid the never-issued ranges, bitcoin addresses carry their
base58check checksum. Clean rows hold what pattern matchers confuse with PII: version strings, dates and
timestamps, arithmetic, order and ticket numbers, hashes, ports, code.

Rows are the project's conversation rows plus a ``planted`` list ``[{entity, value, turn}]`` (empty for
clean rows) and ``clean: bool``. The output is deterministic for a given seed.

    python benchmarks/make_pii_corpus.py -n 1000 --seed 0 -o bench-out/pii_corpus.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
import sys
from pathlib import Path

FIRST = [
    "james",
    "maria",
    "wei",
    "fatima",
    "lukas",
    "chloe",
    "arjun",
    "sofia",
    "kenji",
    "amara",
    "oliver",
    "ines",
]
LAST = [
    "smith",
    "garcia",
    "chen",
    "khan",
    "muller",
    "martin",
    "patel",
    "rossi",
    "tanaka",
    "okafor",
    "brown",
    "silva",
]
MAIL_DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "proton.me",
    "web.de",
    "orange.fr",
    "acme-corp.io",
    "uni-heidelberg.de",
    "mail.ru",
    "icloud.com",
    "company.com.au",
    "startup.ai",
]
URL_HOSTS = [
    "www.my-bakery.fr",
    "blog.janedoe.net",
    "shop.acme-corp.io",
    "portfolio.kenji-t.jp",
    "grafana.internal.example.org",
]

# Ordinary chat turns, composed from parts so that few repeat verbatim (an analyzer may skip repeats).
USER_ASKS = [
    "Can you help me",
    "Could you show me how",
    "I need a hand",
    "Please explain how",
    "What's the best way",
    "Is there a quick way",
    "I'm trying to figure out how",
    "Any idea how",
]
USER_TASKS = [
    "to update my account details",
    "to write a note to my landlord about the heating",
    "to structure a job application email",
    "to complain about a package that never arrived",
    "to draft a message to my bank",
    "to ask my manager for a day off",
    "to cancel a gym membership",
    "to reply to a wedding invitation",
    "to summarize a long meeting",
    "to thank a colleague politely",
]
USER_OPENERS = [
    "",
    "Hi! ",
    "Hello, ",
    "Quick question: ",
    "Hey, ",
    "Good morning. ",
    "Sorry to bother you. ",
    "Me again. ",
    "One more thing. ",
    "Okay, ",
]
USER_TAILS = [
    "",
    " Thanks!",
    " It's a bit urgent.",
    " Keep it short.",
    " I'm not a native speaker.",
    " Something friendly but professional.",
    " I tried already but it sounded rude.",
]
ASSISTANT_OPENERS = [
    "Of course, I'd be happy to help.",
    "Sure.",
    "Good question.",
    "Absolutely.",
    "Here's one way to do it.",
    "No problem.",
]
ASSISTANT_BODIES = [
    "Start with a short greeting and say why you are writing.",
    "Keep the tone polite and get to the point in the first sentence.",
    "Explain the situation briefly, then say what you would like to happen next.",
    "Mention any earlier messages so the reader has the context.",
    "Close by thanking them and saying when you are available.",
    "Avoid long paragraphs; two or three short ones read better.",
    "If you have a reference or case name, put it near the top.",
]
ASSISTANT_CLOSERS = [
    "",
    " Let me know if you want a more formal version.",
    " Want me to shorten it?",
    " I can adapt it if you share more details.",
]


def user_turn(rng: random.Random) -> str:
    return (
        f"{rng.choice(USER_OPENERS)}{rng.choice(USER_ASKS)} {rng.choice(USER_TASKS)}?{rng.choice(USER_TAILS)}"
    )


def assistant_turn(rng: random.Random) -> str:
    body = " ".join(rng.sample(ASSISTANT_BODIES, rng.randint(1, 3)))
    return f"{rng.choice(ASSISTANT_OPENERS)} {body}{rng.choice(ASSISTANT_CLOSERS)}"


# (template, entities): each template plants one or two values, in the user's or the assistant's words.
PII_TEMPLATES = [
    ("My email is {EMAIL_ADDRESS}, please send the invoice there.", "user"),
    ("You can reach me on {PHONE_NUMBER} after 6pm.", "user"),
    ("Call me at {PHONE_NUMBER} or write to {EMAIL_ADDRESS}.", "user"),
    ("The card I used was {CREDIT_CARD}, can you check why it was declined?", "user"),
    ("Please refund to my account, IBAN {IBAN_CODE}.", "user"),
    ("Transfer the deposit to {IBAN_CODE} (account holder: me).", "user"),
    ("Our server at {IP_ADDRESS} keeps dropping connections.", "user"),
    ("My SSN is {US_SSN}, do I need it for the form?", "user"),
    ("For the tax form, my social security number is {US_SSN}.", "user"),
    ("Send the BTC to {CRYPTO} when you can.", "user"),
    (
        "Here's the draft:\n\nDear Sir or Madam,\nplease contact me at {EMAIL_ADDRESS} or {PHONE_NUMBER}.\n"
        "Kind regards",
        "assistant",
    ),
    ("Sure: 'Payment details: card {CREDIT_CARD}, billing phone {PHONE_NUMBER}.'", "assistant"),
    (
        "I noted the address {IP_ADDRESS} from your log; the client at {IP_ADDRESS} is the one failing.",
        "assistant",
    ),
    ("My portfolio is at {URL}, and my mail is {EMAIL_ADDRESS}.", "user"),
    ("ssh admin@{IP_ADDRESS} -p 22 fails with 'connection refused'", "user"),
    ("Ping from {IP_ADDRESS}: 64 bytes, time=12.3 ms", "user"),
    ("{PHONE_NUMBER}", "user"),
    ("Contact: {EMAIL_ADDRESS}", "user"),
]

CLEAN_TEMPLATES = [
    "Upgrade to Python {ver3} and pin numpy=={ver3}; the build {ver3} fixed it.",
    "We released v{ver3} on {date} at {time}; the previous release was {ver4}.",
    "The log says [{date} {time}] ERROR worker-{small} timed out after {small}.{small2}s.",
    "Compute {a} * {b} = {ab}, then add {c}: {abc}.",
    "The mean is {f1}, the standard deviation {f2}, and n = {n}.",
    "Your order #{order} has shipped; ticket {ticket} is closed.",
    "Order number {order} was placed on {date}; tracking ref {tracking}.",
    "Commit {sha} bumped the version from {ver3} to {ver3b}.",
    "Run `docker run -p {port}:{port} app:{ver3}` and open localhost:{port}.",
    "```python\nfor i in range({n}):\n    total += i * {a} % {b}\nprint(total, {f1})\n```",
    "Between {year} and {year2} the population grew from {big} to {big2}.",
    "Timestamp {epoch} corresponds to {iso}.",
    "Set timeout={n}ms, retries={small}, and max_size={big} bytes.",
    "Chapter {small}.{small2}.{small3} covers pages {n}-{n2}.",
    "SELECT * FROM orders WHERE id = {order} AND created_at > '{date}';",
    "The function returned {f1}, {f2} and {ab} for inputs {small}, {small2} and {small3}.",
    "Matrix [[{small}, {small2}], [{small3}, {small}]] has determinant {a}.",
    "Meeting moved to {date2} at {hm}, room {small}{small2}.",
    "Price: ${price}, tax {small}.{small2}%, total ${price2}.",
    "The UUID-free build id is {build}.",
]


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counting from the check digit's left neighbour
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def credit_card(rng: random.Random) -> str:
    kind = rng.choice(["visa", "mc", "mc2", "amex", "discover"])
    if kind == "amex":
        n = luhn_complete(rng.choice(["34", "37"]), 15, rng)
        groups = [n[:4], n[4:10], n[10:]]
    else:
        prefix = {
            "visa": "4",
            "mc": str(rng.randint(51, 55)),
            "mc2": str(rng.randint(2221, 2720)),
            "discover": "6011",
        }[kind]
        n = luhn_complete(prefix, 16, rng)
        groups = [n[i : i + 4] for i in range(0, 16, 4)]
    sep = rng.choice([" ", "-", ""])
    return sep.join(groups)


IBAN_FORMATS = {  # country: BBAN spec as (kind, length) pieces; n = digits, a = upper letters, c = alphanumeric
    "DE": [("n", 18)],
    "GB": [("a", 4), ("n", 14)],
    "FR": [("n", 10), ("c", 11), ("n", 2)],
    "NL": [("a", 4), ("n", 10)],
    "ES": [("n", 20)],
    "IT": [("a", 1), ("n", 10), ("c", 12)],
    "BE": [("n", 12)],
    "CH": [("n", 5), ("c", 12)],
    "AT": [("n", 16)],
    "PL": [("n", 24)],
}


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_FORMATS))
    alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}
    bban = "".join("".join(rng.choice(alphabet[k]) for _ in range(n)) for k, n in IBAN_FORMATS[country])
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(numeric) % 97
    code = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(code[i : i + 4] for i in range(0, len(code), 4))
    return code


PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "CA", "BR", "IL", "ES", "IT", "AU", "JP", "NL"]
# Regions whose national format (no +country code) is planted: those the `pii` policy scans for.
NATIONAL_FORMAT_REGIONS = {"US", "GB", "DE", "FR", "IN", "CA", "BR", "IL"}


def phone(rng: random.Random) -> str:
    import phonenumbers

    while True:
        region = rng.choice(PHONE_REGIONS)
        example = phonenumbers.example_number_for_type(
            region, rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        )
        if example is None:
            continue
        nsn = str(example.national_number)
        # keep the leading digits that select the number type and area, randomize the subscriber part
        keep = max(2, len(nsn) - 6)
        nsn = nsn[:keep] + "".join(rng.choice(string.digits) for _ in range(len(nsn) - keep))
        num = phonenumbers.parse("+" + str(example.country_code) + nsn)
        if not phonenumbers.is_valid_number(num):
            continue
        fmt = rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164])
        if region in NATIONAL_FORMAT_REGIONS and rng.random() < 0.5:
            fmt = phonenumbers.PhoneNumberFormat.NATIONAL
        return phonenumbers.format_number(num, fmt)


def email(rng: random.Random) -> str:
    f, la = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [f"{f}.{la}", f"{f[0]}{la}", f"{f}{rng.randint(1, 99)}", f"{f}_{la}", f"{f}.{la}+shop"]
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def ip_address(rng: random.Random) -> str:
    if rng.random() < 0.25:
        groups = ["2a03", f"{rng.randint(0x2000, 0x2FFF):x}"] + [
            f"{rng.randint(0, 0xFFFF):x}" for _ in range(6)
        ]
        return ":".join(groups)
    while True:
        a = rng.randint(1, 223)
        if a not in (10, 127, 169, 172, 192, 198, 203):  # public, outside the documentation ranges
            return f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def us_ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def bitcoin_address(rng: random.Random) -> str:
    payload = bytes([0]) + bytes(rng.randrange(256) for _ in range(20))
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    raw = payload + check
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


def url(rng: random.Random) -> str:
    host = rng.choice(URL_HOSTS)
    return rng.choice(
        [f"https://{host}/", f"https://{host}/about?id={rng.randint(1, 999)}", f"http://{host}/cv.pdf"]
    )


MAKERS = {
    "EMAIL_ADDRESS": email,
    "PHONE_NUMBER": phone,
    "CREDIT_CARD": credit_card,
    "IBAN_CODE": iban,
    "IP_ADDRESS": ip_address,
    "US_SSN": us_ssn,
    "CRYPTO": bitcoin_address,
    "URL": url,
}


def _fill_pii(template: str, rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    planted = []
    out = template
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        entity = out[start + 1 : end]
        value = MAKERS[entity](rng)
        planted.append((entity, value))
        out = out[:start] + value + out[end + 1 :]
    return out, planted


def _clean_text(template: str, rng: random.Random) -> str:
    r = rng.randint

    def ver3():
        return f"{r(0, 4)}.{r(0, 30)}.{r(0, 20)}"

    values = {
        "ver3": ver3(),
        "ver3b": ver3(),
        "ver4": f"{r(1, 9)}.{r(0, 9)}.{r(0, 9)}-rc{r(1, 5)}",
        "date": f"{r(2015, 2025)}-{r(1, 12):02d}-{r(1, 28):02d}",
        "date2": rng.choice([f"{r(1, 28)} March {r(2019, 2025)}", f"March {r(1, 28)}, {r(2019, 2025)}"]),
        "time": f"{r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}",
        "hm": f"{r(8, 18)}:{rng.choice(['00', '30'])}",
        "small": r(1, 9),
        "small2": r(0, 9),
        "small3": r(0, 9),
        "a": r(12, 999),
        "b": r(12, 999),
        "c": r(1, 99),
        "f1": round(rng.uniform(0, 100), 4),
        "f2": round(rng.uniform(0, 10), 3),
        "n": r(100, 5000),
        "n2": r(5001, 9000),
        "order": r(100000, 99999999),
        "ticket": f"{r(2018, 2025)}-{r(1, 999999):06d}",
        "tracking": f"1Z{r(100, 999)}AA{r(10**9, 10**10 - 1)}",
        "sha": f"{rng.getrandbits(28):07x}",
        "port": rng.choice([3000, 5432, 6379, 8000, 8080, 8443, 9090]),
        "year": r(1950, 1990),
        "year2": r(1991, 2020),
        "big": r(10**5, 10**7),
        "big2": r(10**7, 10**8),
        "epoch": r(1_500_000_000, 1_800_000_000),
        "iso": f"{r(2018, 2026)}-{r(1, 12):02d}-{r(1, 28):02d}T{r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}Z",
        "price": f"{r(1, 2999)}.{r(0, 99):02d}",
        "price2": f"{r(1, 3999)}.{r(0, 99):02d}",
        "build": f"{r(2019, 2025)}{r(1, 12):02d}{r(1, 28):02d}.{r(1, 9)}",
    }
    values["ab"] = values["a"] * values["b"]
    values["abc"] = values["ab"] + values["c"]
    return template.format(**values)


def make_corpus(n: int = 1000, *, seed: int = 0, clean_share: float = 0.5) -> list[dict]:
    """`n` rows: about `clean_share` of them clean look-alike rows, the rest with planted PII."""
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        clean = rng.random() < clean_share
        user = user_turn(rng)
        assistant = assistant_turn(rng)
        if clean:
            text = _clean_text(rng.choice(CLEAN_TEMPLATES), rng)
            role = rng.choice(["user", "assistant"])
            planted = []
        else:
            template, role = rng.choice(PII_TEMPLATES)
            text, found = _fill_pii(template, rng)
            planted = found
        turns = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        if role == "user":
            turns += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": assistant_turn(rng)},
            ]
        else:
            turns += [{"role": "user", "content": user_turn(rng)}, {"role": "assistant", "content": text}]
        rows.append(
            {
                "id": f"{'clean' if clean else 'pii'}-{k:06d}",
                "messages": turns,
                "planted": [
                    {"entity": e, "value": v, "turn": 2 if role == "user" else 3} for e, v in planted
                ],
                "clean": clean,
            }
        )
    return rows


def evaluate(rows: list[dict], findings: list[list[list]]) -> dict:
    """Recall per planted entity type and the false-positive rate on clean rows.

    ``findings[k][j]`` lists ``(entity, start, end, ...)`` tuples for turn j of row k. A planted value counts
    as found when a finding of its type overlaps it; a clean row with any finding is a false positive.
    """
    found, planted, fp_rows, fp_types = {}, {}, 0, {}
    clean = 0
    for row, turns in zip(rows, findings, strict=True):
        if row["clean"]:
            clean += 1
            hits = [f[0] for turn in turns for f in turn]
            fp_rows += bool(hits)
            for e in hits:
                fp_types[e] = fp_types.get(e, 0) + 1
        for p in row["planted"]:
            text = row["messages"][p["turn"]]["content"]
            start = text.find(p["value"])
            end = start + len(p["value"])
            planted[p["entity"]] = planted.get(p["entity"], 0) + 1
            if any(f[0] == p["entity"] and f[1] < end and start < f[2] for f in turns[p["turn"]]):
                found[p["entity"]] = found.get(p["entity"], 0) + 1
    return {
        "recall": {e: round(found.get(e, 0) / n, 4) for e, n in sorted(planted.items())},
        "planted": dict(sorted(planted.items())),
        "clean_rows": clean,
        "false_positive_rows": fp_rows,
        "false_positive_rate": round(fp_rows / clean, 4) if clean else 0.0,
        "false_positives_by_type": dict(sorted(fp_types.items())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="number of rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean-share", type=float, default=0.5, help="share of clean look-alike rows")
    ap.add_argument("-o", "--output", default="-", help="JSONL file (default: stdout)")
    args = ap.parse_args(argv)
    rows = make_corpus(args.n, seed=args.seed, clean_share=args.clean_share)
    out = sys.stdout if args.output == "-" else None
    if out is None:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        out = open(args.output, "w", encoding="utf-8")
    with out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
