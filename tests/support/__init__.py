"""Test and tool code that is not shipped in the wheel: seeded synthetic sessions
(``support.synthetic``) and episode scoring (``support.evaluation``).

``tests/conftest.py`` puts ``tests/`` on ``sys.path`` so tests import these as
``support.*``; ``benchmarks/accuracy_report.py`` does the same.
"""
