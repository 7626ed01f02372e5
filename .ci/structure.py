#!/usr/bin/env python3
"""Structure checks the compiler does not make: no import cycle between two
files of a crate (other than a module and its own submodules), and no
production source file over LIMIT lines. Run by .ci/run; exits 1 naming what
is wrong.

A file's dependencies are the `crate::`, `super::` and `self::` paths in its
code (comments and the inline `mod tests` left out), resolved to the file
that defines the longest prefix of the path."""

import os
import re
import sys

LIMIT = 450
# Test support compiled only for tests, and the benchmark harness.
LENGTH_EXEMPT = {"controller/src/kubernetes/fake.rs"}


def crate_files(src):
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[0] == "bin":
                continue
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            if parts and parts[-1] == "tests":
                continue
            files[tuple(parts)] = path
    return files


def dependencies(module, path, files):
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]
    text = re.sub(r"//[^\n]*", "", text)

    def resolve(parts):
        for n in range(len(parts), -1, -1):
            if tuple(parts[:n]) in files:
                return tuple(parts[:n])
        return None

    def base(head):
        if head == "crate":
            return []
        if head == "self":
            return list(module)
        return list(module[:-1])

    found = set()
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
        rest = [p for p in m.group(2).split("::") if p]
        parts = base(m.group(1))
        while rest and rest[0] == "super":
            parts, rest = parts[:-1], rest[1:]
        found.add(resolve(parts + rest))
    for m in re.finditer(r"use (crate|super|self)::\{([^;]*)\};", text, re.S):
        for item in re.findall(r"\w+(?:::\w+)*", m.group(2)):
            found.add(resolve(base(m.group(1)) + item.split("::")))
    found.discard(None)
    found.discard(module)
    return found


def nested(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def cycles(files):
    graph = {
        m: {d for d in dependencies(m, p, files) if not nested(m, d)}
        for m, p in files.items()
    }
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(files[m] for m in component))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main(root):
    problems = []
    for crate in sorted(os.listdir(root)):
        src = os.path.join(root, crate, "src")
        if not os.path.isfile(os.path.join(root, crate, "Cargo.toml")) or not os.path.isdir(src):
            continue
        files = crate_files(src)
        for component in cycles(files):
            names = " -> ".join(os.path.relpath(p, root) for p in component)
            problems.append(f"import cycle between files: {names}")
        if crate == "bench":
            continue
        for path in files.values():
            rel = os.path.relpath(path, root)
            lines = sum(1 for _ in open(path, encoding="utf-8"))
            if lines > LIMIT and rel not in LENGTH_EXEMPT:
                problems.append(f"{rel}: {lines} lines (at most {LIMIT}): split it by purpose")
    for p in problems:
        print(p)
    if problems:
        return 1
    print("structure: no file cycles, no production file over", LIMIT, "lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
