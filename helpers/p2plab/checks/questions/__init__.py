"""Prediction questions of the course notebooks, one module per notebook (nb01.py, nb02.py, ...).

``p2plab.checks.answer('nb03.some-id', value)`` imports ``nb03`` on first use; each module calls
``p2plab.checks.predict.register(Question(...))`` for its questions. Store only hashes of answers
(``python -m p2plab.checks.predict hash ID VALUE``).
"""
