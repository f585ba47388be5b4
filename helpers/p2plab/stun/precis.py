"""Preparing usernames, realms and passwords before they are hashed into a STUN long-term key.

Two people typing the "same" password may send different bytes: a no-break space instead of a
space, an "é" typed as one code point or as "e" plus a combining accent. STUN therefore prepares
these strings before hashing them (RFC 8489 section 18.5.1.1)::

    key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password))

* ``opaque_string(s)`` - the OpaqueString profile of PRECIS (RFC 8265 section 4.2), which STUN
  uses since RFC 8489: map non-ASCII spaces to U+0020, normalise to NFC, and refuse characters of
  the FreeformClass's DISALLOWED set (RFC 8264 section 4.3: control and format characters,
  default-ignorable and unassigned code points, private use, surrogates, old Hangul jamo...).
  Case and width are kept: "Secret" and "secret" stay different passwords.
* ``saslprep(s)`` - SASLprep (RFC 4013), what RFC 5389 used before: it also deletes characters
  such as U+00AD SOFT HYPHEN and applies NFKC ("Ⅸ" becomes "IX"). RFC 5769's long-term test vector
  was computed with it. Built on Python's ``stringprep`` tables.

For plain ASCII (letters, digits, punctuation, spaces) both return the string unchanged.
Bad input raises ``ConfigurationError`` naming the character, its position and how to fix it.

>>> opaque_string("pass\\u00a0word")      # a no-break space becomes a plain space
'pass word'
>>> saslprep("The\\u00adM\\u00aatr\\u2168")  # RFC 5769 section 2.4
'TheMatrIX'
"""

from __future__ import annotations

import stringprep
import unicodedata

from ..errors import ConfigurationError

# RFC 8264 section 9: code points that are DISALLOWED in the FreeformClass although Python's
# unicodedata has no property for them: Default_Ignorable_Code_Point outside category Cf/Cn
# (combining grapheme joiner, Hangul fillers, Khmer vowels, variation selectors, ...) and the
# old Hangul jamo (Hangul_Syllable_Type L, V, T).
_IGNORABLE = [(0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
              (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF)]
_OLD_HANGUL_JAMO = [(0x1100, 0x11FF), (0xA960, 0xA97F), (0xD7B0, 0xD7FF)]
_JOIN_CONTROLS = (0x200C, 0x200D)


def _in(cp: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def _freeform_disallowed(ch: str) -> str | None:
    """Why ``ch`` is not allowed in the PRECIS FreeformClass (None: it is allowed)."""
    cp = ord(ch)
    if 0x21 <= cp <= 0x7E:
        return None
    cat = unicodedata.category(ch)
    if cat == "Cn":
        return "unassigned in this Unicode version"
    if cp in _JOIN_CONTROLS:
        return "a join control (only valid in a few scripts' contexts, which p2plab does not check)"
    if _in(cp, _OLD_HANGUL_JAMO):
        return "an old Hangul jamo"
    if cat == "Cf" or _in(cp, _IGNORABLE) or (cp & 0xFFFE) == 0xFFFE or 0xFDD0 <= cp <= 0xFDEF:
        return "invisible (a format or default-ignorable character)"
    if cat == "Cc":
        return "a control character"
    if cat in ("Co", "Cs"):
        return "a private-use or surrogate code point"
    if cat in ("Zl", "Zp"):
        return "a line or paragraph separator"
    return None  # letters, marks, digits, other numbers, spaces, symbols, punctuation


def opaque_string(text: str, what: str = "password") -> str:
    """``text`` prepared with the PRECIS OpaqueString profile (RFC 8265 section 4.2).

    ``what`` names the string in error messages ("password", "username", "realm")."""
    if not isinstance(text, str):
        raise ConfigurationError(f"the {what} must be text (str), not {type(text).__name__}")
    if text.isascii() and text.isprintable() and text:
        return text  # printable ASCII is unchanged by every rule below
    # additional mapping rule: non-ASCII spaces (Zs) become U+0020
    mapped = "".join(" " if unicodedata.category(c) == "Zs" else c for c in text)
    prepared = unicodedata.normalize("NFC", mapped)
    if not prepared:
        raise ConfigurationError(f"the {what} is empty; OpaqueString (RFC 8265) needs at least one character")
    for pos, ch in enumerate(prepared):
        why = _freeform_disallowed(ch)
        if why is not None:
            raise ConfigurationError(
                f"the {what} contains {_describe(ch)} at position {pos}, which is {why}; OpaqueString "
                f"(RFC 8265, used by STUN/TURN long-term credentials) does not allow it - remove that "
                "character" + (" (SASLprep would delete it: see p2plab.stun.precis.saslprep)"
                               if stringprep.in_table_b1(ch) else ""))
    return prepared


def saslprep(text: str, what: str = "password") -> str:
    """``text`` prepared with SASLprep (RFC 4013), the older profile of RFC 5389."""
    if not isinstance(text, str):
        raise ConfigurationError(f"the {what} must be text (str), not {type(text).__name__}")
    if text.isascii() and text.isprintable():
        return text
    mapped = "".join("" if stringprep.in_table_b1(c) else " " if stringprep.in_table_c12(c) else c for c in text)
    prepared = unicodedata.normalize("NFKC", mapped)
    checks = [(stringprep.in_table_c12, "a non-ASCII space"), (stringprep.in_table_c21_c22, "a control character"),
              (stringprep.in_table_c3, "private use"), (stringprep.in_table_c4, "a non-character"),
              (stringprep.in_table_c5, "a surrogate"), (stringprep.in_table_c6, "inappropriate for plain text"),
              (stringprep.in_table_c7, "inappropriate for canonical representation"),
              (stringprep.in_table_c8, "a change-of-display or deprecated character"),
              (stringprep.in_table_c9, "a tagging character")]
    for pos, ch in enumerate(prepared):
        for test, why in checks:
            if test(ch):
                raise ConfigurationError(f"the {what} contains {_describe(ch)} at position {pos}, which is "
                                         f"{why}; SASLprep (RFC 4013) prohibits it - remove that character")
    rtl = [stringprep.in_table_d1(c) for c in prepared]
    if any(rtl):
        ltr = any(stringprep.in_table_d2(c) for c in prepared)
        if ltr or not (rtl[0] and rtl[-1]):
            raise ConfigurationError(f"the {what} mixes right-to-left and left-to-right text in a way SASLprep "
                                     "(RFC 4013 section 6) does not allow; use one direction")
    return prepared
