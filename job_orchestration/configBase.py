"""0.0.7's ``Dict2Class`` and ``TaskWithInitAndValidate``: config keys as attributes, and
annotated fields checked by ``validate()``.

A 0.0.7 task declares what it reads as class annotations and reads it as attributes::

    class Train(TaskWithInitAndValidate):
        epochs: int
        outputDir: str
        def run(self):
            save(os.path.join(self.outputDir, "model/x.ckpt"))

Differences from 0.0.7, each a bug there: a key never replaces a method (a config key
``run`` or ``validate`` broke the task); annotations of base classes count too; an annotated
field with a class-level default is optional. ``TaskWithInitAndValidate`` is an
``orchestration.TaskBase``, so the Tasks.py loader finds its subclasses and the framework
gives them ``self.config``, ``self.task``, ``self.output_dir`` and ``self.log``; a config
key of one of those names still reads as the config value, as it did in 0.0.7.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterator, Mapping

from orchestration.taskbase import TaskBase

__all__ = ["Dict2Class", "TaskWithInitAndValidate"]


class Dict2Class:
    """A mapping whose keys are also attributes; annotated fields are the required keys."""

    def __init__(self, input_dict: Mapping[str, Any]) -> None:
        cls = type(self)
        for key, value in input_dict.items():
            declared = inspect.getattr_static(cls, key, None)
            # methods and properties stay what the class made them; the value is in raw_dict
            if not (callable(declared) or hasattr(declared, "__set__")):
                setattr(self, key, value)
        self.raw_dict = input_dict  # last: a config key "raw_dict" must not replace it

    def validate(self) -> list[str]:
        """One message per annotated field the config lacks (a field with a default is
        optional)."""
        return [f"{name} missing from {type(self).__name__}: add {name!r} to the config"
                for name in _required_fields(type(self))
                if name not in self.raw_dict and name not in vars(self)]


class _ConfigFirst:
    """An attribute the framework sets (``task``, ``log``...) that a config key of the same
    name hides, because 0.0.7 tasks read every config key as an attribute."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, f"_framework_{name}"

    def __get__(self, obj: Dict2Class | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        if self.name in obj.raw_dict:
            return obj.raw_dict[self.name]
        try:
            return vars(obj)[self.slot]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Dict2Class, value: Any) -> None:
        vars(obj)[self.slot] = value


class TaskWithInitAndValidate(Dict2Class, TaskBase):
    """A task built from its config by ``Dict2Class``; Dict2Class comes first in the bases so
    its ``validate()`` (the annotation check) is the one used, as in 0.0.7."""

    config = _ConfigFirst()
    task = _ConfigFirst()
    output_dir = _ConfigFirst()
    log = _ConfigFirst()

    def __init__(self, config: dict[str, Any]) -> None:
        Dict2Class.__init__(self, config)
        TaskBase.__init__(self, config)


_OURS = (Dict2Class, TaskWithInitAndValidate)


def _required_fields(cls: type) -> Iterator[str]:
    """Annotated names of the user's classes in ``cls``'s MRO, minus those with a default."""
    users = [c for c in cls.__mro__ if issubclass(c, Dict2Class) and c not in _OURS]
    seen = set()
    for c in reversed(users):
        for name in inspect.get_annotations(c):
            if name not in seen and not any(name in vars(u) for u in users):
                seen.add(name)
                yield name
