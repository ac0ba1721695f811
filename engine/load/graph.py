"""References → dependency graph (networkx), checked statically.

Edges point from a dependency to its dependent (``datasets.x → models.y``) and
remember where each reference was written, so a cycle can be reported with
every address on it and the line of every edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from common.diagnostics import Diagnostic, MlxError, did_you_mean
from engine.load.references import Ref, RefSyntaxError, decode, parse_template
from engine.load.spec_set import SpecSet
from specs.introspect import kind_info


@dataclass
class SpecGraph:
    graph: nx.DiGraph
    order: list[str]
    #: Parsed templates per address: path → parts.
    templates: dict[str, dict[tuple[str | int, ...], list[Any]]]
    #: Edges that order without making a dependency: a release waits for the gates its
    #: ``requires`` leaves out (their verdict in the same apply can still refuse it), but
    #: is neither blocked by their failure nor re-applied because they ran.
    ordering: frozenset[tuple[str, str]] = frozenset()

    def dependency_view(self) -> nx.DiGraph:
        """The graph without ordering-only edges: what a failure upstream blocks."""
        if not self.ordering:
            return self.graph
        return nx.restricted_view(self.graph, [], list(self.ordering))


def build(spec: SpecSet) -> SpecGraph:
    """Check every reference and build the graph; raise with all problems found."""
    g = nx.DiGraph()
    g.add_nodes_from(spec.decls)
    #: where each edge was written: (dependency, dependent) -> paths in the dependent's body
    sites: dict[tuple[str, str], list[tuple[str | int, ...]]] = {}
    diags: list[Diagnostic] = []
    templates: dict[str, dict[tuple[str | int, ...], list[Any]]] = {}

    for address, decl in spec.decls.items():
        templates[address] = _templates_of(spec, address, decl, sites, diags)
        _depends_on(spec, address, decl, sites, diags)
    diags.extend(_contested(spec, templates))
    if diags:
        raise MlxError(diags)
    gates_of = _gates_by_subject(spec, templates)
    _implicit_gate_edges(spec, templates, sites, gates_of)
    g.add_edges_from(sites)
    try:
        order = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        raise MlxError(_cycles(spec, g, sites)) from None
    ordering = _skipped_gate_edges(spec, templates, gates_of, g)
    if ordering:
        g.add_edges_from(ordering)
        order = list(nx.topological_sort(g))
    return SpecGraph(g, order, templates, frozenset(ordering))


def _templates_of(
    spec: SpecSet,
    address: str,
    decl: Any,
    sites: dict[tuple[str, str], list[tuple[str | int, ...]]],
    diags: list[Diagnostic],
) -> dict[tuple[str | int, ...], list[Any]]:
    """Parse one resource's ``${…}`` templates, check each reference, record its edges."""
    info = kind_info(decl.section)
    parsed: dict[tuple[str | int, ...], list[Any]] = {}
    for index, (path, text) in enumerate(decl.refs):
        cached = decl.parsed[index] if decl.parsed else None

        def where(path: tuple[str | int, ...] = path) -> Any:  # looked up only for an error
            return spec.source(address, *path, key=False)

        try:
            parts = decode(cached) if cached is not None else parse_template(text)
        except RefSyntaxError as exc:
            diags.append(Diagnostic(str(exc), where()))
            continue
        parsed[path] = parts
        for part in parts:
            if isinstance(part, Ref):
                problem = _check_ref(spec, part)
                if problem:
                    diags.append(Diagnostic(problem, where()))
                elif part.is_resource:
                    sites.setdefault((part.address, address), []).append(path)
        field = path[0] if path else None
        if isinstance(field, str) and field in info.ref_fields and len(path) == 1:
            problem = _check_ref_field(field, info.ref_fields[field], parts)
            if problem:
                diags.append(Diagnostic(problem, where()))
    for field, kinds in info.ref_fields.items():
        value = decl.body.get(field)
        if isinstance(value, str) and (field,) not in parsed:
            diags.append(
                Diagnostic(
                    f"{address}.{field} must reference a resource of {' or '.join(kinds)}, "
                    f'like "${{{kinds[0]}.NAME}}" (got "{value}")',
                    spec.source(address, field, key=False),
                )
            )
    return parsed


def _depends_on(
    spec: SpecSet,
    address: str,
    decl: Any,
    sites: dict[tuple[str, str], list[tuple[str | int, ...]]],
    diags: list[Diagnostic],
) -> None:
    for i, dep in enumerate(decl.body.get("depends_on", [])):
        if dep not in spec.decls:
            diags.append(
                Diagnostic(
                    f"depends_on names {dep}, which is not declared"
                    + did_you_mean(dep, spec.decls),
                    spec.source(address, "depends_on", i, key=False),
                )
            )
        else:
            sites.setdefault((dep, address), []).append(("depends_on", i))


def _contested(
    spec: SpecSet, templates: dict[str, dict[tuple[str | int, ...], list[Any]]]
) -> list[Diagnostic]:
    """Targets two resources of a kind would both drive (two rollouts on one endpoint).

    Each would report its own outcome while the other's traffic split serves, so the
    second is an error at its place, naming the first and where it was written.
    """
    diags: list[Diagnostic] = []
    claimed: dict[tuple[str, int, tuple[str, ...]], str] = {}
    for address, decl in spec.decls.items():
        for index, rule in enumerate(kind_info(decl.section).exclusive):
            target = _target(decl.body, templates.get(address, {}), rule.fields)
            if target is None:
                continue
            first = claimed.setdefault((decl.section, index, target), address)
            if first == address:
                continue
            field = rule.fields[-1]
            what = rule.shown.format(*target)
            diags.append(
                Diagnostic(
                    f"{first} and {address} both drive {what}: {rule.rule}",
                    spec.source(address, field),
                    related=((f"{first} names it", spec.source(first, field)),),
                    detail=rule.hint,
                )
            )
    return diags


