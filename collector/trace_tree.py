"""A trace's spans assembled into a tree, with each span's details decoded at most once.

Built at query time from whatever has arrived, so late and out-of-order spans simply
attach. Duplicate span ids (an exporter's retry) keep the first copy; spans whose
parent has not arrived are orphan roots. A parent cycle (a span its own ancestor: ids
reused by a buggy exporter, or crafted) is broken at its earliest-starting span, which
becomes an orphan root with ``cycle`` set to the cycle's length; nothing is lost.

Everything walks with explicit stacks: a 10,000-deep chain is as safe as a flat trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from collector.model import Record, SpanDetail, SpanKind, StatusCode
from collector.store import StoredSpan

__all__ = ["Node", "TraceTree", "build_tree"]


@dataclass(slots=True, eq=False)
class Node:
    span: StoredSpan
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    orphan: bool = False
    cycle: int = 0
    """On the span where a parent cycle was cut: how many spans the cycle had."""
    depth: int = 0
    records: list[Record] = field(default_factory=list)
    _detail: SpanDetail | None = None

    def detail(self) -> SpanDetail:
        if self._detail is None:
            self._detail = self.span.detail()
        return self._detail

    @property
    def error_logs(self) -> list[Record]:
        return [r for r in self.records if r.level in ("error", "critical")]

    @property
    def is_error(self) -> bool:
        return self.span.status == StatusCode.ERROR

    @property
    def kind(self) -> SpanKind:
        try:
            return SpanKind(self.span.kind)
        except ValueError:
            return SpanKind.UNSPECIFIED

    def path_from_root(self) -> list[Node]:
        path = []
        node: Node | None = self
        while node is not None:
            path.append(node)
            node = node.parent
        path.reverse()
        return path


@dataclass(slots=True)
class TraceTree:
    trace_id: bytes
    roots: list[Node]
    nodes: dict[bytes, Node]
    records: list[Record]

    def walk(self) -> Iterator[Node]:
        """Every node, depth first, children in start order."""
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    @property
    def start_ns(self) -> int:
        return min((n.span.start_ns for n in self.nodes.values()), default=0)

    @property
    def end_ns(self) -> int:
        return max((n.span.end_ns for n in self.nodes.values()), default=0)

    @property
    def orphan_count(self) -> int:
        return sum(1 for r in self.roots if r.orphan)

    @property
    def cycles(self) -> list[Node]:
        """The spans where a parent cycle was cut, one per cycle."""
        return [r for r in self.roots if r.cycle]


def build_tree(trace_id: bytes, spans: list[StoredSpan], records: list[Record]) -> TraceTree:
    nodes: dict[bytes, Node] = {}
    for span in spans:
        if span.span_id not in nodes:
            nodes[span.span_id] = Node(span)
    roots: list[Node] = []
    for node in nodes.values():
        parent = None if node.span.is_root else nodes.get(node.span.parent_id)
        if parent is None or parent is node:
            node.orphan = not node.span.is_root
            node.cycle = 1 if parent is node else 0
            roots.append(node)
        else:
            node.parent = parent
            parent.children.append(node)
    reached = _set_depths(roots)
    if len(reached) < len(nodes):
        for node in nodes.values():
            if id(node) not in reached:
                cut = _cut_cycle_above(node)
                roots.append(cut)
                reached |= _set_depths([cut])
    for node in nodes.values():
        node.children.sort(key=lambda n: n.span.start_ns)
    roots.sort(key=lambda n: (n.orphan, n.span.start_ns))
    records = sorted(records, key=lambda r: r.time_ns)
    for record in records:
        owner = nodes.get(record.span_id) if record.span_id is not None else None
        if owner is not None:
            owner.records.append(record)
    return TraceTree(trace_id, roots, nodes, records)


def _cut_cycle_above(node: Node) -> Node:
    """Break the parent cycle that ``node`` hangs from (every span not reached from a
    root does) at the cycle's earliest-starting span; return that span, now a root."""
    seen: set[int] = set()
    walker = node
    while id(walker) not in seen:
        seen.add(id(walker))
        assert walker.parent is not None  # unreached: its parents never end at a root
        walker = walker.parent
    members = [walker]
    other = walker.parent
    while other is not None and other is not walker:
        members.append(other)
        other = other.parent
    cut = min(members, key=lambda n: (n.span.start_ns, n.span.span_id))
    assert cut.parent is not None
    cut.parent.children.remove(cut)
    cut.parent = None
    cut.orphan = True
    cut.cycle = len(members)
    return cut


def _set_depths(roots: list[Node]) -> set[int]:
    seen: set[int] = set()
    stack = [(root, 0) for root in roots]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        node.depth = depth
        stack.extend((child, depth + 1) for child in node.children)
    return seen
