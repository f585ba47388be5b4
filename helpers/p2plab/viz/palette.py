"""The course's colours: the Okabe-Ito palette, which stays distinguishable with colour-blindness.

Colour never carries meaning alone: every figure also uses line dashes, marker symbols or text
labels, so a greyscale print or a screen reader still tells the categories apart.
"""

from __future__ import annotations

# Okabe & Ito (2008), "Color Universal Design"
BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
BLUISH_GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
REDDISH_PURPLE = "#CC79A7"
GREY = "#999999"

OKABE_ITO = [BLACK, ORANGE, SKY_BLUE, BLUISH_GREEN, YELLOW, BLUE, VERMILLION, REDDISH_PURPLE]

# one colour and one dash per protocol in ladders and legends
PROTOCOL_COLORS = {
    "STUN": BLUE,
    "TURN": REDDISH_PURPLE,
    "P2P": BLUISH_GREEN,
    "UDP": ORANGE,
    "TCP": SKY_BLUE,
}
PROTOCOL_DASH = {"STUN": "dot", "TURN": "dash", "P2P": "solid", "UDP": "dashdot", "TCP": "longdash"}

DROP_COLOR = VERMILLION
NAT_COLOR = BLACK
HIGHLIGHT_COLOR = YELLOW

STATUS_COLORS = {  # NAT table rows, ICE pairs
    "new": "#CCE7F4",  # light sky blue
    "expired": "#F6D6C2",  # light vermillion
    "changed": "#FBF3B5",  # light yellow
    "kept": "#FFFFFF",
    "succeeded": "#BFE6DA",  # light bluish green
    "failed": "#F6D6C2",
    "in-progress": "#FBF3B5",
    "waiting": "#FFFFFF",
    "frozen": "#EEEEEE",
}

NODE_KIND_COLORS = {"host": BLUE, "server": REDDISH_PURPLE, "nat": ORANGE, "router": GREY}
NODE_KIND_SYMBOLS = {"host": "circle", "server": "square", "nat": "diamond", "router": "hexagon"}


def protocol_color(protocol: str) -> str:
    """The colour of a protocol name ('STUN', 'P2P', ...); grey for anything else."""
    return PROTOCOL_COLORS.get(str(protocol).upper(), GREY)