def _target(
    body: dict[str, Any],
    templates: dict[tuple[str | int, ...], list[Any]],
    fields: tuple[str, ...],
) -> tuple[str, ...] | None:
    """The values of ``fields`` (a reference as its address), or None unless all are set."""
    values: list[str] = []
    for field in fields:
        ref = _subject(templates, field)
        value = ref if ref is not None else body.get(field)
        if value is None or value == "":
            return None
        values.append(str(value))
    return tuple(values)


def _subject(templates: dict[tuple[str | int, ...], list[Any]], field: str) -> str | None:
    parts = templates.get((field,))
    if parts and len(parts) == 1 and isinstance(parts[0], Ref) and parts[0].is_resource:
        return parts[0].address
    return None


def _gates_by_subject(
    spec: SpecSet, templates: dict[str, dict[tuple[str | int, ...], list[Any]]]
) -> dict[str, list[str]]:
    gates_of: dict[str, list[str]] = {}
    for address, decl in spec.decls.items():
        if kind_info(decl.section).is_gate:
            subject = _subject(templates.get(address, {}), "subject")
            if subject:
                gates_of.setdefault(subject, []).append(address)
    return gates_of


def _implicit_gate_edges(
    spec: SpecSet,
    templates: dict[str, dict[tuple[str | int, ...], list[Any]]],
    sites: dict[tuple[str, str], list[tuple[str | int, ...]]],
    gates_of: dict[str, list[str]],
) -> None:
    """A release without ``requires`` waits for every gate on its subject (release.evidence)."""
    for address, decl in spec.decls.items():
        field = kind_info(decl.section).release_field
        if field is None or "requires" in decl.body:
            continue
        subject = _subject(templates.get(address, {}), field)
        for gate in gates_of.get(subject or "", []):
            sites.setdefault((gate, address), []).append((field,))


def _skipped_gate_edges(
    spec: SpecSet,
    templates: dict[str, dict[tuple[str | int, ...], list[Any]]],
    gates_of: dict[str, list[str]],
    g: nx.DiGraph,
) -> list[tuple[str, str]]:
    """A release whose ``requires`` leaves out a gate on its subject runs after that gate,
    so that a verdict reached in the same apply is seen by the release check — unless the
    gate itself comes after the release (it judges what the release deployed)."""
    edges: list[tuple[str, str]] = []
    for address, decl in spec.decls.items():
        field = kind_info(decl.section).release_field
        if field is None or "requires" not in decl.body:
            continue
        subject = _subject(templates.get(address, {}), field)
        for gate in gates_of.get(subject or "", []):
            if not g.has_edge(gate, address) and not nx.has_path(g, address, gate):
                edges.append((gate, address))
    return edges


def _check_ref(spec: SpecSet, ref: Ref) -> str | None:
    if ref.namespace == "env":
        return None
    if ref.namespace == "var":
        if ref.name not in spec.variables:
            return f"{ref} names an undeclared variable" + did_you_mean(ref.name, spec.variables)
        return None
    if ref.address not in spec.decls:
        return f"{ref} refers to {ref.address}, which is not declared" + did_you_mean(
            ref.address, spec.decls
        )
    if ref.attr is not None:
        attrs = kind_info(ref.namespace).attributes
        if ref.attr not in attrs:
            return (
                f'{ref}: {ref.namespace} have no attribute "{ref.attr}"'
                + did_you_mean(ref.attr, attrs)
                + f" (attributes: {', '.join(sorted(attrs))})"
            )
    return None


def _check_ref_field(field: str, kinds: tuple[str, ...], parts: list[Any]) -> str | None:
    if len(parts) == 1 and isinstance(parts[0], Ref) and parts[0].attr is None:
        if parts[0].namespace in kinds:
            return None
        return f"`{field}` must reference {' or '.join(kinds)}, not {parts[0].namespace}"
    return f'`{field}` must be exactly one reference like "${{{kinds[0]}.NAME}}"'


def _cycles(
    spec: SpecSet, g: nx.DiGraph, sites: dict[tuple[str, str], list[tuple[str | int, ...]]]
) -> list[Diagnostic]:
    diags = []
    for component in nx.strongly_connected_components(g):
        sub = g.subgraph(component)
        if len(component) == 1 and not sub.has_edge(*(list(component) * 2)):
            continue
        edges = nx.find_cycle(sub)
        names = [u for u, _ in edges] + [edges[0][0]]
        related = []
        for u, v in edges:
            path = sites[u, v][0]
            related.append((f"{v} → {u} written", spec.source(v, *path, key=False)))
        diags.append(
            Diagnostic(
                "dependency cycle: " + " → ".join(reversed(names)),
                None,
                related=tuple(related),
                detail="Each arrow reads “depends on”. Remove one of these references.",
            )
        )
    return diags


def to_dot(g: nx.DiGraph) -> str:
    lines = ["digraph mlx {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for node in sorted(g.nodes):
        lines.append(f'  "{node}";')
    for u, v in sorted(g.edges):
        lines.append(f'  "{u}" -> "{v}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(g: nx.DiGraph) -> str:
    def ident(node: str) -> str:
        return node.replace(".", "__").replace("-", "_")

    lines = ["graph LR"]
    for node in sorted(g.nodes):
        lines.append(f'  {ident(node)}["{node}"]')
    for u, v in sorted(g.edges):
        lines.append(f"  {ident(u)} --> {ident(v)}")
    return "\n".join(lines) + "\n"
