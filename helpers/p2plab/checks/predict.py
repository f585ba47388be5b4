""""Predict, then run": check a learner's prediction without putting the answer in plain sight.

In a course notebook, a question cell holds only the question's id::

    from p2plab.checks import ask
    ask("punch.symmetric-x-cone")

It shows a small form: the choices (or a box for a number), **Check my prediction** and **Show me
the answer**. The explanation appears only after the learner has answered (or asked to be shown),
so a saved notebook shows the question and never the answer. Where widgets do not run (GitHub, a
terminal), the learner types the prediction instead::

    from p2plab.checks import answer
    answer("punch.symmetric-x-cone", "no")     # the learner's prediction, before the next cell runs

prints whether the prediction was right and explains, and returns an ``AnswerResult`` with
``.correct``. Instructors see every answer with ``python -m p2plab.checks.predict answers`` or by
starting Jupyter with ``P2PLAB_TEACHER=1`` (then every ``ask`` cell also prints its answer). Only the SHA-256 of the normalised right answer is stored, so reading the notebook
or this file does not reveal it. ``answer`` never raises: an unknown question id or an odd value
gets a friendly message.

Adding a question (notebook authors)
------------------------------------
1. Compute the hash of the right answer (the question id is part of it, so two questions with the
   same answer have different hashes)::

       python -m p2plab.checks.predict hash my.question-id "42"
       # or, in Python: p2plab.checks.predict.answer_hash("my.question-id", 42)

2. Register the question, in this file's ``QUESTIONS`` (shared) or at the top of your notebook::

       from p2plab.checks.predict import Question, register
       register(Question(
           "my.question-id",
           "How many ...?",
           accepted=["<hash from step 1>"],
           explanation="Why the answer is what it is (shown after the prediction, right or wrong).",
           kind="number",                       # "choice", "number", "yes/no" or "text"
           choices=None,                        # for kind="choice": e.g. ["a", "b", "c"]
           labels=None,                         # what each choice says, e.g. ["a) 37", "b) 29", ...]
           feedback={"<hash of a wrong answer>": "a hint aimed at that particular misconception"},
       ))

``normalize`` decides what counts as the same answer: text is lower-cased with spaces and
punctuation at the ends removed ("Yes." == "yes"), yes/no accepts true/false/y/n, numbers are
compared as numbers (``digits`` rounds them first: ``digits=2`` makes 0.981 and 0.98 equal).
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

_YES = {"yes", "y", "true", "t", "1", "oui", "ja"}
_NO = {"no", "n", "false", "f", "0", "non", "nein"}


def normalize(value: Any, kind: str = "text", digits: int | None = None) -> str:
    """The canonical text form of an answer, the thing that is hashed."""
    if kind == "yes/no":
        text = str(value).strip().lower().strip(" .!?")
        if value is True or text in _YES:
            return "yes"
        if value is False or text in _NO:
            return "no"
        return text
    if kind == "number":
        try:
            x = float(str(value).replace(",", "").replace("_", "").strip().rstrip("%")) if isinstance(value, str) \
                else float(value)
        except (TypeError, ValueError):
            return str(value).strip().lower()
        if digits is not None:
            x = round(x, digits)
        if math.isfinite(x) and x == int(x):
            return str(int(x))
        return repr(x)
    if isinstance(value, (list, tuple, set)):
        items = [normalize(v, "text") for v in value]
        return ",".join(sorted(items) if isinstance(value, set) else items)
    text = re.sub(r"\s+", " ", str(value)).strip().lower()
    return text.strip(" .!?;:'\"()")


def answer_hash(question_id: str, value: Any, kind: str = "text", digits: int | None = None) -> str:
    """The SHA-256 hex digest stored for ``value`` as an answer to ``question_id``."""
    return hashlib.sha256(f"{question_id}\n{normalize(value, kind, digits)}".encode()).hexdigest()


@dataclass
class Question:
    """One prediction question: what is asked, the accepted answers' hashes, and the explanation."""

    id: str
    prompt: str
    accepted: list[str]
    explanation: str
    kind: str = "text"  # "choice" | "number" | "yes/no" | "text"
    choices: list[str] | None = None
    digits: int | None = None
    feedback: dict[str, str] = field(default_factory=dict)
    labels: list[str] | None = None  # shown in the control, one per choice ("a) only the source address")

    def hash(self, value: Any) -> str:
        return answer_hash(self.id, value, self.kind, self.digits)

    def options(self) -> list[tuple[str, str]]:
        """The (label, value) pairs a learner picks from: the choices, or yes and no; [] for a typed answer."""
        if self.kind == "yes/no":
            return [("yes", "yes"), ("no", "no")]
        if self.kind == "choice" and self.choices:
            labels = self.labels or _labels_from_prompt(self.prompt, self.choices) or self.choices
            return list(zip(labels, self.choices, strict=True))
        return []

    def right_option(self) -> str | None:
        """The label of the accepted option (found by hashing each option); None for a typed answer."""
        for label, value in self.options():
            if self.hash(value) in self.accepted:
                return label
        return None

    def reveal(self) -> str:
        """The answer and why, for "Show me the answer" and for instructors."""
        right = self.right_option()
        return f"The answer: {right}. {self.explanation}" if right else self.explanation


