"""Routes composed from per-server templates, for speed (see :mod:`simulator.routing`).

Clusters are many identical servers hung off a fabric of switches. Where the graph
has that shape, the shortest paths inside a server (and out to its switches) are
searched once per server *shape* and translated per server, and the switches between
two servers' switches are read from the switch graph; :class:`simulator.routing.Router`
uses them instead of searching the whole graph (per shape: :mod:`simulator.server_shapes`).

Three ways a composed route is exactly what a search of the whole graph returns:

* **One shortest path.** Then every search finds it.
* **ECMP.** The pair's hash picks among *every* shortest path, sorted, so only the set
  matters: heads x switch paths x tails, over the exits that tie.
* **Ties without ECMP** (several NICs per server on one switch: rails). networkx's
  bidirectional Dijkstra then returns the path through the node where its two searches
  first meet. Each search's order up to the fabric switch depends only on its own
  server (searched once per shape, in the graph's adjacency order), so
  :meth:`ServerTemplates.shortest` replays the meeting
  (:func:`simulator.server_shapes.meeting`); the router searches where it cannot tell.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable
from typing import cast

import networkx as nx
import numpy as np

from topologies.arrays import GraphArrays, RunKeys, numbered

from .server_shapes import (
    INFINITY,
    ROUTE_WEIGHT,
    SWITCH,
    FabricEnds,
    LocalNames,
    Shape,
    ShapeTemplate,
    candidate_key,
    ecmp_choice,
    graph_dicts,
    meeting,
    nic_to_nic,
    server_members,
)

Node = Hashable


class ServerTemplates:
    """Shortest paths composed from per-server templates (see the module doc).

    Applies (``usable``) when every node is either a switch or belongs to a server
    (``server`` attribute, named ``{server}.{local}``), servers touch the rest of the
    graph only through NIC <-> switch edges, and every switch-to-switch edge weighs
    the same. A server's NICs may hang off several switches (rail-optimized fabrics).

    A path between two servers that passes through a third one (or leaves a server and
    comes back) enters it from one switch and leaves it to another: it costs at least
    :attr:`crossing` (a bound read from the NICs' edges; none where every server hangs
    off one switch, as such a path would pass its switch twice). Where a pair's shortest
    composition is shorter than the shortest way out, a crossing and the shortest way in,
    no shortest path crosses, so every shortest path between two servers is (a path from
    the source out to one of its server's switches, through no other) + (a shortest
    switch path) + (a path from a switch of the destination's server in to it), over the
    pairs of switches whose total is least. Inside a server, a path that leaves by one
    switch and comes back by another costs at least the way out, the lightest edge out
    of a switch and the way in; where the template's shortest path is shorter, it is the
    whole graph's.
    """

    def __init__(self, graph: nx.DiGraph[Node], kind: dict[Node, str | None], server: dict[Node, object],
                 arrays: GraphArrays, weights: np.ndarray):
        """``kind`` and ``server``: each node's attributes; ``arrays``: the graph's;
        ``weights``: each edge's route weight."""
        self.graph = graph
        self.usable = False
        self.server = server
        owner = numbered(arrays.node_values("server"))
        members = server_members(arrays, owner, kind)
        fabric = None if members is None else FabricEnds.scan(arrays, owner, weights, server, kind)
        if members is None or fabric is None:
            return
        self.members: dict[object, list[str]] = members  # server -> its nodes (named "{server}.{local}")
        self._exits = fabric.exits  # server -> the switches its NICs hang off
        self.switch_links = fabric.succ  # switch -> switches it links to
        self._nics = fabric.nics  # server nodes linked to a switch
        switch_names = [str(n) for n, srv in server.items() if srv is None]  # members are named already
        if len(set(switch_names)) != len(switch_names) or any(server.get(name) is not None for name in switch_names):
            return  # two nodes of one name, which the hash's sort of paths by names would not order
        self._hop = fabric.hop
        self._out_of_switch = fabric.out_of_switch
        self.crossing = INFINITY
        if any(len(exits) > 1 for exits in self._exits.values()):
            self.crossing = fabric.nic_down + fabric.nic_up + nic_to_nic(graph, server, self._nics)
        self._of_server: dict[object, ShapeTemplate] = {}  # server -> the template of its shape
        self._keys = RunKeys(arrays, owner, ROUTE_WEIGHT)
        self._by_key: dict[object, ShapeTemplate] = {}  # _key -> the template of its shape
        self.switches: dict[object, list[Node]] = {}  # server -> its switches, in its shape's numbering
        self._names: dict[object, dict[str, Node]] = {}  # server -> local name -> node
        self._templates: dict[Shape, ShapeTemplate] = {}
        self._fabric: dict[tuple[Node, Node], list[list[Node]]] = {}  # sorted shortest switch paths
        self._fabric_names: dict[tuple[Node, Node], list[tuple[str, ...]]] = {}  # their nodes' names
        self._switch_graph: nx.DiGraph[Node] | None = None
        self._positions: dict[tuple[Node, bool], dict[Node, int]] = {}
        self._parts: dict[tuple[object, str, str, bool], list[tuple[list[Node], tuple[str, ...]]]] = {}
        self.usable = True

    def shortest(self, src: Node, dst: Node, ecmp: bool) -> list[Node] | None:
        """The shortest path a search would return (with ``ecmp``: the one the pair's
        hash picks), or None where only a search can tell (an end outside every server,
        or a tie a search breaks by its own visiting order that the replay of
        :meth:`_meet` cannot settle)."""
        s, t = self.server.get(src), self.server.get(dst)
        if s is None or t is None:
            return None
        if s == t:
            return self._within(s, src, dst, ecmp)
        if s not in self._exits or t not in self._exits:
            return None
        ts, tt = self.template(s), self.template(t)
        a, b = self._local(s, src), self._local(t, dst)
        if len(ts.exits) == 1 and len(tt.exits) == 1:
            found = self.one_switch(s, t, a, b)
            if found is None:
                return None
            heads, middles, tails = found
            if len(heads) == len(tails) == 1:
                if len(middles) > 1 and not ecmp:
                    return None
                # Every candidate shares the head and the tail, so sorting them (as the hash's
                # choice does) sorts the switch paths, which are sorted already.
                middle = middles[zlib.crc32(f"{src}->{dst}".encode()) % len(middles)] if ecmp else middles[0]
                return self._real(s, heads[0])[:-1] + middle + self._real(t, tails[0])[1:]
            if not ecmp:
                return self._meet(s, t, a, b) if len(middles[0]) == 1 else None
            return self._choose(src, dst, s, t, a, b, [(ts.exits[0], tt.exits[0], middles)], ecmp)
        return self._across(s, t, src, dst, a, b, ecmp)

    def one_switch(self, s: object, t: object, a: str, b: str
                   ) -> tuple[list[list[str]], list[list[Node]], list[list[str]]] | None:
        """Between local ends ``a`` of server ``s`` and ``b`` of server ``t``, each off one
        switch: the ways out of ``s`` (local), the switch paths and the ways into ``t``
        (local) whose compositions are every shortest path; None where a search must tell."""
        ts, tt = self.template(s), self.template(t)
        heads, tails = ts.heads(a, ts.exits[0]), tt.tails(tt.exits[0], b)
        middles = self._switch_paths(self.switches[s][0], self.switches[t][0])
        if not heads or not tails or not middles:
            return None
        if (len(middles[0]) - 1) * self._hop >= self.crossing:
            return None  # a path through another server might be as short
        return heads, middles, tails

    def _across(self, s: object, t: object, src: Node, dst: Node, a: str, b: str, ecmp: bool) -> list[Node] | None:
        """:meth:`shortest` between servers, one of which has several switches: over the
        pairs of (way out, way in) whose total with the switch path between them is
        least."""
        ts, tt = self.template(s), self.template(t)
        outs, ins = ts.way_out(a), tt.way_in(b)
        if not outs or not ins:
            return None
        best = INFINITY
        chosen: list[tuple[str, str, list[list[Node]]]] = []
        switches_s, switches_t = self.switches[s], self.switches[t]
        for h, x in outs:
            if h + ins[0][0] > best:
                break
            real_x = switches_s[ts.number[x]]
            for tl, y in ins:
                if h + tl > best:
                    break
                real_y = switches_t[tt.number[y]]
                if real_x != real_y and h + tl + self._hop > best:
                    continue  # two switches are a hop apart at least
                middles = self._switch_paths(real_x, real_y)
                if not middles:
                    continue
                total = h + tl + (len(middles[0]) - 1) * self._hop
                if total < best:
                    best, chosen = total, []
                if total == best:
                    chosen.append((x, y, middles))
        if not chosen or not best < outs[0][0] + self.crossing + ins[0][0]:
            return None
        return self._choose(src, dst, s, t, a, b, chosen, ecmp)

    def _choose(self, src: Node, dst: Node, s: object, t: object, a: str, b: str,
                chosen: list[tuple[str, str, list[list[Node]]]], ecmp: bool) -> list[Node] | None:
        """The shortest path a search returns among the compositions (way out of ``s``
        to x) + (switch path) + (way into ``t`` from y) of ``chosen`` (x, y, switch
        paths): with ``ecmp`` the one the pair's hash picks, as :func:`ecmp_choice`
        would (sorted by the nodes' names, from the parts' names), else the only one
        (None: several)."""
        candidates: list[tuple[tuple[str, ...], list[Node], list[Node], list[Node]]] = []
        for x, y, middles in chosen:
            heads, tails = self._part(s, a, x, True), self._part(t, b, y, False)
            for middle, key in zip(middles, self._fabric_names[(middles[0][0], middles[0][-1])]):
                for head, head_key in heads:
                    for tail, tail_key in tails:
                        candidates.append((head_key + key + tail_key, head, middle, tail))
        if len(candidates) != 1:
            if not ecmp or not candidates:
                return None
            candidates.sort(key=candidate_key)
        _, head, middle, tail = candidates[zlib.crc32(f"{src}->{dst}".encode()) % len(candidates)]
        return head[:-1] + middle + tail[1:]

    def _part(self, server: object, node: str, exit: str, out: bool) -> list[tuple[list[Node], tuple[str, ...]]]:
        """The ways out from ``node`` to switch ``exit`` (``out``) or in from it, of
        :meth:`ShapeTemplate.heads` or :meth:`ShapeTemplate.tails`, as nodes, each with
        its nodes' names but the switch's; cached."""
        key = (server, node, exit, out)
        found = self._parts.get(key)
        if found is None:
            template = self.template(server)
            found = self._parts[key] = []
            for local in template.heads(node, exit) if out else template.tails(exit, node):
                path = self._real(server, local)
                found.append((path, tuple([str(n) for n in (path[:-1] if out else path[1:])])))
        return found

    def _within(self, s: object, src: Node, dst: Node, ecmp: bool) -> list[Node] | None:
        """:meth:`shortest` inside one server."""
        local = self.inside(self.template(s), self._local(s, src), self._local(s, dst))
        if not local:
            return None
        if len(local) == 1:
            return self._real(s, local[0])
        return ecmp_choice(src, dst, [self._real(s, p) for p in local]) if ecmp else None

    def inside(self, template: ShapeTemplate, a: str, b: str) -> list[list[str]]:
        """Every shortest path from ``a`` to ``b`` inside a server of ``template``, where
        they are the whole graph's (empty: a search must tell)."""
        local = template.inside(a, b)
        if local and len(template.exits) > 1:
            # Leaving by one switch and coming back by another costs at least this much.
            length = sum(template.graph.edges[u, v][ROUTE_WEIGHT] for u, v in zip(local[0], local[0][1:]))
            outs, ins = template.way_out(a), template.way_in(b)
            detour = min((h + self._out_of_switch + tl for h, x in outs for tl, y in ins if x != y), default=INFINITY)
            if not length < detour:
                return []
        return local

    def _meet(self, s: object, t: object, a: str, b: str) -> list[Node] | None:
        """The path networkx's bidirectional Dijkstra returns between ``a`` of server
        ``s`` and ``b`` of server ``t``, both hanging off one switch only, where several
        shortest paths tie: its forward path to, and backward path from, the node where
        its searches meet (:func:`simulator.server_shapes.meeting`; None: not known)."""
        ts, tt = self.template(s), self.template(t)
        forward, backward = ts.forward(a), tt.backward(b)
        switch = self.switches[s][0]
        into, out_of = self._position(switch, False), self._position(switch, True)
        names_s, names_t = self.names_of(s), self.names_of(t)
        meet = meeting(forward, backward, ts, tt, lambda nic: into[names_s[nic]], lambda nic: out_of[names_t[nic]])
        if meet is None:
            return None
        xs, xt = ts.exits[0], tt.exits[0]
        side, node = meet
        if side == "X":
            return self._real(s, forward.forward_path(xs)) + self._real(t, backward.backward_path(xt))[1:]
        if side == "S":
            return self._real(s, forward.forward_path(node)) + self._real(t, backward.backward_path(xt))
        return self._real(s, forward.forward_path(xs)) + self._real(t, backward.backward_path(node))

    def _position(self, switch: Node, successors: bool) -> dict[Node, int]:
        """Each neighbour's place in ``switch``'s successors (or predecessors)."""
        key = (switch, successors)
        found = self._positions.get(key)
        if found is None:
            dicts = graph_dicts(self.graph)
            nbrs = (dicts._adj if successors else dicts._pred)[switch]
            found = self._positions[key] = dict(zip(nbrs, range(len(nbrs))))
        return found

    # -- parts, for bundles composed end by end ------------------------------------------

    def server_of(self, node: Node) -> object | None:
        return self.server.get(node)

    def switch_of(self, server: object) -> Node | None:
        """The switch ``server`` hangs off (None: none, or several)."""
        exits = self._exits.get(server)
        return next(iter(exits)) if exits is not None and len(exits) == 1 else None

    def head(self, node: Node) -> list[Node] | None:
        """The one shortest path from ``node`` to its server's switch (None: not one)."""
        return self._end(node, True)

    def tail(self, node: Node) -> list[Node] | None:
        """The one shortest path from its server's switch to ``node`` (None: not one)."""
        return self._end(node, False)

    def _end(self, node: Node, out: bool) -> list[Node] | None:
        server = self.server.get(node)
        if server is None or self.switch_of(server) is None:
            return None
        template, local = self.template(server), self._local(server, node)
        found = template.heads(local, template.exits[0]) if out else template.tails(template.exits[0], local)
        return self._real(server, found[0]) if len(found) == 1 else None

    def switch_paths(self, a: Node, b: Node) -> list[list[Node]]:
        """Every shortest path from switch ``a`` to switch ``b``, in the hash's order."""
        return self._switch_paths(a, b)

    # -- templates ---------------------------------------------------------------------

    @staticmethod
    def _local(server: object, node: Node) -> str:
        name = cast(str, node)  # a member of ``server``: a string (checked in __init__)
        return name[len(str(server)) + 1:]

    def _real(self, server: object, path: list[str]) -> list[Node]:
        names = self.names_of(server)
        return [names[n] for n in path]

    def names_of(self, server: object) -> dict[str, Node]:
        """Local name -> node, in ``server`` (its switches too); made once per server."""
        names = self._names.get(server)
        if names is None:
            cut = len(str(server)) + 1
            names = self._names[server] = {n[cut:]: n for n in self.members[server]}
            self.template(server)
            for i, switch in enumerate(self.switches[server]):
                names[f"{SWITCH}{i}"] = switch
        return names

    def template(self, server: object) -> ShapeTemplate:
        """The template of ``server``'s shape (made with the server's shape, once)."""
        template = self._of_server.get(server)
        if template is None:
            # Servers of one key have one shape: built once per key, from its first server.
            key = self._key(server)
            template = self._by_key.get(key) if key is not None else None
            if template is None:
                shape = self._shape(server)
                template = self._templates.get(shape)
                if template is None:
                    template = self._templates[shape] = ShapeTemplate(shape)
                if key is not None:
                    self._by_key[key] = template
            else:
                self.switches[server] = list(self._exits[server])  # one switch: "@switch0"
            self._of_server[server] = template
        return template

    def _key(self, server: object) -> tuple[tuple[str, ...], bytes] | None:
        """Where ``server``'s NICs hang off one switch (its "@switch0"), a key equal only
        to those of servers of its shape: its members' local names and their run's key
        (:class:`topologies.arrays.RunKeys`); None otherwise."""
        members = self.members[server]
        run = self._keys.key(members) if len(self._exits.get(server, ())) == 1 else None
        if run is None:
            return None
        cut = len(str(server)) + 1
        return tuple([n[cut:] for n in members]), run

    def _shape(self, server: object) -> Shape:
        """What a search inside ``server`` sees, in local names: its members' edges (to
        its switches too) with their weights, in the graph's order. (The rules after the
        search read the real nodes' attributes.) Records the server's switches."""
        dicts = graph_dicts(self.graph)
        adj, pred = dicts._adj, dicts._pred
        members = self.members[server]
        cut = len(str(server)) + 1
        names = LocalNames({n: n[cut:] for n in members})
        shape = tuple([(names[n], tuple([(names[v], data[ROUTE_WEIGHT]) for v, data in adj[n].items()]),
                        tuple([(names[u], data[ROUTE_WEIGHT]) for u, data in pred[n].items()])) for n in members])
        self.switches[server] = names.switches
        return shape

    def _switch_paths(self, a: Node, b: Node) -> list[list[Node]]:
        """Every shortest path from switch ``a`` to switch ``b``, sorted as the hash's
        choice sorts them: one hop where they are linked, else two through each common
        neighbour (every switch link weighs the same); a search otherwise."""
        key = (a, b)
        paths = self._fabric.get(key)
        if paths is None:
            succ = self.switch_links
            if a == b:
                paths = [[a]]
            elif b in succ.get(a, ()):
                paths = [[a, b]]
            else:
                paths = [[a, m, b] for m in succ.get(a, ()) if b in succ.get(m, ())]
                if not paths:
                    if self._switch_graph is None:
                        self._switch_graph = self.graph.subgraph(
                            [n for n, srv in self.server.items() if srv is None])
                    try:
                        paths = list(nx.all_shortest_paths(self._switch_graph, a, b, weight=ROUTE_WEIGHT))
                    except (nx.NetworkXNoPath, nx.NodeNotFound):
                        paths = []
            named = sorted((tuple([str(n) for n in p]), p) for p in paths)
            paths = self._fabric[key] = [p for _, p in named]
            self._fabric_names[key] = [names for names, _ in named]
        return paths
