"""The chaos suite: one test per seed, each a five-VM migration on real processes with one
fault (a service SIGKILLed and started again, a transfer worker of two killed, or
nats-server restarted on the same port and store) at a seeded moment; see
:mod:`e2e.chaos` for what is checked. ``FERRY_CHAOS_RUNS`` changes the number of seeds
(30 by default); ``benchmarks/chaos.py`` runs the same loop and writes the table in
``docs/reliability.md``.

Stacks are shared between consecutive seeds while runs pass: each run has its own plan,
migration and target namespace, and starts from the model's power states; a stack whose
run failed is thrown away, so the next seed starts on a fresh one.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .chaos import StackPool

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.nats, pytest.mark.vsphere]

SEEDS = range(int(os.environ.get("FERRY_CHAOS_RUNS", "30")))


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackPool]:
    stacks = StackPool(Path(tmp_path_factory.mktemp("chaos")))
    yield stacks
    stacks.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_migration_survives_a_fault(pool: StackPool, seed: int) -> None:
    result = pool.run(seed)
    print(f"\n{result.report()}")
    assert result.passed, result.report()