def _labels_from_prompt(prompt: str, choices: list[str]) -> list[str] | None:
    """For lettered choices, the text after each "a) " in the prompt ("a) to encrypt it"); None if
    some letter is missing, so the control then shows the bare letters."""
    starts = []
    for c in choices:
        m = re.search(rf"(?:^|[\s(]){re.escape(c)}\) ", prompt)
        if m is None or len(c) != 1:
            return None
        starts.append(m.start() if prompt[m.start()] not in " (" else m.start() + 1)
    if starts != sorted(starts):
        return None
    labels = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(prompt)
        text = prompt[start:end].strip()
        text = re.sub(r"(,\s*(or)?|\s+or)$", "", text).strip().rstrip(".?;")
        labels.append(text)
    return labels


@dataclass
class AnswerResult:
    """What ``answer`` found: ``correct`` (True/False; None when the question is unknown)."""

    question_id: str
    correct: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.correct)

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:  # already printed
        pass


QUESTIONS: dict[str, Question] = {}


def register(question: Question) -> Question:
    """Add (or replace) a question in the registry; returns it."""
    if question.kind not in ("choice", "number", "yes/no", "text"):
        raise ValueError(f"kind must be 'choice', 'number', 'yes/no' or 'text', not {question.kind!r}")
    if question.labels is not None and len(question.labels) != len(question.choices or []):
        raise ValueError(f"{question.id}: give one label per choice ({len(question.choices or [])} choices, "
                         f"{len(question.labels)} labels)")
    QUESTIONS[question.id] = question
    return question


def _load_course_questions(question_id: str) -> None:
    """Course notebooks keep their questions in ``p2plab.checks.questions.<prefix>`` (e.g. nb03 for
    'nb03.table-rows'); import that module on first use so it registers them."""
    import importlib

    prefix = question_id.split(".")[0]
    if prefix.isidentifier():
        try:
            importlib.import_module(f"p2plab.checks.questions.{prefix}")
        except ModuleNotFoundError:
            pass


def answer(question_id: str, value: Any, quiet: bool = False) -> AnswerResult:
    """Check a prediction for ``question_id``; print whether it was right and why. Never raises."""
    q = QUESTIONS.get(question_id)
    if q is None:
        _load_course_questions(str(question_id))
        q = QUESTIONS.get(question_id)
    if q is None:
        near = [k for k in QUESTIONS if k.split(".")[0] == str(question_id).split(".")[0]] or sorted(QUESTIONS)
        res = AnswerResult(str(question_id), None,
                           f"There is no question {question_id!r}. Known questions: {', '.join(sorted(near))}.")
    elif value is None or value is Ellipsis or (isinstance(value, str) and not value.strip()):
        hint = f" (one of: {', '.join(q.choices)})" if q.choices else ""
        res = AnswerResult(q.id, None, f"Write your prediction first{hint}, then run this cell.\n{q.prompt}")
    elif q.kind == "choice" and q.choices and normalize(value) not in [normalize(c) for c in q.choices]:
        res = AnswerResult(q.id, None, f"{value!r} is not one of the choices: {', '.join(q.choices)}.")
    else:
        h = q.hash(value)
        if h in q.accepted:
            res = AnswerResult(q.id, True, f"✔ Right. {q.explanation}")
        else:
            extra = q.feedback.get(h)
            lead = f"✘ Not what happens. {extra} " if extra else "✘ Not what happens. "
            res = AnswerResult(q.id, False, lead + f"Run the next cell and watch. Why: {q.explanation}")
    if not quiet:
        print(res.message)
    return res


