"""Session set-up and hooks: the array API switch; derandomized hypothesis;
how many examples each property-based test tried.

Hypothesis draws the same examples on every run and keeps no database, so a
CI failure reproduces locally and a green run stays green
(``HYPOTHESIS_PROFILE=random`` explores new examples instead).

scikit-learn's array API checks (torch, array_api_strict) need
``SCIPY_ARRAY_API=1`` before scipy is imported; without it they would be
skipped, so it is set here for the whole session.

The hook prints how many examples each property-based test tried. A test
reports its counts with ``record_property("hypothesis_examples", n)`` and
``record_property("hypothesis_clear_errors", n)`` (see
``test_hypothesis.py``); they are shown at the end of every run, so CI logs
say how much input space was actually explored.
"""

import os

# Before anything imports scipy.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

from hypothesis import settings  # noqa: E402

settings.register_profile("derandomized", derandomize=True, database=None)
settings.register_profile("random", derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))


def pytest_terminal_summary(terminalreporter):
    counts = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            properties = dict(getattr(report, "user_properties", ()))
            if "hypothesis_examples" in properties:
                counts[report.nodeid] = (
                    properties["hypothesis_examples"],
                    properties.get("hypothesis_clear_errors", 0),
                )
    if not counts:
        return
    terminalreporter.section("hypothesis examples tried (of which raised a clear error)")
    for nodeid, (tried, errors) in counts.items():
        terminalreporter.write_line(f"{tried:6d} ({errors:4d})  {nodeid}")
    total, total_errors = (sum(c) for c in zip(*counts.values()))
    terminalreporter.write_line(f"{total:6d} ({total_errors:4d})  in total")
