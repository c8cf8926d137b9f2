"""SMS length rules: GSM-7 and UCS-2 encodings and how many segments a text costs.

GSM 03.38: 160 septets in a single message, 153 per part once concatenated (the rest is the UDH).
The extension characters (``€ [ ] { } ^ ~ | \\`` and form feed) take an escape septet plus their own,
so they count 2. One character outside the GSM alphabet turns the whole text into UCS-2: 70 UTF-16
code units single, 67 per part; characters outside the BMP (most emoji) take two code units. A
character is never split across two parts (handsets cannot reassemble half an escape or half a
surrogate pair), so a part can carry one unit less than its maximum.
"""

from __future__ import annotations

import dataclasses
import re

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclasses.dataclass(frozen=True)
class SmsCount:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # what a person counts
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of one part at this length (160/153 or 70/67)
    non_gsm: tuple[str, ...] = ()  # the characters that forced UCS-2, first few

    @property
    def remaining(self) -> int:
        """Units left before the next segment starts (0 when exactly full)."""
        if self.segments <= 1:
            return self.per_segment - self.units
        return self.segments * self.per_segment - self.units


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _unit_sizes(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def _pack(sizes: list[int], capacity: int) -> int:
    """Number of parts when characters of ``sizes`` are packed greedily, none split."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            parts += 1
            used = 0
        used += size
    return parts


def sms_count(text: str) -> SmsCount:
    """Encoding, length and segment count of ``text`` as a carrier bills it."""
    gsm = is_gsm7(text)
    sizes = _unit_sizes(text, gsm)
    units = sum(sizes)
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments = _pack(sizes, part)
    non_gsm: tuple[str, ...] = ()
    if not gsm:
        seen: list[str] = []
        for char in text:
            if char not in GSM7_BASIC and char not in GSM7_EXTENSION and char not in seen:
                seen.append(char)
                if len(seen) == 5:
                    break
        non_gsm = tuple(seen)
    return SmsCount(
        encoding="GSM-7" if gsm else "UCS-2",
        characters=len(text),
        units=units,
        segments=segments,
        per_segment=single if segments <= 1 else part,
        non_gsm=non_gsm,
    )


OPT_OUT = re.compile(r"reply\s+stop\s+to\s+(opt\s*out|unsubscribe)", re.I)


def sms_marketing_problems(text: str, *, brand: str) -> list[str]:
    """What a marketing text lacks: the brand's name and the opt-out instructions (checked on each rendered text)."""
    problems = []
    if brand.lower() not in text.lower():
        problems.append(f"A marketing text must name the brand ({brand}).")
    if not OPT_OUT.search(text):
        problems.append('A marketing text must say "Reply STOP to opt out".')
    return problems
