"""When the groups of flows on a :class:`simulator.network.Network` finish: the time
to the next finish, found without computing it afresh for every group at every
recomputation, and the groups that may have finished at a timer.

The time is the smallest of each group's lead's bytes left over its rate, computed
exactly as for every group (the same number to the last bit); each group keeps when
its lead would finish as last reckoned (``FlowGroup.finish_at``), and only the groups
whose reckoned finish lies within a margin of the soonest (and those whose rate or lead
changed since) are computed afresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .flows import FlowGroup

# How far a group's reckoned finish (``finish_at``) may be from the one its bytes left
# give now, relative to the times involved: each advance since the reckoning adds at
# most a few units of round-off (2.2e-16) relative to them, so after at most
# ``RECKONED_ADVANCES`` advances (then every finish is reckoned again) the distance is
# below 1e-11, a hundredth of the margin.
FINISH_MARGIN = 1e-9
RECKONED_ADVANCES = 10_000


def reckon(group: FlowGroup, now: float) -> float:
    """Time until the group's lead finishes (its bytes left over its rate, exactly as
    the network computes it), noting when that is and the time before which no member
    can be done (its tolerance and the margin before the finish)."""
    inf = math.inf
    rate = group.rate
    if not rate > 0:
        group.finish_at, group.done_by, group.delay, group.reckoned_now = inf, -inf, inf, now
        return inf
    delay = group.by_left[0].remaining_bytes / rate
    group.delay, group.reckoned_now = delay, now  # (kept for another look at this time)
    finish_at = now + delay
    if finish_at != finish_at:  # NaN: never the soonest, always looked at
        group.finish_at, group.done_by = inf, -inf
        return delay
    group.finish_at = finish_at
    # (Until then the lead has more than the tolerance left and more than the clock
    # resolves: 2 x the margin covers |now| <= |finish_at| at any time 0 <= now.)
    margin = 2 * FINISH_MARGIN * abs(finish_at)
    group.done_by = finish_at - group.tolerance / rate - margin if now >= 0 else -inf
    return delay


def soonest_finish(groups: Iterable[FlowGroup], now: float) -> float:
    """The smallest time until a lead finishes among the groups moving (inf if none),
    the same number as computing it for every group: the groups whose reckoned finish is
    beyond the margin of the soonest cannot hold the minimum, so only the few near it
    (and those not reckoned since their rate or lead changed) are computed afresh; one
    reckoned at this very time keeps its delay (its bytes left move only with the clock)."""
    unreckoned, inf = -math.inf, math.inf
    soonest = inf
    for group in groups:
        finish_at = group.finish_at
        if finish_at == unreckoned:
            reckon(group, now)
            finish_at = group.finish_at
        if finish_at < soonest:
            soonest = finish_at
    if soonest == inf:
        return soonest
    bound = soonest + FINISH_MARGIN * (abs(soonest) + abs(now))
    best = inf
    for group in groups:
        if group.finish_at <= bound:
            delay = group.delay if group.reckoned_now == now else reckon(group, now)
            if delay < best:
                best = delay
    return best
