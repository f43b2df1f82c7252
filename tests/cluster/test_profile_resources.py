"""The training resources of profiles/slurm and profiles/condor, evaluated as Snakemake does.

README "On the cluster": 4 GB + 125 kB per sample up to 16 GB, 1 h + 0.5 s per sample up to
3 days, retries with more. The caps hold for every attempt, since a retry asking for more than
the site offers would wait forever. No scheduler is needed.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.resources import Resource

REPO = Path(__file__).resolve().parents[2]
ATTEMPTS = (1, 2, 3)  # `retries: 2` in both profiles
MAX_MB, MAX_SECONDS = 16000, 3 * 24 * 3600
# profile: (memory resource, runtime resource, seconds per runtime unit)
PROFILES = {
    "slurm": ("mem_mb", "runtime", 60),
    "condor": ("htcondor_request_mem_mb", "classad_MaxRuntime", 1),
}


def training_request(profile: str, samples: int, attempt: int, tmp_path: Path) -> tuple[int, int]:
    """(memory MB, runtime seconds) that `profile` asks for a training of `samples`."""
    config = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    assert config["retries"] == len(ATTEMPTS) - 1
    resources = config["set-resources"]["train"]
    assert config["set-resources"]["hyperopt_trial"] == resources
    (tmp_path / "config.json").write_text(json.dumps({"samples": samples}))
    memory, runtime, unit = PROFILES[profile]

    def evaluate(name: str) -> int:
        return Resource.cli_evaluator(
            name,
            str(resources[name]),
            wildcards=SimpleNamespace(version="v14"),
            input=SimpleNamespace(config=str(tmp_path / "config.json")),
            attempt=attempt,
            async_run=None,
        )

    return evaluate(memory), evaluate(runtime) * unit


@pytest.mark.parametrize("profile", PROFILES)
def test_a_200k_training_stays_within_the_caps_on_every_attempt(profile, tmp_path):
    requests = [training_request(profile, 200_000, a, tmp_path) for a in ATTEMPTS]
    # 4 GB + 25 GB exceeds the cap from the first attempt; 1 h + 27.8 h doubles, then is capped
    assert [mem for mem, _ in requests] == [MAX_MB] * 3
    runtimes = [seconds for _, seconds in requests]
    assert runtimes[0] == pytest.approx(3600 + 100_000, abs=60)
    assert runtimes[1] == pytest.approx(2 * runtimes[0], abs=60)
    assert runtimes[2] == MAX_SECONDS


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("samples", [1_000, 20_000, 50_000, 200_000, 1_000_000])
def test_retries_grow_until_the_cap(profile, samples, tmp_path):
    requests = [training_request(profile, samples, a, tmp_path) for a in ATTEMPTS]
    for i, cap in enumerate((MAX_MB, MAX_SECONDS)):
        values = [request[i] for request in requests]
        assert max(values) <= cap
        for before, after in itertools.pairwise(values):
            assert after > before or after == cap, values  # more on each retry, up to the cap
