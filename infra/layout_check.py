"""The core's layout rules, checked on every `make test` (docs/architecture.md, "Layout").

- no import cycle between the core's modules (one module per file under shared/src);
- no import cycle between the core's folders (`usecases` using `edge` while `edge` uses
  `usecases` is a cycle that no two files show), and every folder uses only the folders
  `ALLOWED` lists for it: dependencies point one way, from the edges inward;
- use cases never spell a store condition or write (`Op::`, `Cond::`, `Write::`): the
  records layer (shared/src/store/records) owns them;
- no file in shared/src over 450 lines, and at most 12 entries at its top level.

Prints one line per rule and `layout: N passed, M failed`; exits 1 on a failure.
`python3 infra/layout_check.py [SRC]` checks SRC (default shared/src);
`python3 infra/layout_check.py --self-test` proves on small trees that the folder rules
catch a layer pointing the wrong way (`make test` runs it).
"""

import pathlib
import re
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "shared" / "src"
MAX_LINES = 450
MAX_TOP_LEVEL = 12

# The folders of the core and the folders each may use (docs/architecture.md, "Layout").
# A folder not named here fails the check until its place in the layers is written down.
PORTS = {"store", "queue", "events", "stripe", "metrics"}
ALLOWED = {
    # Ids, the catalog, identity, entitlement rules, time: no I/O, no other folder.
    "domain": set(),
    # The ports and their adapters speak the domain; the event record keeps a Stripe event.
    "stripe": {"domain"},
    "store": {"domain", "stripe"},
    "queue": {"domain"},
    "events": {"domain"},
    "metrics": {"domain"},
    # The application context the use cases run on: the ports and the domain only.
    "app": {"domain"} | PORTS,
    # The billing rules: the context, the ports, the domain; never inbound or runtime.
    "usecases": {"app", "domain"} | PORTS,
    # Requests in, errors to statuses: over the use cases.
    "inbound": {"usecases", "app", "domain"} | PORTS,
    # The wiring of a process: everything.
    "runtime": {"inbound", "usecases", "app", "domain"} | PORTS,
}


def module_of(path: pathlib.Path, src: pathlib.Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
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


def folder_rules(graph: dict[str, set[str]]) -> list[tuple[str, bool, str]]:
    """The two folder-level rules over the module graph: no cycle between top-level folders,
    and every folder's uses within `ALLOWED`."""
    folders: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for module, used in graph.items():
        mine = module.split("::")[0]
        if not mine:
            continue  # the crate root declares the folders
        folders.setdefault(mine, set())
        for u in used:
            theirs = u.split("::")[0]
            if theirs and theirs != mine:
                folders[mine].add(theirs)
                why.setdefault((mine, theirs), f"{module} uses {u}")
    found = cycles(folders)
    results = [("no import cycle between core folders", not found,
                "; ".join(" <-> ".join(c) for c in found))]
    wrong = [f"{a} -> {b} ({why[(a, b)]})" for a in sorted(folders) if a in ALLOWED
             for b in sorted(folders[a] - ALLOWED[a])]
    unknown = sorted(set(folders) - set(ALLOWED))
    wrong += [f"{a} is not in the allowed list" for a in unknown]
    results.append(("every folder uses only the folders its layer allows", not wrong, "; ".join(wrong)))
    return results


def check(src: pathlib.Path) -> list[tuple[str, bool, str]]:
    """Every rule over the tree at `src`, as (rule, passed, detail)."""
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(f, src) for f in files}
    graph = {}
    for f in files:
        me = module_of(f, src)
        # A module's own items and its submodules' are not a dependency of it.
        graph[me] = {u for u in uses(f.read_text(), modules) if u != me and not u.startswith(me + "::") and u != ""}
    results = []

    found = cycles(graph)
    results.append(("no import cycle between core modules", not found,
                    "; ".join(" -> ".join(c) for c in found)))
    results += folder_rules(graph)

    raw = []
    for f in (src / "usecases").rglob("*.rs"):
        for n, line in enumerate(code_only(f.read_text()).splitlines(), 1):
            if re.search(r"\b(Op|Cond|Write)::", line):
                raw.append(f"{f.relative_to(src)}:{n}")
    results.append(("use cases compose record writes, never Op::/Cond::/Write::", not raw, ", ".join(raw)))

    long = [f"{f.relative_to(src)} ({n})" for f in files if (n := len(f.read_text().splitlines())) > MAX_LINES]
    results.append((f"no file in shared/src over {MAX_LINES} lines", not long, ", ".join(long)))

    top = sorted(p.name for p in src.iterdir())
    results.append((f"shared/src holds at most {MAX_TOP_LEVEL} entries", len(top) <= MAX_TOP_LEVEL, ", ".join(top)))
    return results


def tree(files: dict[str, str]) -> pathlib.Path:
    """A throwaway source tree of `files` (path → text) in a temporary directory."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="layout-self-test-"))
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def self_test() -> int:
    """The folder rules pass a tree whose layers point inward and fail each wrong shape."""
    layered = {
        "lib.rs": "pub mod app; pub mod domain; pub mod runtime; pub mod usecases;\n",
        "domain/mod.rs": "pub struct UserId;\n",
        "app/mod.rs": "use crate::domain::UserId;\npub struct Services;\n",
        "usecases/mod.rs": "use crate::app::Services;\nuse crate::domain::UserId;\n",
        "runtime/mod.rs": "use crate::app::Services;\nuse crate::usecases;\n",
    }
    cases = [
        ("a tree whose layers point inward passes", layered, None),
        ("a use case importing the runtime fails the allowed list",
         {**layered, "usecases/mod.rs": "use crate::runtime::wiring::Services;\n", "runtime/wiring.rs": "pub struct Services;\n"},
         "usecases -> runtime (usecases uses runtime::wiring)"),
        ("two folders importing each other (the old edge/usecases shape) fail as a cycle",
         {**layered, "edge/mod.rs": "use crate::usecases::Error;\n", "usecases/mod.rs": "use crate::edge::Services;\n"},
         "edge <-> usecases"),
        ("a folder the allowed list does not name fails",
         {**layered, "helpers/mod.rs": "use crate::domain::UserId;\n"},
         "helpers is not in the allowed list"),
        ("a use in a comment is not a use",
         {**layered, "usecases/mod.rs": "// see crate::runtime::run\nuse crate::domain::UserId;\n"},
         None),
    ]
    failed = 0
    for name, files, expected in cases:
        root = tree(files)
        try:
            results = {rule: (ok, detail) for rule, ok, detail in check(root)}
        finally:
            shutil.rmtree(root)
        folder = [results["no import cycle between core folders"],
                  results["every folder uses only the folders its layer allows"]]
        if expected is None:
            ok = all(passed for passed, _ in folder)
        else:
            ok = any(not passed and expected in detail for passed, detail in folder)
        print(f"{'ok  ' if ok else 'FAIL'} self-test: {name}" + ("" if ok else f": {folder}"))
        failed += not ok
    print(f"layout self-test: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["--self-test"]:
        return self_test()
    src = pathlib.Path(argv[1]).resolve() if len(argv) > 1 else SRC
    results = check(src)
    failed = 0
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        failed += not ok
    print(f"layout: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