def teacher_mode() -> bool:
    """True when the environment variable ``P2PLAB_TEACHER`` is 1/yes/true: ``ask`` cells then also
    print their answer (for instructors preparing a session; never set it for learners)."""
    import os

    return os.environ.get("P2PLAB_TEACHER", "").strip().lower() in ("1", "yes", "true", "on")


def _find(question_id: str) -> Question:
    q = QUESTIONS.get(question_id)
    if q is None:
        _load_course_questions(str(question_id))
        q = QUESTIONS.get(question_id)
    if q is None:
        near = [k for k in QUESTIONS if k.split(".")[0] == str(question_id).split(".")[0]] or sorted(QUESTIONS)
        raise KeyError(f"There is no question {question_id!r}. Known questions: {', '.join(sorted(near))}.")
    return q


def _what_to_give(q: Question) -> str:
    if q.kind == "number":
        return "a number"
    if q.kind == "yes/no":
        return "yes or no"
    if q.options():
        return "one of: " + "; ".join(label for label, _ in q.options())
    return "a short answer"


class Prediction:
    """The form an ``ask`` cell shows: the options (or a box), Check, Show me the answer, feedback.

    Its parts are plain attributes so that tests (and curious learners) can drive it:
    ``control.value``, ``check_button.click()``, ``show_button.click()``, ``feedback.value``;
    ``result`` is the last ``AnswerResult`` (None before Check).
    """

    def __init__(self, question: Question) -> None:
        import ipywidgets as w

        self.question = question
        self.result: AnswerResult | None = None
        options = question.options()
        if options:
            self.control = w.RadioButtons(options=options, value=None, layout=w.Layout(width="auto"))
        else:
            self.control = w.Text(value="", placeholder=_what_to_give(question), description="Prediction:")
        self.check_button = w.Button(description="Check my prediction", button_style="primary",
                                     tooltip="Compare your prediction with what happens, and see why")
        self.show_button = w.Button(description="Show me the answer",
                                    tooltip="Stuck? See the answer and the explanation")
        self.feedback = w.HTML(value="")
        self.check_button.on_click(self.check)
        self.show_button.on_click(self.show)
        self.box = w.VBox([w.HTML("<b>Your prediction</b> (" + _escape(_what_to_give(question)) + "):"),
                           self.control, w.HBox([self.check_button, self.show_button]), self.feedback])
        self.box.add_class("p2plab-prediction")

    def _say(self, text: str) -> None:
        self.feedback.value = f'<div role="status" aria-live="polite">{_escape(text)}</div>'

    def check(self, _: Any = None) -> AnswerResult:
        """Check what is in the control (the Check button calls this)."""
        value = self.control.value
        if value is None or not str(value).strip():
            self.result = AnswerResult(self.question.id, None, "Choose or type your prediction first, then press "
                                       "Check my prediction. (Stuck? Show me the answer is next to it.)")
            self._say(self.result.message)
            return self.result
        self.result = answer(self.question.id, value, quiet=True)
        self._say(self.result.message)
        return self.result

    def show(self, _: Any = None) -> str:
        """Show the answer and the explanation (the Show me button calls this)."""
        text = self.question.reveal()
        self._say(text)
        return text

    def text(self) -> str:
        """What a reader without widgets sees: how to answer, never the answer."""
        q = self.question
        return (f"Your prediction ({_what_to_give(q)}): run this notebook in Jupyter to answer in a form here, "
                f"or type it in a new code cell: answer({q.id!r}, ...)")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.box._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/plain"] = self.text()
        bundle["text/html"] = f"<p>{_escape(self.text())}</p>"
        return bundle


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def ask(question_id: str) -> Prediction | AnswerResult:
    """Show a "predict, then run" question's answer form (leave it last in a cell).

    The learner picks or types a prediction, presses **Check my prediction** and only then reads the
    explanation; **Show me the answer** is there for the stuck. With ``P2PLAB_TEACHER=1`` the cell also
    prints the answer. An unknown id prints the known ones instead of raising.
    """
    try:
        q = _find(question_id)
    except KeyError as err:
        res = AnswerResult(str(question_id), None, str(err.args[0]))
        print(res.message)
        return res
    if teacher_mode():
        print(f"[teacher mode] {q.reveal()}")
    return Prediction(q)


