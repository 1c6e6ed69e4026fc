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
    ("Please ship it to {STREET_ADDRESS}, I'm home after 5.", "user"),
    ("My new address is {STREET_ADDRESS}. Can you update the delivery details?", "user"),
    (
        "Sure, here's the letter:\n\n{STREET_ADDRESS}\n\nDear landlord, the heating is broken again.",
        "assistant",
    ),
    ("I'm {PERSON}, you can call me on {PHONE_NUMBER}.", "user"),
    ("Please forward this to {PERSON} ({EMAIL_ADDRESS}) before Friday.", "user"),
    ("Best regards,\n{PERSON}\n{PHONE_NUMBER}\n{EMAIL_ADDRESS}", "assistant"),
    ("The tenant, {PERSON}, lives at {STREET_ADDRESS}.", "user"),
    ("Here's the signature block: {PERSON} | Sales | {PHONE_NUMBER}", "assistant"),
    ("my ip is {IP_ADDRESS} and it says access denied", "user"),
    ("Wire it to {PERSON}, IBAN {IBAN_CODE}.", "user"),
    ("Mobile: {PHONE_NUMBER} / Office: {PHONE_NUMBER}", "user"),
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
        text = phonenumbers.format_number(num, fmt)
        style = rng.random()
        if style < 0.15 and fmt == phonenumbers.PhoneNumberFormat.INTERNATIONAL:
            text = "00" + text[1:]  # 0044 20 7946 0958
        elif style < 0.3 and region in ("US", "CA"):
            nsn = str(num.national_number)
            text = rng.choice(
                [
                    f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}",
                    f"+1 ({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
                    f"1-{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}",
                ]
            )
        return text


def email(rng: random.Random) -> str:
    f, la = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [f"{f}.{la}", f"{f[0]}{la}", f"{f}{rng.randint(1, 99)}", f"{f}_{la}", f"{f}.{la}+shop"]
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def ip_address(rng: random.Random) -> str:
    if rng.random() < 0.3:
        groups = [
            rng.choice(["2a03", "2a02", "2600", "2001", "2604", "2c0f"]),
            f"{rng.randint(0x1000, 0xFFFF):x}",
        ] + [f"{rng.randint(0, 0xFFFF):x}" for _ in range(6)]
        if groups[0] == "2001" and groups[1] == "db8":
            groups[1] = "db9"
        if rng.random() < 0.4:  # compressed: a run of zero groups written ::
            return ":".join(groups[:3]) + "::" + ":".join(groups[-2:])
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


PERSON_FIRST = [
    "James",
    "Maria",
    "Wei",
    "Fatima",
    "Lukas",
    "Chloe",
    "Arjun",
    "Sofia",
    "Kenji",
    "Amara",
    "Oliver",
    "Ines",
    "Dmitri",
    "Aisha",
    "Mateo",
    "Hannah",
    "Tomasz",
    "Priya",
    "Sean",
    "Yuki",
]
PERSON_LAST = [
    "Whitfield",
    "Okonkwo",
    "Lindqvist",
    "Castellanos",
    "Brennan",
    "Nakamura",
    "Petrovic",
    "Harrington",
    "Delacroix",
    "Oyelaran",
    "Kowalczyk",
    "Fairbanks",
    "Rahimi",
    "Ostrowski",
]


def person(rng: random.Random) -> str:
    first, last = rng.choice(PERSON_FIRST), rng.choice(PERSON_LAST)
    return rng.choice(
        [f"{first} {last}", f"{first} {last}", f"{first} {rng.choice('ABCDEFGHJKLMNPRST')}. {last}"]
    )


