"""What a relay costs: pure arithmetic for the relay-cost calculator (no plotting here).

When two peers cannot reach each other directly, a relay (TURN, DERP) carries their traffic:
every byte goes *in* to the server and *out* again. 1000 users each streaming 2 Mbit/s through
one server means 1000 x 2 Mbit/s = 2 Gbit/s in and 2 Gbit/s out, around the clock.

>>> c = relay_cost(1000, 2.0)
>>> c.in_mbps, c.out_mbps
(2000.0, 2000.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigurationError

SECONDS_PER_HOUR = 3600.0


def mbps_to_gb(mbps: float, seconds: float) -> float:
    """Gigabytes (10**9 bytes, as clouds bill) moved by ``mbps`` megabits per second for ``seconds``."""
    return mbps * 1e6 / 8 * seconds / 1e9


@dataclass(frozen=True)
class RelayCost:
    """The bandwidth and monthly bill of relaying ``users`` streams of ``bitrate_mbps`` each."""

    users: int
    bitrate_mbps: float
    relayed_fraction: float
    price_per_gb: float
    hours_per_day: float
    days: float
    charge_ingress: bool
    in_mbps: float
    out_mbps: float
    in_gb: float
    out_gb: float

    @property
    def relayed_users(self) -> float:
        return self.users * self.relayed_fraction

    @property
    def billable_gb(self) -> float:
        """Gigabytes the provider bills: egress only (the usual cloud rule) unless ``charge_ingress``."""
        return self.out_gb + (self.in_gb if self.charge_ingress else 0.0)

    @property
    def monthly_cost(self) -> float:
        """The bill for the period, in the currency of ``price_per_gb``."""
        return self.billable_gb * self.price_per_gb

    def as_dict(self) -> dict:
        return {"users": self.users, "bitrate_mbps": self.bitrate_mbps, "relayed_fraction": self.relayed_fraction,
                "in_mbps": self.in_mbps, "out_mbps": self.out_mbps, "in_gb": self.in_gb, "out_gb": self.out_gb,
                "billable_gb": self.billable_gb, "price_per_gb": self.price_per_gb, "monthly_cost": self.monthly_cost}

    def describe(self) -> str:
        """Two lines in words."""
        who = (f"{self.users} users" if self.relayed_fraction == 1 else
               f"{self.relayed_users:g} of {self.users} users ({self.relayed_fraction:.0%})")
        return (f"{who} x {self.bitrate_mbps:g} Mbit/s through the relay: {_rate(self.in_mbps)} in and "
                f"{_rate(self.out_mbps)} out.\n"
                f"Over {self.days:g} days at {self.hours_per_day:g} h/day: {self.out_gb:,.0f} GB out"
                + (f" + {self.in_gb:,.0f} GB in" if self.charge_ingress else "")
                + f" x ${self.price_per_gb:g}/GB = ${self.monthly_cost:,.0f} per month.")

    def __str__(self) -> str:
        return self.describe()


def _rate(mbps: float) -> str:
    return f"{mbps / 1000:g} Gbit/s" if mbps >= 1000 else f"{mbps:g} Mbit/s"


def relay_cost(users: int, bitrate_mbps: float = 2.0, price_per_gb: float = 0.05, relayed_fraction: float = 1.0,
               hours_per_day: float = 24.0, days: float = 30.0, charge_ingress: bool = False) -> RelayCost:
    """Server bandwidth in and out, and the bill, for ``users`` streams through a relay.

    ``relayed_fraction`` is the share of users whose hole punching failed (1.0 = everyone is
    relayed); ``price_per_gb`` is the egress price (check your provider).
    """
    for value, what in ((users, "users"), (bitrate_mbps, "bitrate_mbps"), (price_per_gb, "price_per_gb"),
                        (hours_per_day, "hours_per_day"), (days, "days")):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ConfigurationError(f"{what} must be a number >= 0, e.g. relay_cost(1000, 2.0); got {value!r}")
    if not 0 <= relayed_fraction <= 1:
        raise ConfigurationError(f"relayed_fraction is a share of users, 0 to 1 (e.g. 0.1 for 10 %); got {relayed_fraction!r}")
    if hours_per_day > 24:
        raise ConfigurationError(f"hours_per_day cannot exceed 24; got {hours_per_day!r}")
    rate = users * relayed_fraction * bitrate_mbps
    seconds = hours_per_day * SECONDS_PER_HOUR * days
    gb = mbps_to_gb(rate, seconds)
    return RelayCost(users, float(bitrate_mbps), float(relayed_fraction), float(price_per_gb), float(hours_per_day),
                     float(days), charge_ingress, float(rate), float(rate), gb, gb)