# -- the course's own questions ---------------------------------------------------------------
# Right answers (and common wrong ones, for targeted feedback) are stored as hashes only;
# make new ones with `python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND`.
_BUILTIN = [
    Question(
        "sockets.rtt-direct",
        "Alice and Bob are each 10 ms (one way) from the internet core. What round-trip time, in "
        "milliseconds, will Alice measure to Bob?",
        ["d328c738e1097e10c88f8515ac1c89f32cd52164c7db683e7f802964d753a448"],
        "A round trip crosses four links: Alice to the core, the core to Bob, and back again: "
        "4 x 10 ms = 40 ms.",
        kind="number",
        feedback={"838ee57c903d61e0fa05fd513eb7891721612afaddc739f4b7bf63f4af7c8eda": "That is the one-way time from Alice to Bob; the reply has to come "
                                            "back too.",
                  "c6340fd605494f360c4cc5eeaedd7dbbcd9bb59d201544d6afe99bf39e44db53": "That is a single link; Alice's packet crosses two to reach Bob."},
    ),
    Question(
        "nat.apdm-second-destination",
        "Alice's NAT has address-and-port-dependent mapping. Alice sends from 192.168.1.10:5000 to the STUN "
        "server, then from the same socket to Bob. Does Bob see the same outside port the STUN server saw? "
        "(yes/no)",
        ["402b218ecb5b8f77648db3937c3b00803931f1b5fbde3792981aa2d72f348a69"],
        "With address-and-port-dependent mapping every new destination gets its own mapping, so its own "
        "outside port. What STUN reports is only valid toward the STUN server.",
        kind="yes/no",
    ),
    Question(
        "nat.eim-apdf-unsolicited",
        "Alice is behind a port-restricted cone NAT (endpoint-independent mapping, address-and-port-dependent "
        "filtering) and has only sent to the STUN server. Bob sends a datagram to Alice's mapped address. "
        "Does it reach Alice? (yes/no)",
        ["c6f6ad54c1aed6d4c39c0b97c5736d920915325aaf41fa7b387df0a792c58308"],
        "The mapping exists and is the same for every destination, but the filter only admits the exact "
        "address and port Alice has sent to: the STUN server. Alice must send to Bob first: that is the "
        "whole idea of hole punching.",
        kind="yes/no",
    ),
    Question(
        "stun.why-xor",
        "Why does STUN send XOR-MAPPED-ADDRESS instead of the plain address? a) to encrypt it, b) so "
        "middleboxes that rewrite every copy of an IP address they find in packets leave it alone, "
        "c) to make the message shorter",
        ["7c6007c97236883253849a7b56cfc678de90c45ee71bffdb7f29c9326327c97f"],
        "Some NATs (with application level gateways) rewrote any 4 bytes that looked like their public "
        "address, corrupting MAPPED-ADDRESS. XOR with the magic cookie hides the pattern; it is not "
        "secret - anyone can undo it (RFC 8489 section 14.2).",
        kind="choice", choices=["a", "b", "c"],
        feedback={"f440881e55f704e187b26f5a950b0a17e5da946fe7b83528071c3fcd77b58c3f": "XOR with a constant that is in every STUN header is no secret."},
    ),
    Question(
        "punch.symmetric-x-cone",
        "Alice is behind a symmetric NAT, Bob behind a port-restricted cone NAT. Will simple hole punching "
        "(punch the address the rendezvous server saw) give them a direct path? (yes/no)",
        ["34317e1d1b8fd9cf4818934ef707dce837d5d5414f3b098728d605fe25ec2543"],
        "Alice's symmetric NAT gives her a new outside port for Bob, so Bob punches the port the server "
        "saw, which was never opened for him, and Bob's port-restricted NAT drops Alice's punches from the "
        "unknown new port.",
        kind="yes/no",
    ),
    Question(
        "punch.full-cone-x-symmetric",
        "Alice is behind a full cone NAT, Bob behind a symmetric NAT. Will simple hole punching give them a "
        "direct path? (yes/no)",
        ["898614b1a73bc74935513bcd3e8bf79918587704a966fc447f59bd9cf87eae2b"],
        "Bob's punch leaves from a new port, but Alice's full cone NAT admits anyone, so it reaches Alice; "
        "her ACK goes back to exactly the endpoint Bob's NAT opened for her.",
        kind="yes/no",
    ),
    Question(
        "portpred.probes-for-half",
        "Alice's hard NAT has 256 ports open toward Bob, out of the 64,511 ports 1025-65535. Bob probes random "
        "ports. About how many probes give him a 50 % chance of a hit? a) about 20, b) about 180, c) about 32,000",
        ["8eebfe0997e795cabdcc1937181b0d29efd89dbc17bb97be2103dfd005830e1f"],
        "Each probe hits with probability 256/64,511 (about 1/252), so after k probes P is about "
        "1 - (1 - 256/64511)^k, which is 1/2 near k = ln 2 x 252 = about 175; counted exactly (a probe never "
        "repeats a port) it is 174, Tailscale's figure. Both sides 'choosing' ports is what makes it a birthday "
        "problem.",
        kind="choice", choices=["a", "b", "c"],
        feedback={"6990cc4fcb40366ca24acc97cda0c03d04ce171ad06b93ac132e9b842967b5be": "That would be right with one open port; 256 open ports "
                                                 "make every probe 256 times likelier to hit."},
    ),
    Question(
        "turn.relay-out-mbps",
        "30 learners each send a 2 Mbit/s video stream to a peer through one TURN relay. How many Mbit/s "
        "leave the relay server?",
        ["354a76afdffbe8b1eb5daddf8d764c3514e0a592a25c121c9226fa01a52ba759"],
        "Every byte goes in to the relay and out again: 30 x 2 = 60 Mbit/s in and 60 Mbit/s out. Clouds "
        "usually bill the outgoing bytes.",
        kind="number",
        feedback={"4db84b149cdc1d62fe27a07db8fdb1869bb88fc86eb34156724e56dd9600c4d6": "That adds in and out; the question asks only what leaves.",
                  "ece79befc86c6507b26d532819924ae81f5cafd1008acd9b132ab811239a11aa": "That is one stream; the relay carries all of them."},
    ),
    Question(
        "ice.srflx-priority",
        "RFC 8445: priority = 2^24 x type preference + 2^8 x local preference + (256 - component). What is the "
        "priority of a server reflexive candidate (type preference 100), local preference 65535, component 1?",
        ["a3af009905d6e59341bc19e6cfb32ccc8f419d7cfa1769803b73d3a9ca580946"],
        "100 x 16777216 + 65535 x 256 + 255 = 1694498815.",
        kind="number",
        feedback={"2165bda1db093b1349f93ec730a1ade399317630ff789578928f65bb968acc57": "Check the last term: it is 256 minus the component ID."},
    ),
    Question(
        "capstone.symmetric-x-symmetric",
        "Alice and Bob are both behind symmetric NATs (random ports). How will the capstone connect them? "
        "a) direct, by hole punching, b) through the relay",
        ["1eaa184c426030c2724a541914b697107e59c868570f033b1f284db0f6e90eaf"],
        "Both mappings change per destination and neither NAT admits unknown senders, so no punch can meet; "
        "the relay is the fallback. (Guessing ports on both sides is possible in principle, but Tailscale's 'How NAT "
        "traversal works' (2020) puts it at about 54,000 probes per side for a 50% chance and about 170,000 for "
        "99.9%.)",
        kind="choice", choices=["a", "b"],
    ),
]

