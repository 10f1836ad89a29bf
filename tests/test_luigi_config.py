"""Luigi's config files read without Luigi: the files Luigi reads, in its order, the default
scheduler and the ``[resources]`` limits a step is checked against at ``ready``."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestration import luigi_config


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder and no LUIGI_CONFIG_PATH (the /etc files are Luigi's too)."""
    system = [p for p in luigi_config.LUIGI_CONFIGS[:2] if Path(p).exists()]
    if system:
        pytest.skip(f"this machine has a Luigi config of its own ({system[0]})")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LUIGI_CONFIG_PATH", raising=False)
    return tmp_path


def test_the_files_are_the_ones_luigi_reads_in_its_order() -> None:
    from luigi.configuration.cfg_parser import LuigiConfigParser

    assert list(luigi_config.LUIGI_CONFIGS) == LuigiConfigParser._config_paths


def test_scheduler_url_and_limits_later_files_winning(here: Path, monkeypatch) -> None:
    (here / "luigi.cfg").write_text("[core]\ndefault_scheduler_url = http://127.0.0.1:1\n"
                                    "[resources]\ngpu = 4\nlicence = 1\nodd = many\n")
    extra = here / "site.cfg"
    extra.write_text("[core]\ndefault-scheduler-url = http://127.0.0.1:2\n[resources]\ngpu=2\n")
    assert luigi_config.scheduler_url() == "http://127.0.0.1:1"
    assert luigi_config.resource_limits() == {"gpu": (4, str(here / "luigi.cfg")),
                                              "licence": (1, str(here / "luigi.cfg"))}
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(extra))
    assert luigi_config.scheduler_url() == "http://127.0.0.1:2"
    assert luigi_config.resource_limits()["gpu"] == (2, str(extra))


def test_no_config_means_no_scheduler_and_no_limits(here: Path) -> None:
    assert luigi_config.scheduler_url() is None
    assert luigi_config.resource_limits() == {}


def test_a_step_over_a_limit_is_a_problem_naming_task_limit_and_file() -> None:
    limits = {"gpu": (2, "/etc/luigi/luigi.cfg")}
    tasks = [("prep", {}), ("train", {"gpu": 3}), ("eval", {"gpu": 2, "licence": 9})]
    assert luigi_config.resource_problems(tasks, limits) == [
        "tasks[1].resources.gpu: task 'train' asks for 3, more than the 2 that [resources] "
        "gpu = 2 in /etc/luigi/luigi.cfg allows; the scheduler would never run it: lower it, "
        "or raise the limit there"]
