#!/usr/bin/env python3
"""File-level module import graph of lvs-core (core/src) and lvs-sim (sim/src).

Prints, per crate, every file module and the file modules it refers to, then fails
(exit 1) when the graph has a cycle or when a module under `vrrp/` or `ipvs/` refers
to one under `director/`.

What counts as a reference from file A to file B: a path in A's code (a `use` tree,
expanded, or a path written inline) that starts with `crate::`, `super::`, `self::` or
the name of a module declared in A, and names B or an item inside B. A path resolves to
the longest file module it starts with (`crate::ipvs::table::Ipvs` -> `ipvs/table`),
then through re-exports: an item a module re-exports (`pub use child::X`, at file scope,
globs included) resolves to the module defining it, and the re-export itself is no
reference (a facade names its children's items, it does not use them). Comments, doc
comments (intra-doc links included), string literals and `pub(in path)` visibilities are
not references; paths into other crates (`std::`, `lvs_core::`) and a file referring to
itself are not edges. Method calls name no path and are not seen: an `impl` block split
over child files shows only the children's references to the parent.

Test code: references from a `#[cfg(test)]` module (a file declared `#[cfg(test)] mod
x;`, everything under it, or an inline `#[cfg(test)] mod x { .. }`) are printed, marked
`(test)`, but do not count for cycles: a test module reading its parent's private items
(`use super::*`) is how Rust tests are written, and nothing outside tests is built on
them. They do count for the `vrrp/`/`ipvs/` -> `director/` rule.

Python 3 standard library only. Usage: scripts/module-deps.py [--quiet]
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = [("lvs-core", "core/src"), ("lvs-sim", "sim/src")]
LOWER_LAYERS = ("vrrp", "ipvs")
UPPER_LAYER = "director"


def strip_code(text):
    """Blank out comments, string and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (
            i and (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def file_modules(src_dir):
    """{module path ('' = crate root): file}, from the files under `src_dir`."""
    mods = {}
    for dirpath, _, files in os.walk(src_dir):
        for f in files:
            if not f.endswith(".rs"):
                continue
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, src_dir)[:-3].replace(os.sep, "/")
            if rel in ("lib", "main"):
                mod = ""
            elif rel.endswith("/mod"):
                mod = rel[: -len("/mod")]
            else:
                mod = rel
            mods[mod] = full
    return mods


def expand_use(tree):
    """Expand a `use` tree (without `use` and `;`) into flat paths: (segments, name bound)."""
    tree = re.sub(r"\s+as\s+", " as ", tree.strip())
    tree = re.sub(r"\s*(::|,|\{|\})\s*", r"\1", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(s, prefix):
        if not s:
            return []
        k = s.find("{")
        if k >= 0:
            head = s[:k].rstrip(":")
            inner = s[k + 1: s.rfind("}")]
            base = prefix + [p for p in head.split("::") if p]
            paths = []
            for part in split_top(inner):
                paths.extend(walk(part, base))
            return paths
        alias = None
        if " as " in s:
            s, alias = s.split(" as ", 1)
        segs = prefix + [p for p in s.split("::") if p]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        if not segs:
            return []
        return [(segs, alias or segs[-1])]

    return walk(tree, [])


USE_RE = re.compile(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]*);", re.S)
VIS_IN_RE = re.compile(r"\bpub\s*\(\s*in\s+[\w:]+\s*\)")
DEF_RE = r"(?:\b(?:struct|enum|fn|trait|type|const|static|mod|union)\s+|\bmacro_rules!\s*)"
MOD_DECL_RE = re.compile(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")


class FileScan:
    """What one file declares and refers to."""

    def __init__(self, path):
        text = strip_code(open(path, encoding="utf-8").read())
        text = VIS_IN_RE.sub("pub", text)  # `pub(in crate::x)` names no dependency
        self.text = text
        self.children = {}  # file child modules declared here: name -> #[cfg(test)]
        self.inline = {}  # inline modules: scope tuple -> names
        self.spans = []  # inline module spans: (start, end, name, is_test)
        for m in MOD_DECL_RE.finditer(text):
            attrs, name, kind = m.group(1), m.group(2), m.group(3)
            is_test = "cfg(test)" in attrs.replace(" ", "")
            if kind == ";":
                self.children[name] = is_test
                continue
            depth, j = 1, m.end()
            while j < len(text) and depth:
                depth += text[j] == "{"
                depth -= text[j] == "}"
                j += 1
            self.spans.append((m.end(), j, name, is_test))
        for st, _, name, _ in self.spans:
            scope, _ = self.scope_at(st - 1)
            self.inline.setdefault(tuple(scope), set()).add(name)
        # refs: (scope, segments, is_test); reexports: name -> segments (`pub use` at file scope)
        self.refs, self.reexports, self.globs = [], {}, []
        use_spans = []
        for m in USE_RE.finditer(text):
            use_spans.append((m.start(), m.end()))
            scope, test = self.scope_at(m.start())
            public = m.group(1) is not None
            for segs, alias in expand_use(m.group(2)):
                if public and not scope:
                    # A re-export names the item at this path: whoever uses it through
                    # here depends on where it is defined; this file does not.
                    if segs[-1] == "*":
                        self.globs.append(segs[:-1])
                    else:
                        self.reexports[alias] = segs
                    continue
                if segs[-1] == "*":
                    segs = segs[:-1]
                if segs:
                    self.refs.append((scope, segs, test))
        heads = set(self.children) | {n for names in self.inline.values() for n in names}
        pat = r"(?<![\w:$])((?:crate|super|self"
        if heads:
            pat += "|" + "|".join(sorted(map(re.escape, heads)))
        pat += r")(?:::\w+)+)"
        for m in re.finditer(pat, text):
            if any(st <= m.start() < e for st, e in use_spans):
                continue
            scope, test = self.scope_at(m.start())
            self.refs.append((scope, m.group(1).split("::"), test))

    def scope_at(self, pos):
        scope, test = [], False
        for st, e, name, is_test in self.spans:
            if st <= pos < e:
                scope.append(name)
                test = test or is_test
        return scope, test

    def defines(self, name):
        return re.search(DEF_RE + re.escape(name) + r"\b", self.text) is not None


def absolute(mod, scope, segs, scan):
    """The crate-absolute path a reference written in `mod` (inline `scope`) names."""
    here = (mod.split("/") if mod else []) + list(scope)
    head = segs[0]
    if head == "crate":
        return list(segs[1:])
    if head in ("super", "self"):
        base, rest = list(here), list(segs)
        while rest and rest[0] in ("super", "self"):
            if rest.pop(0) == "super":
                if not base:
                    return None
                base.pop()
        return base + rest
    if (not scope and head in scan.children) or head in scan.inline.get(tuple(scope), set()):
        return here + list(segs)
    return None  # another crate, or an item, not a module path


def locate(path, mods, scans, depth=0):
    """The file module defining what an absolute path names, following re-exports."""
    for k in range(len(path), -1, -1):
        cand = "/".join(path[:k])
        if cand not in mods:
            continue
        rest = path[k:]
        sc = scans[cand]
        if rest and depth < 16 and not sc.defines(rest[0]):
            if rest[0] in sc.reexports:
                target = absolute(cand, [], sc.reexports[rest[0]], sc)
                if target is not None:
                    return locate(target + rest[1:], mods, scans, depth + 1)
            for g in sc.globs:
                target = absolute(cand, [], g, sc)
                if target is not None:
                    found = locate(target + rest, mods, scans, depth + 1)
                    if found and scans[found].defines(rest[0]):
                        return found
        return cand
    return None


def test_modules(mods, decls):
    """File modules that are test-only: declared `#[cfg(test)]`, or under one that is."""
    test = set()
    for mod in mods:
        parts = mod.split("/") if mod else []
        for k in range(1, len(parts) + 1):
            parent, name = "/".join(parts[: k - 1]), parts[k - 1]
            if decls.get(parent, {}).get(name):
                test.add(mod)
                break
    return test


def sccs(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(out)


def name(mod):
    return mod or "(crate root)"


def main():
    quiet = "--quiet" in sys.argv[1:]
    problems = []
    for crate, src in CRATES:
        mods = file_modules(os.path.join(ROOT, src))
        scans = {mod: FileScan(path) for mod, path in mods.items()}
        tests = test_modules(mods, {m: sc.children for m, sc in scans.items()})
        edges, test_edges = {}, {}
        for mod, sc in scans.items():
            for scope, segs, is_test in sc.refs:
                path = absolute(mod, scope, segs, sc)
                t = None if path is None else locate(path, mods, scans)
                if t is None or t == mod:
                    continue
                kind = test_edges if (is_test or mod in tests) else edges
                kind.setdefault(mod, set()).add(t)
        if not quiet:
            print(f"{crate} ({src}): file module -> file modules it refers to")
            for mod in sorted(mods):
                deps = sorted(edges.get(mod, set()))
                tdeps = sorted(test_edges.get(mod, set()) - set(deps))
                shown = [name(d) for d in deps] + [f"{name(d)} (test)" for d in tdeps]
                mark = " [test module]" if mod in tests else ""
                print(f"  {name(mod)}{mark} -> {', '.join(shown) if shown else '-'}")
            print()
        for comp in sccs(mods, edges):
            inside = set(comp)
            links = [
                f"{name(a)} -> {name(b)}"
                for a in comp
                for b in sorted(edges.get(a, ()))
                if b in inside
            ]
            problems.append(
                f"{crate}: import circle between {', '.join(map(name, comp))} ({'; '.join(links)})"
            )
        for mod in sorted(mods):
            if mod.split("/")[0] not in LOWER_LAYERS:
                continue
            for t in sorted(edges.get(mod, set()) | test_edges.get(mod, set())):
                if t.split("/")[0] == UPPER_LAYER:
                    problems.append(f"{crate}: {mod} imports {t} (nothing in vrrp/ or ipvs/ may import director/)")
    if problems:
        print("module-deps: FAIL")
        for p in problems:
            print(f"  {p}")
        return 1
    print("module-deps: ok (no import circles; nothing in vrrp/ or ipvs/ imports director/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
