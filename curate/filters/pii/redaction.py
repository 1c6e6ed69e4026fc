"""Replacing found values: ``<TYPE>`` placeholders, or consistent fakes from the pools in `rules/pii.yaml`.

A keyed hash of the original picks the fake, so the same value gets the same fake in every row and every
run, and the fake cannot be turned back into the value (many originals share each fake).

>>> from curate.filters.pii.policy import Finding, PIIPolicy
>>> red = Redactor(PIIPolicy.load("pii.yaml"))
>>> red.redact("Mail jo@mail.com", [Finding("EMAIL_ADDRESS", 5, 16, 1.0)])  # doctest: +ELLIPSIS
'Mail user...@example.com'
>>> red.fake("IP_ADDRESS", "84.17.223.101") == red.fake("IP_ADDRESS", "84.17.223.101")
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import xxhash

from curate.filters.pii.policy import Finding, PIIPolicy


def _pick(value: str, entity: str, n: int) -> int:
    return xxhash.xxh3_64_intdigest(f"{entity}\0{value}".encode(), seed=0x5EED) % n


def fake_value(spec: dict, entity: str, value: str) -> str:
    """The fake for `value` under one `fakes:` entry of the policy (pool, template or networks)."""
    if "pool" in spec:
        return spec["pool"][_pick(value, entity, len(spec["pool"]))]
    if "template" in spec:
        return spec["template"].format(n=_pick(value, entity, spec["n"]))
    version = 6 if ":" in value else 4
    nets = [n for n in spec["networks"] if n.version == version] or spec["networks"]
    k = _pick(value, entity, 1 << 16)
    net = nets[k % len(nets)]
    # a host inside the (documentation) network: never its network or broadcast address
    return str(ipaddress.ip_address(int(net.network_address) + 1 + k % max(1, net.num_addresses - 2)))


class Redactor:
    """presidio-anonymizer with one operator per `redact` entity type, from the policy."""

    def __init__(self, policy: PIIPolicy):
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        self.policy = policy
        self.engine = AnonymizerEngine()
        self.operators = {}
        for entity, rule in policy.entities.items():
            if rule.action != "redact":
                continue
            if rule.redact_with == "fake":
                self.operators[entity] = OperatorConfig(
                    "custom", {"lambda": lambda v, e=entity: self.fake(e, v)}
                )
            else:
                self.operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})

    def fake(self, entity: str, value: str) -> str:
        return fake_value(self.policy.fakes[entity], entity, value)

    def redact(self, text: str, findings: Iterable[Finding]) -> str:
        from presidio_anonymizer.entities import RecognizerResult

        results = [
            RecognizerResult(f.entity, f.start, f.end, f.score)
            for f in findings
            if f.entity in self.operators
        ]
        if not results:
            return text
        return self.engine.anonymize(text, results, self.operators).text
