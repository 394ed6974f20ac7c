"""The directories a local target may write into: ``FERRY_LOCAL_TARGET_ROOTS``, a
``:``-separated list of absolute directories.

The planner refuses a local provider whose path is not inside one of them; the
kubevirt-writer writes nowhere else. Both compare real paths (symlinks resolved), so a
path that only looks inside a root is refused too. Pure apart from resolving paths.
"""

import os
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOTS_SETTING = "FERRY_LOCAL_TARGET_ROOTS"


def parse_roots(text: str) -> tuple[Path, ...]:
    """The roots listed in ``text``; ``ValueError`` for one that is not absolute."""
    roots = []
    for part in text.split(":"):
        if not part.strip():
            continue
        if not os.path.isabs(part):
            raise ValueError(f"{ROOTS_SETTING} lists '{part}', which is not an absolute directory path")
        roots.append(Path(part))
    return tuple(roots)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def root_of(path: str, roots: tuple[Path, ...]) -> Path | None:
    """The (resolved) root that ``path`` lies in once every symlink is resolved, or ``None``."""
    if not os.path.isabs(path):
        return None
    real = os.path.realpath(path)
    for root in roots:
        real_root = os.path.realpath(root)
        if _inside(real, real_root):
            return Path(real_root)
    return None


def outside_roots_message(path: str, roots: tuple[Path, ...]) -> str:
    """Why a local target at ``path`` is refused, and what to set."""
    if not roots:
        return (
            f"local targets are disabled: no allowed directory is configured; set {ROOTS_SETTING} "
            "(':'-separated absolute directories) for the planner and the kubevirt-writer"
        )
    if not os.path.isabs(path):
        return f"the local target path '{path}' is not absolute; give an absolute directory inside {ROOTS_SETTING}"
    allowed = ":".join(str(root) for root in roots)
    return f"the local target path '{path}' is outside the allowed directories {ROOTS_SETTING}={allowed}"


class LocalRootsSettings(BaseSettings):
    """The ``FERRY_LOCAL_TARGET_ROOTS`` setting, shared by the settings of the planner and the
    kubevirt-writer (which must be given the same value)."""

    model_config = SettingsConfigDict(populate_by_name=True)

    local_target_roots: Annotated[
        str,
        Field(
            validation_alias=AliasChoices(ROOTS_SETTING, "local_target_roots"),
            description="':'-separated absolute directories local targets may lie in; empty: local targets are refused",
        ),
    ] = ""

    @field_validator("local_target_roots")
    @classmethod
    def _absolute(cls, value: str) -> str:
        parse_roots(value)
        return value

    def local_roots(self) -> tuple[Path, ...]:
        return parse_roots(self.local_target_roots)
