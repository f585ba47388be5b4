"""The lessons' "predict, then run" form: ask(id) shows a question, never its answer, until asked."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest

from p2plab.checks import predict
from p2plab.checks.predict import QUESTIONS, ask, convert_notebook


def _course_questions() -> list[predict.Question]:
    from p2plab.checks import questions

    for mod in pkgutil.iter_modules(questions.__path__):
        importlib.import_module(f"{questions.__name__}.{mod.name}")
    return sorted(QUESTIONS.values(), key=lambda q: q.id)


@pytest.mark.parametrize("q", _course_questions(), ids=lambda q: q.id)
def test_show_me_reveals_an_accepted_answer(q):
    """'Show me the answer' must give the answer: the accepted option, or a number the explanation states."""
    if q.options():
        right = q.right_option()
        assert right is not None, f"{q.id}: no option hashes to an accepted answer"
        assert q.reveal().startswith(f"The answer: {right}.")
    else:
        numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", q.explanation)
        assert any(q.hash(n) in q.accepted for n in numbers), f"{q.id}: the explanation never states the answer"


@pytest.mark.parametrize("q", [q for q in _course_questions() if q.kind == "choice"], ids=lambda q: q.id)
def test_every_choice_is_spelled_out_in_the_control(q):
    labels = [label for label, _ in q.options()]
    for choice, label in zip(q.choices, labels, strict=True):
        assert len(label) > 3 or len(choice) > 1, f"{q.id}: choice {choice!r} shows only its letter"


def test_the_form_checks_a_choice_and_explains_only_after_answering():
    p = ask("nb07.cgn-mapped")
    assert p.feedback.value == ""
    bundle = p._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    explanation = p.question.explanation
    assert explanation not in bundle["text/plain"] and explanation not in bundle["text/html"]
    assert "a) 192.168.1.10" in bundle["text/plain"] and "answer('nb07.cgn-mapped', ...)" in bundle["text/plain"]
    p.check_button.click()  # nothing chosen yet
    assert p.result.correct is None and "first" in p.feedback.value and explanation not in p.feedback.value
    p.control.value = "b"
    p.check_button.click()
    assert p.result.correct is False and "second NAT" in p.feedback.value
    p.control.value = "c"
    p.check_button.click()
    assert p.result.correct is True and "✔ Right" in p.feedback.value


def test_the_form_takes_a_typed_number_and_shows_the_answer_to_the_stuck():
    p = ask("nb01.packet-length")
    assert p.control.value == "" and p.control.placeholder == "a number"
    p.control.value = "29"
    p.check_button.click()
    assert p.result.correct is False
    p.control.value = " 37 "
    p.check_button.click()
    assert p.result.correct is True
    p.show_button.click()
    assert "20 + 8 + 9 = 37" in p.feedback.value


def test_yes_no_form_starts_with_nothing_chosen():
    p = ask("nb02.is-172-32-private")
    assert p.control.value is None and [v for _, v in p.question.options()] == ["yes", "no"]


def test_unknown_question_is_a_message_not_an_exception(capsys):
    res = ask("nb07.no-such-question")
    assert res.correct is None and "nb07.cgn-mapped" in capsys.readouterr().out


def test_teacher_mode_prints_the_answer(monkeypatch, capsys):
    monkeypatch.delenv("P2PLAB_TEACHER", raising=False)
    ask("nb02.bob-sees-address")
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("P2PLAB_TEACHER", "1")
    ask("nb02.bob-sees-address")
    assert "[teacher mode] The answer: b) 203.0.113.10." in capsys.readouterr().out


def test_answers_command_lists_every_answer_for_instructors(capsys):
    predict.main(["answers", "nb03"])
    out = capsys.readouterr().out
    assert "nb03.changed-fields" in out and "The answer: c)" in out and "nb04." not in out


def test_convert_turns_answered_cells_into_ask_cells(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
         "source": ["from p2plab.checks import answer\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["> **Predict.** Does it get established?"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "source": ['answer("nb08.rst-late-bob", "no")'],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["✔ Right. ..."]}]},
        {"cell_type": "code", "metadata": {}, "execution_count": 3, "outputs": [],
         "source": ["x = 1\n", 'answer("nb08.rst-late-bob", x)']},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    changed = convert_notebook(str(path))
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["source"] == "from p2plab.checks import answer, ask\n"
    assert cells[2]["source"] == 'ask("nb08.rst-late-bob")' and cells[2]["outputs"] == []
    assert "".join(cells[3]["source"]).startswith("x = 1")  # not a bare answer cell: left alone
    assert "".join(cells[1]["source"]).endswith("Does it get established? (`yes` / `no`)\n")
    assert len(changed) == 3, changed


def test_convert_reports_a_choice_question_without_its_choices(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["> **Predict.** Which state does she move to?"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
         "source": ['answer("nb08.simultaneous-state", "b")']},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    changed = convert_notebook(str(path))
    assert any("WRITE the choices ['a', 'b', 'c']" in line for line in changed), changed


def test_convert_command_line_knows_the_course_questions(tmp_path):
    """`python -m p2plab.checks.predict convert` (how the lead converts 08) finds the registered questions."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["> **Predict.** Established?"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
         "source": ['answer("nb08.rst-late-bob", "no")']},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    helpers = str(Path(predict.__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=helpers)
    out = subprocess.run([sys.executable, "-m", "p2plab.checks.predict", "convert", str(path)],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert "unknown question" not in out and "added (`yes` / `no`)" in out, out
