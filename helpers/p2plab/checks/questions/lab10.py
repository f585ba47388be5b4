"""Prediction questions of lab 10 (change and trust: consent freshness). Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    "lab10.longest-notice",
    "An ICE agent sends a consent check every 4 to 6 s, and consent expires 30 s after the last answer "
    "(RFC 7675). Alice moves to another network, and no answer arrives after that. At most how many seconds "
    "pass between the move and the moment her agent declares consent lost?",
    ["3a9f24fe379f38b20ca3184511c11623b72a6cf4556451db319c6c513715dc86"],
    "30: the clock runs from the last answer, which came at the latest just before the move. At the other "
    "extreme the last answer came up to 6 s earlier, so consent is lost 24 to 30 s after the move.",
    kind="number",
    feedback={
        "ee4c32c165a3f1d460d961eaca1fd95df5a967d67327d12f584b4bc19f2c2daa": "That is the shortest wait: the "
        "last answer came a whole check interval (6 s) before the move. What if it came just before?",
        "ebe739104f44d44f91de453e20e76e8331324131260952bc358a41497bf69282": "The 30 s run from the last answer, "
        "which arrived before the move, not after it.",
    },
))
