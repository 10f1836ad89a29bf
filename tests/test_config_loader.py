"""parse_yaml / load_config: hostile or broken YAML is refused with one line per problem that
points at the key or line and says the fix; good YAML resolves once into plain data."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.config.loader import MAX_BYTES, load_config, parse_yaml
from orchestration.exceptions import ConfigError

SECRET = "hunter2-3f9c1a7e"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "exp.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def rejection(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


REJECTED = [
    pytest.param("a: [1, 2\nb: 3\n", ["not valid YAML at line 2, column 2",
                                      "flow sequence started at line 1"], id="syntax-error"),
    pytest.param("a: 'open\n", ["not valid YAML at line 2", "quoted scalar started at line 1"],
                 id="unterminated-quote"),
    pytest.param("a:\n\tb: 1\n", ["not valid YAML at line 2, column 1: found character"],
                 id="tab-indent"),
    pytest.param("", ["file is empty"], id="empty"),
    pytest.param("# a comment\n\n", ["file is empty"], id="only-comments"),
    pytest.param("- a\n- b\n", ["top level is a list, not a mapping"], id="list"),
    pytest.param("42\n", ["top level is a int, not a mapping"], id="scalar"),
    pytest.param("lr: 1\nlr: 2\n", ["lr: duplicate key (lines 1 and 2)", "keep one"],
                 id="duplicate-top-level"),
    pytest.param("tasks:\n  - id: a\n  - id: b\n    opts: {k: 1, k: 2}\n",
                 ["tasks[1].opts.k: duplicate key (lines 4 and 4)"], id="duplicate-nested"),
    pytest.param("a: 1\nb: 2\na: 3\nb: 4\n", ["a: duplicate key (lines 1 and 3)",
                                              "b: duplicate key (lines 2 and 4)"],
                 id="every-duplicate-reported"),
    pytest.param("? [a, b]\n: 1\n", ["top level (line 1): key is not text"],
                 id="list-as-key"),
    pytest.param("1: a\nb: {2: c}\n", ["top level (line 1): key '1' is not text; keys must be "
                                        "text: quote it", "b (line 2): key '2' is not text"],
                 id="number-as-key"),
    pytest.param("a: !!binary aGVsbG8=\n", ["a: binary data (!!binary, line 1) is not allowed"],
                 id="binary-value"),
    pytest.param("a: " + "9" * 5000 + "\n", ["a value cannot be read: Exceeds the limit",
                                            "write it as text (quoted)"], id="huge-integer"),
    pytest.param('!!python/object/apply:os.system ["true"]\n',
                 ["top level: !!python/object/apply:os.system (line 1) is not allowed"],
                 id="python-tag-top-level"),
    pytest.param("x:\n  y: !!python/name:os.system\n",
                 ["x.y: !!python/name:os.system (line 2) is not allowed", "remove the tag"],
                 id="python-tag-nested"),
    pytest.param("!!python/name:os.system : 1\n", ["a Python object tag (!!python/...) is not "
                                                    "allowed"], id="python-tag-on-a-key"),
    pytest.param("a: &a [*a]\n", ["aliases expand to more than 100000 values",
                                  "an alias inside its own anchor"], id="recursive-alias"),
    pytest.param("a: " + "[" * 60 + "]" * 60 + "\n", ["YAML nests more than 50 levels deep"],
                 id="deep-flow-nesting"),
    pytest.param("".join(f"{'  ' * i}k{i}:\n" for i in range(60)),
                 ["YAML nests more than 50 levels deep"], id="deep-block-nesting"),
    pytest.param("a: " + "[" * 500_000 + "\n", ["exceeded maximum nesting depth"],
                 id="half-a-million-brackets"),  # quadratic in PyYAML's own scanner: a hang
    pytest.param(b"lr: \xff\n", ["not UTF-8 text (invalid start byte at byte 4)",
                                 "save the file as UTF-8"], id="not-utf8"),
    pytest.param("lr: ${optim.lr}\n", ["lr: '${optim.lr}' cannot be resolved",
                                       "Interpolation key 'optim.lr' not found"],
                 id="interpolation-missing"),
    pytest.param("x: {y: [1, '${nope}']}\n", ["x.y[1]: '${nope}' cannot be resolved"],
                 id="interpolation-missing-nested"),
    pytest.param("a: ${b}\nb: ${a}\n", ["'${b}' cannot be resolved: interpolations refer to "
                                        "each other in a cycle"], id="interpolation-cycle"),
    pytest.param("a: ${b\n", ["a: '${b' is not a valid interpolation", "\\${...} for a literal"],
                 id="interpolation-syntax"),
    pytest.param("lr: ???\n", ["lr: '???' is a required value (???) that was never set"],
                 id="mandatory-missing"),
    pytest.param("t: ${oc.env:SOME_SECRET}\n", ["t: '${oc.env:SOME_SECRET}' cannot be resolved",
                                                "'SOME_SECRET' is not allowed",
                                                "JOB_ORCHESTRATION_ALLOWED_ENV"],
                 id="env-not-allowed"),
    pytest.param("t: ${oc.env:SOME_SECRET,fallback}\n", ["'SOME_SECRET' is not allowed"],
                 id="env-not-allowed-with-default"),
    pytest.param("t: ${oc.env:SLURM_NOT_SET_HERE}\n",
                 ["environment variable 'SLURM_NOT_SET_HERE' is not set"], id="env-unset"),
]


@pytest.mark.parametrize("text, expected", REJECTED)
def test_rejected_with_a_one_line_reason_per_problem(tmp_path: Path, text: str | bytes,
                                                     expected: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SECRET", SECRET)
    monkeypatch.delenv("JOB_ORCHESTRATION_ALLOWED_ENV", raising=False)
    path = write(tmp_path, text)
    error = rejection(path)
    message = str(error)
    assert message.startswith(f"{path}: config rejected:\n")
    for fragment in expected:
        assert fragment in message
    assert all("\n" not in problem for problem in error.problems)
    assert SECRET not in message


@pytest.mark.parametrize("tag", ["object/apply:os.system", "object/new:os.system"])
def test_python_tags_are_never_run(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, f'lr: !!python/{tag} ["touch {marker}"]\n')
    assert "is not allowed" in str(rejection(path))
    assert not marker.exists()


def test_file_over_one_mebibyte_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "#" * MAX_BYTES + "\n")
    assert f"file is {MAX_BYTES + 1} bytes; a config may be at most" in str(rejection(path))


def test_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    path = write(tmp_path, "\n".join(levels) + "\n")  # 10**9 values once expanded
    assert "aliases expand to more than 100000 values" in str(rejection(path))


ACCEPTED = [
    pytest.param("lr: 0.1\nout: run-${lr}\n", {"out": "run-0.1"}, id="interpolation"),
    pytest.param("m: {depth: 3}\nd: ${m.depth}\n", {"d": 3}, id="nested-interpolation"),
    pytest.param("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n",
                 {"other": {"x": 1, "y": 3}}, id="merge-key-override-is-no-duplicate"),
    pytest.param("a: {k: 1}\nb: {k: 2}\n", {"a": {"k": 1}, "b": {"k": 2}},
                 id="same-key-in-two-mappings"),
    pytest.param("v: &v [1, 2]\nw: *v\n", {"w": [1, 2]}, id="small-alias"),
    pytest.param("home: ${oc.env:HOME}\n", {"home": "/home/tester"}, id="env-allowed-by-default"),
    pytest.param("s: ${oc.env:SOME_SECRET}\n", {"s": SECRET}, id="env-allowed-by-operator"),
    pytest.param("s: ${oc.env:NOT_SET_AT_ALL,dflt}\n", {"s": "dflt"}, id="env-default"),
    pytest.param("esc: \\${lr}\n", {"esc": "${lr}"}, id="escaped-interpolation"),
    pytest.param("lr: 1e-3\nwd: 5E-4\n", {"lr": 0.001, "wd": 0.0005},
                 id="floats-as-omegaconf-reads-them"),
    pytest.param("since: 2024-01-31\n", {"since": "2024-01-31"}, id="dates-stay-text"),
]


@pytest.mark.parametrize("text, expected", ACCEPTED)
def test_accepted_and_resolved(tmp_path: Path, text: str, expected: dict,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/tester")
    monkeypatch.setenv("SOME_SECRET", SECRET)
    monkeypatch.setenv("JOB_ORCHESTRATION_ALLOWED_ENV", "OTHER_*, SOME_SECRET, NOT_SET_*")
    monkeypatch.delenv("NOT_SET_AT_ALL", raising=False)
    data = load_config(write(tmp_path, text))
    assert {k: data[k] for k in expected} == expected


def test_timestamps_resolve_once(tmp_path: Path) -> None:
    data = load_config(write(tmp_path, "day: ${now:%Y-%m-%d}\nout: run-${now:%Y}\n"))
    assert len(data["day"]) == 10 and data["out"] == f"run-{data['day'][:4]}"


def test_parse_yaml_keeps_interpolations_for_later(tmp_path: Path) -> None:
    assert parse_yaml(write(tmp_path, "lr: 1\nout: x-${lr}\n")) == {"lr": 1, "out": "x-${lr}"}


def test_an_import_that_never_ends_is_stopped(tmp_path: Path) -> None:
    from orchestration.codehost import CodeHost
    from orchestration.exceptions import TasksImportError

    (tmp_path / "Tasks.py").write_text("print('importing')\nwhile True:\n    pass\n")
    with pytest.raises(TasksImportError, match=r"did not finish within 1 s; its last output: "
                                               "importing"):
        CodeHost.start(tmp_path, import_timeout=1)


def test_our_env_policy_applies_to_our_own_resolving_only(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's own OmegaConf use (in Tasks.py, in a script) keeps OmegaConf's oc.env."""
    from omegaconf import OmegaConf

    monkeypatch.setenv("SOME_SECRET", SECRET)
    assert "not allowed" in str(rejection(write(tmp_path, "t: ${oc.env:SOME_SECRET}\n")))
    cfg = OmegaConf.create({"t": "${oc.env:SOME_SECRET}"})
    assert OmegaConf.to_container(cfg, resolve=True) == {"t": SECRET}
    assert not OmegaConf.has_resolver("now")
