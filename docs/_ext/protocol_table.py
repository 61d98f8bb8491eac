"""``.. convlab-protocol::``: the backend protocol's members, read from ``convlab.backends.base.Backend`` at build time.

The table cannot drift from the code: each row is a member of ``Backend`` in
source order, under the group its ``# -- group: ...`` comment names, marked
required where it is abstract, with the first sentence of its docstring.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from convlab_docs import GeneratedDirective, list_table_head

_GROUP = re.compile(r"^\s*# -- ([^:-]+?)(?::.*?)?\s*-*$")
_MEMBER = re.compile(r"^    def (\w+)\(")


def protocol_members(cls: type) -> list[tuple[str, str, bool, str]]:
    """``(group, name, required, summary)`` for each public member of ``cls``, in source order."""
    group, members = "identity", []
    for line in inspect.getsource(cls).splitlines():
        if heading := _GROUP.match(line):
            group = heading.group(1).strip()
            continue
        member = _MEMBER.match(line)
        if member is None or member.group(1).startswith("_"):
            continue
        name = member.group(1)
        attribute = inspect.getattr_static(cls, name)
        target = attribute.fget if isinstance(attribute, property) else attribute
        required = bool(getattr(target, "__isabstractmethod__", False))
        summary = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
        members.append((group, name, required, summary))
    return members


class ProtocolTable(GeneratedDirective):
    """``.. convlab-protocol::`` — one row per member of the backend protocol, grouped, required ones marked."""

    has_content = False

    def run(self) -> list[Any]:
        from convlab.backends.base import Backend

        lines = list_table_head(None, ["group", "member", "a new backend", "what it does"])
        for group, name, required, summary in protocol_members(Backend):
            lines += [
                f"   * - {group}",
                f"     - ``{name}``",
                f"     - {'**implements**' if required else 'may override'}",
                f"     - {summary}",
            ]
        return self.parse(lines)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("convlab-protocol", ProtocolTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
