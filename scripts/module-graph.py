#!/usr/bin/env python3
"""Draws the crate's module graph from its `crate::` paths and checks it is acyclic.

    python3 scripts/module-graph.py [SRC_DIR]        # edges, then "acyclic" or the cycles

A node is a top-level module of the crate (`src/<name>.rs` or `src/<name>/`), `lib` for
src/lib.rs and `main` for src/main.rs. An edge A -> B means a file of A names `crate::B`
(in a `use` or a path). Test modules (`tests.rs`, `tests/`) are left out: they may look
anywhere. Exit status 1 when there is a cycle.
"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
edges = {}
use_block = re.compile(r"\buse\s+crate::\{([^;]*)\};", re.S)
path_ref = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")

for f in sorted(src.rglob("*.rs")):
    rel = f.relative_to(src)
    if rel.name == "tests.rs" or "tests" in rel.parts[:-1]:
        continue
    node = {"lib.rs": "lib", "main.rs": "main"}.get(str(rel), rel.parts[0].removesuffix(".rs"))
    text = f.read_text()
    targets = set(path_ref.findall(text))
    for block in use_block.findall(text):
        # `use crate::{a::X, b}`: the first segment of each item.
        depth, item = 0, ""
        for ch in block + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                name = re.match(r"\s*([a-z_][a-z0-9_]*)", item)
                if name and name.group(1) != "self":
                    targets.add(name.group(1))
                item = ""
            else:
                item += ch
    for t in targets:
        if t != node and ((src / f"{t}.rs").exists() or (src / t).is_dir()):
            edges.setdefault(node, set()).add(t)

for a in sorted(edges):
    print(f"{a} -> {', '.join(sorted(edges[a]))}")

# Cycles: strongly connected components with more than one node (Tarjan).
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))
for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
    if v not in index:
        visit(v)
if sccs:
    for c in sccs:
        print("cycle among: " + ", ".join(c))
    sys.exit(1)
print("acyclic")
