"""The core's layout rules, checked on every `make test` (docs/architecture.md, "Layout").

- no import cycle between the core's modules (one module per file under shared/src);
- use cases never spell a store condition or write (`Op::`, `Cond::`, `Write::`): the
  records layer (shared/src/store/records) owns them;
- no file in shared/src over 450 lines, and at most 12 entries at its top level.

Prints one line per rule and `layout: N passed, M failed`; exits 1 on a failure.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = pathlib.Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "shared" / "src"
MAX_LINES = 450
MAX_TOP_LEVEL = 12


def module_of(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts)


def code_only(text: str) -> str:
    """The text without comments (doc and line comments), so prose never counts as a use."""
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def uses(text: str, modules: set[str]) -> set[str]:
    """Every core module `text` refers to through a `crate::` path, braces expanded."""
    found = set()
    text = code_only(text)
    for m in re.finditer(r"crate::([A-Za-z_][\w:]*)(::\{([^;]*?)\})?", text, re.S):
        base = m.group(1).rstrip(":")
        targets = [base]
        if m.group(3):
            for part in m.group(3).split(","):
                name = part.strip().split(" as ")[0].split("::{")[0].strip()
                if name and name != "self":
                    targets.append(f"{base}::{name}")
        for t in targets:
            # The longest prefix that is a module (`a::b::Item` → `a::b`).
            segs = t.split("::")
            while segs and "::".join(segs) not in modules:
                segs.pop()
            if segs:
                found.add("::".join(segs))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main() -> int:
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(f) for f in files}
    graph = {}
    for f in files:
        me = module_of(f)
        # A module's own items and its submodules' are not a dependency of it.
        graph[me] = {u for u in uses(f.read_text(), modules) if u != me and not u.startswith(me + "::") and u != ""}
    results = []

    found = cycles(graph)
    results.append(("no import cycle between core modules", not found,
                    "; ".join(" -> ".join(c) for c in found)))

    raw = []
    for f in (SRC / "usecases").rglob("*.rs"):
        for n, line in enumerate(code_only(f.read_text()).splitlines(), 1):
            if re.search(r"\b(Op|Cond|Write)::", line):
                raw.append(f"{f.relative_to(SRC)}:{n}")
    results.append(("use cases compose record writes, never Op::/Cond::/Write::", not raw, ", ".join(raw)))

    long = [f"{f.relative_to(SRC)} ({n})" for f in files if (n := len(f.read_text().splitlines())) > MAX_LINES]
    results.append((f"no file in shared/src over {MAX_LINES} lines", not long, ", ".join(long)))

    top = sorted(p.name for p in SRC.iterdir())
    results.append((f"shared/src holds at most {MAX_TOP_LEVEL} entries", len(top) <= MAX_TOP_LEVEL, ", ".join(top)))

    failed = 0
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        failed += not ok
    print(f"layout: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