US_STREETS = ["Maple", "Oak", "Cedar", "Willow Creek", "Sunset", "Lakeview", "Hawthorne", "Pine Ridge", "Elm"]
US_TYPES = ["Street", "St.", "Avenue", "Ave", "Road", "Lane", "Drive", "Court", "Boulevard", "Way"]
US_CITIES = [
    ("Springfield", "IL"),
    ("Portland", "OR"),
    ("Austin", "TX"),
    ("Columbus", "OH"),
    ("Madison", "WI"),
]
UK_STREETS = [
    ("Kingsley", "Road"),
    ("Station", "Road"),
    ("Church", "Lane"),
    ("Victoria", "Crescent"),
    ("Mill", "Close"),
    ("Ashford", "Gardens"),
]
UK_TOWNS = [("Leeds", "LS6 2QT"), ("Bristol", "BS8 1TH"), ("Norwich", "NR2 4AB"), ("York", "YO1 7HH")]
DE_STREETS = ["Lindenstraße", "Hauptstraße", "Bahnhofstr.", "Am Rosenweg", "Schillerplatz", "Gartenweg"]
DE_TOWNS = [("10115", "Berlin"), ("80331", "München"), ("50667", "Köln"), ("69117", "Heidelberg")]
FR_STREETS = [
    "rue de la République",
    "avenue Victor Hugo",
    "boulevard Voltaire",
    "rue des Lilas",
    "place du Marché",
]
FR_TOWNS = [("69002", "Lyon"), ("75011", "Paris"), ("33000", "Bordeaux"), ("44000", "Nantes")]


