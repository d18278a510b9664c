"""What a draft of several instructions (a taper) takes at a new dose, read step by step: a dose
change's dispensed count (``rules.product_swap.recount``). Counted at its highest step, as the
facts judge a taper (clinical specification §1), 40 tablets of two three times a day for 5 days
then one a day for 10 became 20 one-tablet doses, where the taper at one a dose takes 25.

The steps are placed in time as the duration update cuts them (``rules.duration_update``): dated
steps, none of several in a ``sequence`` (one instruction's is ignored), by their dates (those on
the same dates run together), the others one group after another (``facts.dose.running_groups``), a
step of unknown length taking what is left.
"""

from __future__ import annotations

import itertools
import math
from datetime import date
from typing import Any

from cds_service.facts.dose import dosages_of, dose_of_step, running_groups
from cds_service.facts.model import Order
from cds_service.facts.sig import step_days
from cds_service.facts.together import dated_days, own_last_days, week_share

# (first day, day after the last) of an instruction, from the taper's start; inf: no end said.
_Span = tuple[float, float]
# (from, to, the draft's units a day, the new units a day) over a part of the taper.
_Segment = tuple[float, float, float, float]


def taper_units(order: Order, rates: list[float | None], supply: float | None, ordered: float | None) -> float | None:
    """Units ``order``'s instructions take at ``rates`` a day each (one unit a dose; 0: left out)
    over the days of its fill: its ``supply`` where stated, else the days its count (``ordered``)
    lasted at its own doses; each step for its own days, and never past the taper's end (a count
    for more than the taper takes is not dispensed again, as a supply longer than it is not).
    None where that cannot be read (a step's rate unknown, or the draft's own dose where its count
    must be read): the caller counts as before, at the highest step."""
    steps = dosages_of(order.r4)
    if len(steps) != len(rates) or len(order.step_per_day) != len(steps) or any(r is None for r in rates):
        return None
    shares = [week_share(step) for step in steps]  # on the days of the week listed, a week's over seven
    own = [
        _daily(dose_of_step(step, order.drug)[1], rate) * share
        for step, rate, share in zip(steps, order.step_per_day, shares, strict=True)
    ]
    segments = _segments(_spans(steps), own, [float(r or 0) * share for r, share in zip(rates, shares, strict=True)])
    days = supply if supply is not None else _lasted(segments, ordered)
    if days is None:
        return None
    taken = sum((min(end, days) - start) * new for start, end, _, new in segments if start < days)
    return taken if math.isfinite(taken) and taken > 0 else None


def _daily(units: float | None, rate: float | None) -> float:
    """The draft's units a day of one instruction; NaN where its dose or rate is not read."""
    return units * rate if units is not None and rate is not None else math.nan


def _spans(steps: list[dict[str, Any]]) -> list[_Span]:
    """When each instruction runs: by its dates where every one dates its start and none of several
    is in a sequence (one instruction's is ignored: ``facts.together.dated_days``), each to its own
    last day (``own_last_days``), else group after group in the order they run, an instruction of
    unknown length for its group's length (its longest known), a group of none for the rest of the
    taper."""
    dated = dated_days(steps)
    if dated is not None:  # each to its own last day: a day two steps share is the later one's
        first = min(start for start, _ in dated)
        return [
            (float((start - first).days), float((last - first).days + 1) if last < date.max else math.inf)
            for (start, _), last in zip(dated, own_last_days(dated), strict=True)
        ]
    spans: list[_Span] = [(0.0, math.inf)] * len(steps)
    at = 0.0
    for group in running_groups(steps):
        lengths = {index: _length(steps[index]) for index in group}
        known = [length for length in lengths.values() if length is not None]
        longest = max(known) if known else math.inf
        for index, length in lengths.items():
            spans[index] = (at, at + (longest if length is None else length))
        at += longest
    return spans


def _length(step: dict[str, Any]) -> float | None:
    """A step's days; 0 says nothing (EHRs send 0 for a blank, as the facts read a duration)."""
    return step_days(step) or None


def _segments(spans: list[_Span], own: list[float], new: list[float]) -> list[_Segment]:
    """The taper in parts over which the same instructions run, each with what they take a day
    (NaN where one running is not read), parts when none runs left out. Swept once through the
    instructions' starts and ends: a draft may carry thousands of instructions."""
    changes: dict[float, list[float]] = {}  # at a day: the change in (running, unread, own, new)
    for (first, last), mine, theirs in zip(spans, own, new, strict=True):
        unread = math.isnan(mine)
        for day, sign in ((first, 1), (last, -1)):
            if day < math.inf:
                change = changes.setdefault(day, [0.0, 0.0, 0.0, 0.0])
                change[0] += sign
                change[1] += sign * unread
                change[2] += 0.0 if unread else sign * mine
                change[3] += sign * theirs
    running = [0.0, 0.0, 0.0, 0.0]
    segments = []
    for start, end in itertools.pairwise([*sorted(changes), math.inf]):
        running = [total + change for total, change in zip(running, changes[start], strict=True)]
        if running[0] > 0:
            segments.append((start, end, math.nan if running[1] > 0 else running[2], running[3]))
    return segments


def _lasted(segments: list[_Segment], ordered: float | None) -> float | None:
    """The days the draft's count lasts, taken step by step at its own doses; the whole taper where
    it lasts longer. None where a step it reaches takes an amount not read."""
    if ordered is None or ordered <= 0:
        return None
    left = ordered
    for start, end, own, _ in segments:
        if math.isnan(own):
            return None
        if own > 0 and own * (end - start) >= left:
            return start + left / own
        left -= own * (end - start) if own > 0 else 0.0
    return segments[-1][1] if segments else None
