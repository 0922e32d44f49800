"""Every configuration key with its default and what it means, as a loadable ``darkflow.toml``.

``darkflow config --defaults`` prints :func:`format_defaults`; ``docs/darkflow.example.toml`` is its
output (a test keeps the two equal). The comments are read from the source of
:mod:`darkflow.config`, so the dataclasses stay the one place where a key, its default and its
meaning are written.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from typing import Any

from darkflow.config import Config

__all__ = ["format_defaults", "key_comments"]

HEADER = """\
# darkflow configuration: every key with its default value (`darkflow config --defaults`).
# Use it with `--config darkflow.toml`; keep only the keys you change (the others keep these
# defaults). Unknown keys are an error. Keys whose default is "unset" are commented out.
"""


def _is_note(line: str) -> bool:
    """Comment lines about the code's history, not about the key."""
    return line.startswith("---") or line.lower().startswith("added for")


def key_comments(section_type: type) -> dict[str, str]:
    """The comment of each field of one configuration dataclass, from its source.

    A field's comment is the block of comment lines right above it plus its end-of-line comment;
    a field without either shares the block of the field just before it (one comment above a
    group of related keys).
    """
    lines, _ = inspect.getsourcelines(section_type)
    cls = ast.parse("".join(lines).lstrip()).body[0]
    assert isinstance(cls, ast.ClassDef)
    out: dict[str, str] = {}
    previous_block: list[str] = []
    previous_end = -1
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        i = node.lineno - 1
        block: list[str] = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            text = lines[j].strip().lstrip("#").strip()
            if not _is_note(text):
                block.insert(0, text)
            j -= 1
        line = lines[i]
        inline = ""
        if "#" in line:
            code, _, comment = line.partition("  #")
            inline = comment.strip() if code else ""
        if not block and not inline and previous_end == i - 1:
            block = previous_block
        elif block:
            previous_block = block
        else:
            previous_block = []
        previous_end = node.end_lineno - 1 if node.end_lineno else i
        out[node.target.id] = " ".join([*block, inline]).strip()
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def _wrap(text: str, width: int = 98) -> list[str]:
    words, lines, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width - 2:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return [f"# {line}" for line in lines]


def format_defaults() -> str:
    """A TOML document with every section and key of :class:`~darkflow.config.Config`.

    Loading it gives the defaults (``Config.load(path) == Config()``).
    """
    parts = [HEADER]
    defaults = Config()
    for section in dataclasses.fields(Config):
        obj = getattr(defaults, section.name)
        section_type = type(obj)
        comments = key_comments(section_type)
        parts.append(f"\n[{section.name}]")
        for f in dataclasses.fields(section_type):
            value = getattr(obj, f.name)
            comment = comments.get(f.name) or ""
            if value is None:  # the dataclasses say None; a TOML file leaves the key out
                comment = comment.replace("None:", "unset:")
            if not parts[-1].lstrip().startswith("["):
                parts.append("")
            parts.extend(_wrap(comment))
            if value is None:
                parts.append(f"# {f.name} =  (unset)")
            else:
                parts.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(parts) + "\n"
