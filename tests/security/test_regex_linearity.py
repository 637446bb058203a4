"""Every regular expression in the product runs in time linear in its input.

Python's ``re`` backtracks: a pattern such as ``<[^>]*>`` or ``a.*?b`` rescans to the end of
the text from every place it could start, so text a stranger wrote (a feed, a mail's subject,
an uploaded CSV) can stall a worker for minutes. This test finds every compiled pattern in the
product's modules, builds adversarial inputs from the pattern itself (strings it would match,
cut short and repeated; runs of each character class it repeats), and measures how the time to
scan them grows from 10 KB to 100 KB: about 10x when linear, about 100x when quadratic.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from re import _constants as c
from re import _parser

import pytest

from tests.growth import LARGE, MAX_GROWTH, SMALL, growth, repeated

PACKAGES = ("services", "shared", "sistercities")
WITNESSES = 6


def product_patterns() -> dict[str, re.Pattern]:
    found: dict[int, tuple[str, re.Pattern]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for module_info in pkgutil.walk_packages(package.__path__, package_name + "."):
            if ".migrations" in module_info.name or module_info.name.endswith("__main__"):
                continue
            module = importlib.import_module(module_info.name)
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern):  # the first module to hold it named it
                    found.setdefault(id(value), (f"{module_info.name}.{name}", value))
    return dict(found.values())


def _class_members(items) -> list[str]:
    """A few characters a character class accepts, one of each kind it lists."""
    members: list[str] = []
    negated = False
    for op, arg in items:
        if op is c.NEGATE:
            negated = True
        elif op is c.LITERAL:
            members.append(chr(arg))
        elif op is c.RANGE:
            members.append(chr(arg[0]))
        elif op is c.CATEGORY:
            members.append({c.CATEGORY_DIGIT: "7", c.CATEGORY_SPACE: " ", c.CATEGORY_WORD: "w",
                            c.CATEGORY_NOT_DIGIT: "x", c.CATEGORY_NOT_SPACE: "x",
                            c.CATEGORY_NOT_WORD: " "}.get(arg, "x"))  # fmt: skip
    if negated:
        refused = set(members)
        return [char for char in "ax =\"'-<>/.(" if char not in refused][:3]
    return members[:3] or ["x"]


def _variants(parsed, choice: int) -> str:
    """One string the pattern would match; ``choice`` picks among branches and class members,
    so different calls walk different paths."""
    out: list[str] = []
    for op, arg in parsed:
        if op is c.LITERAL:
            out.append(chr(arg))
        elif op is c.NOT_LITERAL:
            out.append("a" if chr(arg) != "a" else "b")
        elif op is c.ANY:
            out.append("a")
        elif op is c.IN:
            members = _class_members(arg)
            out.append(members[choice % len(members)])
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, body = arg
            times = max(low, 1) if high else 0
            if times == 1 and high != 1:
                # A repeat of a class: one of each kind of character it takes.
                out.append("".join(_variants(body, choice + n) for n in range(3)))
            else:
                out.append("".join(_variants(body, choice) for _ in range(times)))
        elif op is c.SUBPATTERN:
            out.append(_variants(arg[-1], choice))
        elif op is c.BRANCH:
            branches = arg[1]
            out.append(_variants(branches[choice % len(branches)], choice))
        elif op in (c.ATOMIC_GROUP,):
            out.append(_variants(arg, choice))
        elif op is c.GROUPREF_EXISTS:
            out.append(_variants(arg[1], choice))
        # AT (anchors), ASSERT, ASSERT_NOT, GROUPREF: nothing of their own to add.
    return "".join(out)


def adversarial_units(pattern: re.Pattern) -> Iterator[str]:
    """Short strings whose repetition is the worst case for a backtracking matcher: a match
    cut short at each place (the part that starts a match, without what ends it), and the
    whole match (a lazy search for something that never comes)."""
    source = pattern.pattern
    text = source.decode("latin-1") if isinstance(source, bytes) else source
    parsed = _parser.parse(
        text, pattern.flags & ~re.UNICODE if isinstance(source, bytes) else pattern.flags
    )
    seen: set[str] = set()
    for choice in range(WITNESSES):
        witness = _variants(parsed, choice)
        for cut in range(1, len(witness) + 1):
            for unit in (witness[:cut], witness[cut - 1]):
                if unit and unit not in seen:
                    seen.add(unit)
                    yield unit


def scan(pattern: re.Pattern) -> Callable:
    def consume(text) -> None:
        for _match in pattern.finditer(text):
            pass

    return consume


def sized(pattern: re.Pattern, unit: str, size: int):
    text = repeated(unit, size)
    return text.encode("latin-1", "replace") if isinstance(pattern.pattern, bytes) else text


PATTERNS = product_patterns()


def test_the_product_patterns_are_found():
    # The ones named in the security review, so a change in how they are found is noticed.
    assert {"services.blog.sanitizer._IMG", "services.blog.parser._LINK_TAG",
            "services.notifier.mailbox._NOT_IN_A_TOKEN"} <= PATTERNS.keys()  # fmt: skip
    assert len(PATTERNS) >= 25


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_a_pattern_takes_linear_time_on_adversarial_input(name):
    pattern = PATTERNS[name]
    for unit in adversarial_units(pattern):
        ratio = growth(scan(pattern), sized(pattern, unit, SMALL), sized(pattern, unit, LARGE))
        assert ratio < MAX_GROWTH, (
            f"{name} grows {ratio:.0f}x from {SMALL:,} to {LARGE:,} characters of {unit!r}"
        )
