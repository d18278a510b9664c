"""The day every fixture is dated for (fixtures/README.md), and where the fixtures are: what the
tests pin their clock to, the golden responses are answered on, and the benchmarks evaluate on.

In tools/, not tests/: the tests import tools (``tools.golden``), and tools never the tests
package. Standard library only: a benchmark's measured process imports it before any of
``cds_service`` (``bench/then_and_now.py``). The day itself is the demo bundle's ``ANCHOR``,
written in ``tools/demo_data.py`` because the docker-compose seed container runs that file alone.
"""

from __future__ import annotations

from pathlib import Path

from tools.demo_data import ANCHOR

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TODAY = ANCHOR