for _question in _BUILTIN:
    register(_question)


_ANSWER_CELL = re.compile(r"""^\s*answer\(\s*(["'])(?P<id>[^"']+)\1\s*,.*\)\s*(#.*)?$""", re.S)


def convert_notebook(path: str) -> list[str]:
    """Turn a notebook's pre-answered cells ``answer("ID", value)`` into unanswered ``ask("ID")`` cells
    (outputs cleared) and ``from p2plab.checks import answer`` into ``... import answer, ask``.
    Returns what changed, one line per cell; re-execute the notebook afterwards."""
    import json

    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    changed = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        m = _ANSWER_CELL.match(src)
        if m and "\n" not in src.strip():
            cell["source"] = f'ask("{m.group("id")}")'
            cell["outputs"] = []
            cell["execution_count"] = None
            changed.append(f"cell {i}: ask({m.group('id')!r})")
        elif re.search(r"^from p2plab\.checks import answer[ \t]*$", src, re.M):
            cell["source"] = re.sub(r"^from p2plab\.checks import answer[ \t]*$", "from p2plab.checks import answer, ask",
                                    src, flags=re.M)
            changed.append(f"cell {i}: imports ask")
    changed += _spell_out_choices(nb["cells"])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return changed


def _spell_out_choices(cells: list[dict]) -> list[str]:
    """Every question must list its choices in its own text: add "(`yes` / `no`)" to a yes/no question's
    markdown when missing; report a lettered question whose text does not list every choice."""
    notes = []
    for i, cell in enumerate(cells):
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        m = re.search(r"""ask\(["']([^"']+)["']\)""", src) if cell["cell_type"] == "code" else None
        if not m:
            continue
        try:
            q = _find(m.group(1))
        except KeyError:
            notes.append(f"cell {i}: unknown question {m.group(1)!r}")
            continue
        j = next((k for k in range(i - 1, -1, -1) if cells[k]["cell_type"] == "markdown"), None)
        if j is None:
            notes.append(f"cell {i}: {q.id} has no markdown question above it")
            continue
        md = "".join(cells[j]["source"]) if isinstance(cells[j]["source"], list) else cells[j]["source"]
        if q.kind == "yes/no" and not re.search(r"\byes\b", md):
            cells[j]["source"] = md.rstrip("\n") + " (`yes` / `no`)\n"
            notes.append(f"cell {j}: added (`yes` / `no`) to the question {q.id}")
        elif q.kind == "choice":
            missing = [c for c in q.choices or [] if not any(f in md for f in (f"{c})", f"`{c}`", f'"{c}"'))]
            if missing:
                notes.append(f"cell {j}: WRITE the choices {missing} of {q.id} into the question's text")
    return notes