def street_address(rng: random.Random) -> str:
    kind = rng.choice(["us", "us", "uk", "de", "fr", "es"])
    n = rng.randint(2, 9800)
    if kind == "us":
        city, state = rng.choice(US_CITIES)
        street = f"{n} {rng.choice(US_STREETS)} {rng.choice(US_TYPES)}"
        if rng.random() < 0.3:
            street += f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"
        return f"{street}, {city}, {state} {rng.randint(10000, 99999)}" if rng.random() < 0.7 else street
    if kind == "uk":
        name, typ = rng.choice(UK_STREETS)
        town, code = rng.choice(UK_TOWNS)
        return f"{rng.randint(1, 240)} {name} {typ}, {town} {code}"
    if kind == "de":
        street = rng.choice(DE_STREETS)
        plz, town = rng.choice(DE_TOWNS)
        return f"{street} {rng.randint(1, 180)}{rng.choice(['', 'a', 'b'])}, {plz} {town}"
    if kind == "fr":
        plz, town = rng.choice(FR_TOWNS)
        return f"{rng.randint(1, 120)} {rng.choice(FR_STREETS)}, {plz} {town}"
    return (
        f"Calle {rng.choice(['Mayor', 'de Alcalá', 'Serrano', 'del Carmen'])} {rng.randint(1, 200)}, Madrid"
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
    "STREET_ADDRESS": street_address,
    "PERSON": person,
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


MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

# Sentences full of numbers, as chat answers write them: arithmetic, statistics, schedules, versions,
# measurements, scores, references. Each is a function of a seeded random source.
NUMBER_SENTENCES = [
    lambda r, a, b: f"If {a} students share {a * b} pencils, each gets {a * b} / {a} = {b}.",
    lambda r, a, b: (
        f"Step 1: {a * 7} - {b} = {a * 7 - b}. Step 2: ({a * 7 - b}) / 4 = {(a * 7 - b) / 4:.2f}."
    ),
    lambda r, a, b: (
        f"The total is {a} + {b} + {a + b} = {2 * (a + b)}, so the average is {2 * (a + b)} / 3 = "
        f"{2 * (a + b) / 3:.1f}."
    ),
    lambda r, a, b: f"Between {1900 + a % 100} and {1950 + b % 70} the town grew by {r.uniform(1, 90):.1f}%.",
    lambda r, a, b: (
        f"Flight LH{r.randint(100, 9999)} leaves at {r.randint(5, 22):02d}:{r.choice(['05', '40'])} "
        f"on {r.randint(1, 28)} {r.choice(MONTHS)} {r.randint(2019, 2026)} and lands at "
        f"{r.randint(6, 23):02d}:{r.randint(0, 59):02d} local time."
    ),
    lambda r, a, b: (
        f"Firmware {a % 9}.{b % 20}.{a % 13} (build {r.randint(10000, 99999)}) fixes issue "
        f"#{r.randint(100, 99999)}."
    ),
    lambda r, a, b: f"The match ended {a % 7}-{b % 6} in front of {r.randint(8000, 99000):,} fans.",
    lambda r, a, b: (
        f"The lecture runs {r.randint(8, 16)}:00-{r.randint(17, 20)}:00 on "
        f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(2020, 2026)} in room {r.randint(100, 999)}."
    ),
    lambda r, a, b: (
        f"The GPS fix was {r.uniform(-60, 70):.5f}, {r.uniform(-170, 170):.5f} at {r.randint(2, 3900)} m."
    ),
    lambda r, a, b: f"The panel measures {a * 3} × {b * 2} mm and weighs {r.randint(120, 9000)} g.",
    lambda r, a, b: (
        f"It costs ${r.randint(1000, 999999):,}.{r.randint(0, 99):02d} including {r.choice([5, 7, 19, 20])}% VAT."
    ),
    lambda r, a, b: (
        f"n = {r.randint(30, 5000)}, mean {r.uniform(0, 200):.3f}, SD {r.uniform(0, 30):.3f}, "
        f"95% CI [{r.uniform(0, 50):.2f}, {r.uniform(50, 100):.2f}], p = {r.uniform(0, 0.05):.4f}."
    ),
    lambda r, a, b: f"Compute {a * 37} × {b * 13} = {a * 37 * b * 13}.",
    lambda r, a, b: f"In {r.randint(1990, 2024)}, {r.randint(100000, 99999999):,} tonnes were exported.",
    lambda r, a, b: (
        f"Read chapter {a % 30 + 1}, verses {b % 20 + 1}-{b % 20 + 9}, and pages {a * 3}-{a * 3 + 24}."
    ),
    lambda r, a, b: (
        f"Training ran {r.randint(3, 300)} epochs at lr {r.choice(['3e-4', '1e-5', '0.001'])} "
        f"with batch size {r.choice([16, 32, 64, 256])}; loss fell from {r.uniform(1, 5):.4f} to "
        f"{r.uniform(0, 1):.4f} after {r.randint(10000, 999999)} steps."
    ),
    lambda r, a, b: (
        f"Dates in the log: {r.randint(1, 28)}.{r.randint(1, 12)}.{r.randint(2000, 2026)}, "
        f"{r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(2000, 2026)} and "
        f"{r.randint(2000, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}."
    ),
    lambda r, a, b: f"The sequence {a}, {a + b}, {a + 2 * b}, {a + 3 * b} is arithmetic with difference {b}.",
    lambda r, a, b: f"{a}/{b} of {a * b * 4} is {a * a * 4}.",
    lambda r, a, b: "Pi to 30 digits is 3.141592653589793238462643383279, and e is about 2.718281828459045.",
    lambda r, a, b: (
        f"Position: N {r.randint(0, 89)}° {r.randint(0, 59)}′ {r.randint(0, 59)}″, "
        f"W {r.randint(0, 179)}° {r.randint(0, 59)}′ {r.randint(0, 59)}″."
    ),
    lambda r, a, b: (
        f"Screen resolution {r.choice(['1920x1080', '2560x1440', '3840x2160'])} at "
        f"{r.choice([60, 120, 144])} Hz; the file is {r.randint(1000000, 99999999)} bytes."
    ),
    lambda r, a, b: (
        f"Result of the query: {r.randint(1000, 9999999)} rows in {r.uniform(0, 30):.3f} s "
        f"(id range {r.randint(1, 99999)}-{r.randint(100000, 9999999)})."
    ),
    lambda r, a, b: (
        f"The invoice {r.randint(2019, 2025)}-{r.randint(1000, 99999)} totals "
        f"{r.randint(100, 99999)},{r.randint(0, 99):02d} EUR, due {r.randint(1, 28)} {r.choice(MONTHS)}."
    ),
    lambda r, a, b: (
        f"Timezone UTC+{r.choice(['05:30', '09:00', '01:00'])}; epoch {r.randint(1500000000, 1800000000)}."
    ),
    lambda r, a, b: (
        f"Kick-off {r.randint(12, 20)}:{r.choice(['00', '30', '45'])}, final score "
        f"{r.randint(60, 130)}-{r.randint(60, 130)} after overtime."
    ),
    lambda r, a, b: (
        f"The population went from {r.randint(1, 9)} {r.randint(100, 999)} {r.randint(100, 999)} "
        f"to {r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}."
    ),
    lambda r, a, b: (
        f"Scale 1:{r.choice([25000, 50000, 100000])}; grid reference {r.randint(100000, 999999)} "
        f"{r.randint(100000, 999999)}."
    ),
    lambda r, a, b: f"{a} × {b} = {a * b}, {a * b} ÷ {b} = {a}, and {a}² = {a * a}.",
    lambda r, a, b: (
        f"Weights: {r.uniform(0, 1):.6f}, {r.uniform(0, 1):.6f}, {r.uniform(0, 1):.6f}; "
        f"seed {r.randint(0, 2**31)}."
    ),
]