def main(argv: list[str] | None = None) -> int:
    """``python -m p2plab.checks.predict hash|list|answers|convert ...`` (see ``--help``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m p2plab.checks.predict")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hash", help="print the hash to store for a right answer")
    h.add_argument("question_id")
    h.add_argument("value")
    h.add_argument("--kind", default="text", choices=["choice", "number", "yes/no", "text"])
    h.add_argument("--digits", type=int, default=None)
    sub.add_parser("list", help="list the registered questions")
    a = sub.add_parser("answers", help="for instructors: every course question with its answer and why")
    a.add_argument("prefix", nargs="?", default="", help="only questions whose id starts with this (e.g. nb07)")
    c = sub.add_parser("convert", help='turn answer("ID", value) cells of notebooks into unanswered ask("ID") cells')
    c.add_argument("notebooks", nargs="+")
    args = p.parse_args(argv)
    if args.cmd == "hash":
        print(answer_hash(args.question_id, args.value, args.kind, args.digits))
        return 0
    # under ``python -m`` this file is __main__; the question modules register in p2plab.checks.predict
    import importlib
    import pkgutil

    from p2plab.checks import predict, questions

    for mod in pkgutil.iter_modules(questions.__path__):
        importlib.import_module(f"{questions.__name__}.{mod.name}")
    if args.cmd == "answers":
        for q in sorted(predict.QUESTIONS.values(), key=lambda q: q.id):
            if q.id.startswith(args.prefix):
                print(f"{q.id}\n  Q: {q.prompt}\n  A: {q.reveal()}\n")
    elif args.cmd == "convert":
        for path in args.notebooks:
            for line in predict.convert_notebook(path) or ["nothing to convert"]:
                print(f"{path}: {line}")
    else:
        for q in predict.QUESTIONS.values():
            print(f"{q.id}: {q.prompt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