def clean_rows(n_generated: int = 220, *, seed: int = 1) -> list[dict]:
    """Clean rows: the hand-written texts of `pii_clean_texts.py`, then `n_generated` rows of number-heavy
    sentences. Each row has ``clean: True``, ``planted: []`` and a ``domain``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pii_clean_texts import TEXTS

    rows = []
    for k, (domain, user, assistant) in enumerate(TEXTS):
        rows.append(_clean_row(f"clean-text-{k:04d}", domain, user, assistant))
    rng = random.Random(seed)
    for k in range(n_generated):
        parts = [
            rng.choice(NUMBER_SENTENCES)(rng, rng.randint(12, 999), rng.randint(2, 99)) for _ in range(2)
        ]
        rows.append(_clean_row(f"clean-numbers-{k:04d}", "numbers", user_turn(rng), " ".join(parts)))
    return rows


def _clean_row(rid: str, domain: str, user: str, assistant: str) -> dict:
    msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"id": rid, "messages": msgs, "planted": [], "clean": True, "domain": domain}


def evaluate(rows: list[dict], findings: list[list[list]]) -> dict:
    """Recall per planted entity type, precision, and the false-positive rate on clean rows.

    ``findings[k][j]`` lists ``(entity, start, end, ...)`` tuples for turn j of row k. A planted value counts
    as found when a finding of its type overlaps it; a finding is true when it overlaps a planted value of
    its type, false otherwise (anywhere: in clean rows and in the ordinary turns of planted rows); a clean
    row with any finding is a false-positive row.
    """
    found, planted, fp_rows, fp_types = {}, {}, 0, {}
    clean = true_findings = all_findings = 0
    for row, turns in zip(rows, findings, strict=True):
        spans = []  # (turn, entity, start, end) of the planted values
        for p in row["planted"]:
            text = row["messages"][p["turn"]]["content"]
            start = text.find(p["value"])
            spans.append((p["turn"], p["entity"], start, start + len(p["value"])))
        if row["clean"]:
            clean += 1
            hits = [f[0] for turn in turns for f in turn]
            fp_rows += bool(hits)
            for e in hits:
                fp_types[e] = fp_types.get(e, 0) + 1
        for j, turn in enumerate(turns):
            for f in turn:
                all_findings += 1
                true_findings += any(
                    t == j and e == f[0] and f[1] < end and start < f[2] for t, e, start, end in spans
                )
        for t, e, start, end in spans:
            planted[e] = planted.get(e, 0) + 1
            if any(f[0] == e and f[1] < end and start < f[2] for f in turns[t]):
                found[e] = found.get(e, 0) + 1
    return {
        "recall": {e: round(found.get(e, 0) / n, 4) for e, n in sorted(planted.items())},
        "planted": dict(sorted(planted.items())),
        "findings": all_findings,
        "precision": round(true_findings / all_findings, 4) if all_findings else 1.0,
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
    ap.add_argument("--clean-text", action="store_true", help="the clean prose corpus instead (clean_rows)")
    ap.add_argument("-o", "--output", default="-", help="JSONL file (default: stdout)")
    args = ap.parse_args(argv)
    if args.clean_text:
        rows = clean_rows(seed=args.seed)
    else:
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
